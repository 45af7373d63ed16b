-- Argo CD health of a slipway.dev ServingEndpoint.
local hs = {}
local function condition(type_)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type_ then return c end
  end
  return nil
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
  hs.message = degraded.message
  return hs
end
local progressing = condition("Progressing")
if progressing ~= nil and progressing.status == "True" then
  if progressing.reason == "Paused" then
    hs.status = "Suspended"
  else
    hs.status = "Progressing"
  end
  hs.message = progressing.message
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
hs.message = ready ~= nil and ready.message or "Waiting for a validated model version"
return hs
