-- The bench policy (see /work/shared/anchors/README.md, "policy"), as a lunagate route script;
-- bench/conf/lua/gw_policy.lua is nginx+LuaJIT's version of the same thing.
--   1. key-auth: API key from the `apikey` header, looked up in a table built once at load time:
--      key-0001..key-1000 -> consumer-1..consumer-1000 (huge limit), key-limited ->
--      consumer-limited (1 req/s, burst 1); missing or unknown key -> 401
--   2. rate limit: a native token bucket per consumer (gw.ratelimit.take) -> 429 + Retry-After
--   3. request transformer: upstream gets X-Consumer-ID, loses X-Remove-Me
local get_header = gw.request.get_header
local set_header = gw.service.request.set_header
local clear_header = gw.service.request.clear_header
local exit = gw.response.exit
local take = gw.ratelimit.take
local ceil = math.ceil

-- Top-level code runs once, when the script is loaded: every per-consumer value (the bucket key,
-- the limit spec) is precomputed so a request does no string building and allocates nothing.
local HUGE = { limit = 1e7, per = 1, burst = 1e7 }
local consumers = {}
for i = 1, 1000 do
  local id = "consumer-" .. i
  consumers[string.format("key-%04d", i)] = { id = id, bucket = "consumer:" .. id, spec = HUGE }
end
consumers["key-limited"] = {
  id = "consumer-limited", bucket = "consumer:consumer-limited", spec = { limit = 1, per = 1, burst = 1 },
}

local UNAUTHORIZED = { message = "Invalid authentication credentials" }
local LIMITED = { message = "API rate limit exceeded" }

return {
  access = function(conf)
    local key = get_header("apikey")
    local c = key and consumers[key]
    if not c then return exit(401, UNAUTHORIZED) end
    local allowed, _, retry_after = take(c.bucket, c.spec)
    if not allowed then
      return exit(429, LIMITED, { ["Retry-After"] = tostring(ceil(retry_after)) })
    end
    set_header("X-Consumer-ID", c.id)
    clear_header("X-Remove-Me")
  end,
}
