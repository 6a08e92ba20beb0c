-- The bench policy for nginx + ngx_http_lua_module (LuaJIT): "Kong key-auth +
-- rate-limiting(local) + request-transformer" in one access handler. Adapted from the shared
-- anchors harness (lua/gw_policy.lua there); bench/conf/scripts/bench-policy.lua is lunagate's.
--  1. key-auth: API key from the `apikey` header, looked up in a Lua table (Kong: mlcache L1 hit)
--  2. token bucket per consumer in ngx.shared.DICT (2 get + 2 set; exact because 1 worker and no
--     yield between get and set)
--  3. request-transformer: add X-Consumer-ID, remove X-Remove-Me
local consumers_mod = require "gw_consumers"

local ngx = ngx
local now = ngx.now
local min = math.min
local var = ngx.var
local set_header = ngx.req.set_header
local clear_header = ngx.req.clear_header

local _M = {}
local consumers
local shm

function _M.init()
  consumers = consumers_mod.build()
end

function _M.access()
  if not shm then shm = ngx.shared.rl end
  local key = var.http_apikey
  local c = key and consumers[key]
  if not c then
    ngx.status = 401
    ngx.header["Content-Type"] = "application/json"
    ngx.say('{"message":"Invalid authentication credentials"}')
    return ngx.exit(401)
  end

  local t = now()
  local tokens = shm:get(c.tok_key)
  local last = shm:get(c.ts_key)
  if not tokens then tokens, last = c.burst, t end
  tokens = min(c.burst, tokens + (t - last) * c.rate)
  if tokens < 1 then
    ngx.header["Retry-After"] = "1"
    return ngx.exit(429)
  end
  shm:set(c.tok_key, tokens - 1)
  shm:set(c.ts_key, t)

  set_header("X-Consumer-ID", c.id)
  clear_header("X-Remove-Me")
end

return _M
