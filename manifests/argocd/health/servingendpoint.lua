-- Argo CD health of a slipway.dev ServingEndpoint. Lua 5.1 with Argo CD's libraries only (base, table, a
-- safe os): no string library, no string.format, no // operator.
local hs = {}
local function condition(type_)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type_ then return c end
  end
  return nil
end
local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then return c.message end
  return fallback
end
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: its Deployments and Services go with it"
  hs.deletionMessage = hs.message
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration < (obj.metadata.generation or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local degraded = condition("Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = text(degraded, degraded.reason or "Degraded")
  return hs
end
local progressing = condition("Progressing")
if progressing ~= nil and progressing.status == "True" then
  if progressing.reason == "Paused" then
    hs.status = "Suspended"
    hs.message = text(progressing, "Paused") .. ": paused until `slipway promote`"
  else
    hs.status = "Progressing"
    hs.message = text(progressing, "Rolling out")
  end
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Serving")
  return hs
end
hs.status = "Progressing"
hs.message = text(ready, "Waiting for a validated model version")
return hs
