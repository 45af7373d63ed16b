-- Argo CD health of a slipway.dev ModelVersion: Validated is healthy, Rejected is degraded. Lua 5.1 with
-- Argo CD's libraries only (base, table, a safe os): no string library, no string.format, no // operator.
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
  hs.message = "Being deleted: v" .. tostring(obj.spec.version) .. " of " .. tostring(obj.spec.modelName)
      .. " leaves the registry"
  hs.deletionMessage = hs.message
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.status.observedGeneration < (obj.metadata.generation or 0) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local validated = condition("Validated")
if obj.status.phase == "Validated" then
  hs.status = "Healthy"
  hs.message = "Validated"
elseif obj.status.phase == "Rejected" then
  hs.status = "Degraded"
  local failed = {}
  if obj.status.checks ~= nil then
    for _, check in ipairs(obj.status.checks) do
      if check.passed == false then table.insert(failed, check.gate .. ": " .. (check.message or "")) end
    end
  end
  if #failed == 0 and validated ~= nil and validated.message ~= nil then table.insert(failed, validated.message) end
  hs.message = "Rejected: " .. table.concat(failed, "; ")
else
  hs.status = "Progressing"
  if validated ~= nil and validated.message ~= nil and validated.message ~= "" then
    hs.message = validated.message
  else
    hs.message = "Waiting for the validation gates"
  end
end
return hs
