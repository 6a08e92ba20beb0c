-- Tenant header injection: the client names its tenant in X-Tenant; the upstream gets it as the
-- identity header (configurable) and never sees a client-supplied one.
return {
  name = "tenant-header",
  version = "1",
  access = function(conf)
    local header = (conf and conf.header) or "X-Tenant-ID"
    gw.service.request.clear_header(header)  -- no spoofing: drop what the client sent
    local tenant = gw.request.get_header("X-Tenant")
    if not tenant or not tenant:match("^[%w%-]+$") then
      return gw.response.exit(400, { error = "missing or invalid X-Tenant", request_id = gw.request.get_id() })
    end
    gw.service.request.set_header(header, tenant)
    gw.service.request.clear_header("X-Tenant")
  end,
}
