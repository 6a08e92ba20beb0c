-- Backend-for-frontend: one client call fans out to several backends in parallel
-- (gw.http.multi) and answers with their JSON merged under one key each. A part that fails or
-- times out is reported under "errors" while the others are still served (partial answer);
-- when every part fails the answer is 502.
return {
  name = "bff",
  version = "1",
  schema = {
    parts = { type = "table", required = true },  -- { { key =, upstream =, path = }, ... }
    timeout = { type = "number", default = 1 },    -- seconds, per part
  },
  access = function(conf)
    local query = gw.request.get_raw_query()
    local calls = {}
    for i, part in ipairs(conf.parts) do
      calls[i] = { part.upstream, {
        path = part.path,
        query = query ~= "" and query or nil,  -- the client's query goes to every part
        timeout = conf.timeout,
        headers = { Accept = "application/json" },
      } }
    end
    local results = gw.http.multi(calls)  -- the worker serves others while this waits

    local merged, errors, ok = {}, {}, 0
    for i, res in ipairs(results) do
      local key = conf.parts[i].key
      if res.error then
        errors[key] = res.error
      elseif res.status ~= 200 then
        errors[key] = "status " .. res.status
      else
        local doc, err = gw.json.decode(res.body)
        if doc == nil then
          errors[key] = "invalid JSON: " .. tostring(err)
        else
          merged[key] = doc
          ok = ok + 1
        end
      end
    end
    if next(errors) then merged.errors = errors end
    local status = ok == 0 and 502 or 200
    return gw.response.exit(status, merged, { ["X-BFF-Parts"] = ok .. "/" .. #results })
  end,
}
