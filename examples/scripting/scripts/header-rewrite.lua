-- Header rewrite on the way in, and response headers stripped on the way out (the upstream's
-- Server and X-Powered-By say too much about it).
return {
  name = "header-rewrite",
  version = "1",
  rewrite = function(conf)
    local agent = gw.request.get_header("User-Agent") or "unknown"
    gw.service.request.set_header("X-Client-Agent", agent:sub(1, 64))
    gw.service.request.clear_header("Cookie")
  end,
  response = function(conf)
    for _, name in ipairs((conf and conf.strip) or { "Server", "X-Powered-By" }) do
      gw.response.clear_header(name)
    end
    gw.response.set_header("X-Served-By", "lunagate")
  end,
}
