-- Argo CD health of a slipway.dev TrainingPipeline. Lua 5.1 with Argo CD's libraries only (base, table, a
-- safe os): no string library, no string.format, no // operator.
local hs = {}
local function condition(type_)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type_ then return c end
  end
  return nil
end
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator terminates its runs first"
  hs.deletionMessage = hs.message
  return hs
end
if obj.spec ~= nil and obj.spec.schedule ~= nil and obj.spec.schedule.suspend == true then
  hs.status = "Suspended"
  hs.message = "Schedule suspended"
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration < (obj.metadata.generation or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready = condition("Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason
  return hs
end
local running = condition("Running")
if running ~= nil and running.status == "True" then
  hs.status = "Progressing"
  hs.message = running.message
  return hs
end
local last = obj.status.lastRun
if last ~= nil and (last.phase == "Pending" or last.phase == "Running") then
  hs.status = "Progressing"
  hs.message = "Run " .. tostring(last.id) .. " " .. last.phase
  return hs
end
if last ~= nil and last.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Last run failed: " .. (last.message or "")
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the spec"
  return hs
end
hs.status = "Healthy"
hs.message = last ~= nil and ("Last run " .. last.phase) or "No run yet"
return hs
