-- Consumer/credential store of the bench policy for nginx + ngx_http_lua_module (LuaJIT),
-- adapted from the shared anchors harness (lua/gw_consumers.lua there).
-- 1000 API keys "key-0001".."key-1000" -> "consumer-N" with a huge limit,
-- plus "key-limited" -> "consumer-limited" (1 req/s, burst 1) used by the functional check.
local _M = {}

function _M.build()
  local by_key = {}
  for i = 1, 1000 do
    local id = "consumer-" .. i
    by_key[string.format("key-%04d", i)] = {
      id = id, rate = 1e7, burst = 1e7,
      tok_key = "tok:" .. id, ts_key = "ts:" .. id,    -- precomputed shm keys (no per-request concat)
    }
  end
  by_key["key-limited"] = {
    id = "consumer-limited", rate = 1, burst = 1,
    tok_key = "tok:consumer-limited", ts_key = "ts:consumer-limited",
  }
  return by_key
end

return _M
