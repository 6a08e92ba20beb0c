-- JSON response field filtering: fields listed in the route's config are removed from the
-- upstream's JSON object before the client sees it (the body phase gets the whole body).
return {
  name = "json-filter",
  version = "1",
  schema = {
    remove = { type = "table", required = true },
  },
  response = function(conf) gw.response.set_header("X-Filtered", "1") end,  -- headers: response phase
  body = function(conf)
    local data, err = gw.json.decode(gw.response.get_body())
    if type(data) ~= "table" then
      gw.log.warn("json-filter: upstream body is not a JSON object: ", tostring(err))
      return
    end
    for _, field in ipairs(conf.remove) do data[field] = nil end
    gw.response.set_body(data)  -- a table is sent as JSON
  end,
}
