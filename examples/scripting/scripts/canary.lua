-- Canary routing: requests with `X-Canary: 1`, or a fixed share of the others, go to the canary
-- upstream. The share is decided per request id, so a retried request stays on its side.
return {
  name = "canary",
  version = "1",
  access = function(conf)
    local upstream = conf.upstream
    local forced = gw.request.get_header("X-Canary")
    local pick = forced == "1"
    if not pick and forced ~= "0" then
      local id = gw.request.get_id()
      local h = 0
      for i = 1, #id do h = (h * 31 + id:byte(i)) % 1000003 end
      pick = (h % 100) < (conf.percent or 0)
    end
    if pick then
      local ok, err = gw.service.set_upstream(upstream)
      if not ok then gw.log.err("canary upstream ", upstream, ": ", err) end
      gw.service.request.set_header("X-Canary-Routed", "1")
    end
  end,
}
