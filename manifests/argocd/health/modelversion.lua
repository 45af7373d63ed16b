-- Argo CD health of a slipway.dev ModelVersion: Validated is healthy, Rejected is degraded.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the validation gates"
  return hs
end
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
  hs.message = "Rejected: " .. table.concat(failed, "; ")
else
  hs.status = "Progressing"
  hs.message = obj.status.phase
end
return hs
