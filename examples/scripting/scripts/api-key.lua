-- API-key authentication with the keys in gw.shared (one copy for all workers), seeded from the
-- route's config and refreshed after `ttl`; each consumer then gets its own token bucket.
return {
  name = "api-key",
  version = "1",
  access = function(conf)
    local ttl = conf.ttl or 300
    if not gw.shared.get("apikey:seeded") then
      for key, consumer in pairs(conf.keys) do
        assert(gw.shared.set("apikey:" .. key, consumer, ttl))
      end
      gw.shared.set("apikey:seeded", 1, ttl)
    end
    local header = conf.header or "X-API-Key"
    local key = gw.request.get_header(header)
    local consumer = key and gw.shared.get("apikey:" .. key)
    if not consumer then
      return gw.response.exit(401, { error = "invalid or missing API key", request_id = gw.request.get_id() },
                              { ["WWW-Authenticate"] = 'ApiKey realm="lunagate"' })
    end
    local ok, _, retry = gw.ratelimit.take("consumer:" .. consumer, { limit = conf.per_second or 10, per = 1 })
    if not ok then
      return gw.response.exit(429, { error = "rate limited" }, { ["Retry-After"] = string.format("%d", math.ceil(retry)) })
    end
    gw.consumer.set(consumer)                        -- logged as the request's consumer
    gw.service.request.clear_header(header)          -- the key never reaches the upstream
    gw.service.request.set_header("X-Consumer-ID", consumer)
  end,
}
