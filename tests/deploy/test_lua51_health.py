"""The fast tier of the Argo CD health checks: each script run in Lua 5.1 (lupa's) with only what Argo CD's
gopher-lua opens for a health check (the base library, table, and an os with time and date; no string
library, so no string methods either), on the shared cases. test_argocd_health.py judges the same cases
with Argo CD itself."""

from __future__ import annotations

from typing import Any

import pytest
from health_cases import ARGOCD, CASES, Case
from lupa import lua51

SANDBOXED = """function(code, obj)
  local env = {obj = obj, _VERSION = _VERSION}
  for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
      "rawset", "select", "tonumber", "tostring", "type", "unpack", "xpcall", "getmetatable",
      "setmetatable"}) do
    env[name] = _G[name]
  end
  env.table = {concat = table.concat, insert = table.insert, remove = table.remove, sort = table.sort,
      getn = table.getn, maxn = table.maxn}
  env.os = {time = os.time, date = os.date}
  env._G = env
  local chunk = assert(loadstring(code))
  setfenv(chunk, env)
  local strings = getmetatable("")
  local index = strings.__index
  strings.__index = nil
  local ok, result = pcall(chunk)
  strings.__index = index
  if not ok then error(result, 0) end
  return result
end"""


def lua51_health(kind: str, obj: dict[str, Any]) -> tuple[str, str, str | None]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    run = lua.eval(SANDBOXED)
    result = run((ARGOCD / "health" / f"{kind}.lua").read_text(), lua.table_from(obj, recursive=True))
    return result["status"], result["message"] or "", result["deletionMessage"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_health_in_lua51_with_argocds_libraries(case: Case) -> None:
    status, message, deletion_message = lua51_health(case.kind, case.object())
    assert status == case.status
    assert message == case.message if case.exact else case.message in message
    if "deletionTimestamp" in case.object()["metadata"]:
        assert deletion_message == message


def test_the_sandbox_refuses_what_gopher_lua_lacks() -> None:
    """The tier would be worthless if the libraries Argo CD leaves out were reachable."""
    lua = lua51.LuaRuntime()
    run = lua.eval(SANDBOXED)
    for code in ('return string.format("%d", 1)', 'return ("x"):upper()', "return io.open('/etc/passwd')"):
        with pytest.raises(lua51.LuaError):
            run(code, None)
    with pytest.raises(lua51.LuaError, match="unexpected symbol"):
        run("return 3 // 2", None)  # Lua 5.3's floor division is a syntax error in 5.1
