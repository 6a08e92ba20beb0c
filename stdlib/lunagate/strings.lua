-- lunagate.strings: string helpers for route scripts, without Lua patterns.
--
--   local strings = require("lunagate.strings")
--   for _, part in ipairs(strings.split(gw.request.get_header("X-Forwarded-For") or "", ",")) do
--     local ip = strings.trim(part)
--   end
--
-- Trusted stdlib code (docs/scripting.md, "The stdlib"): it runs with the sandbox's safe
-- globals, keeps the JIT, and scripts see this module read-only. Every function takes time
-- linear in the length of its arguments and never calls script code. Separators are plain text:
-- "." or "%" mean themselves.

local type, error = type, error
local byte, sub, find, format = string.byte, string.sub, string.find, string.format

local M = {}

local function check_string(fname, n, v)
  if type(v) ~= "string" then
    error(format("bad argument #%d to 'strings.%s' (string expected, got %s)", n, fname, type(v)), 3)
  end
end

-- split(s, sep [, max]): the pieces of s between occurrences of the non-empty plain string
-- sep, as an array. Empty pieces are kept: split("a,,b", ",") is {"a", "", "b"} and split("", ",")
-- is {""}. With max (an integer >= 1) there are at most max pieces, the last one holding the
-- rest of s unsplit: split("k=v=w", "=", 2) is {"k", "v=w"}.
function M.split(s, sep, max)
  check_string("split", 1, s)
  check_string("split", 2, sep)
  if sep == "" then error("bad argument #2 to 'strings.split' (separator is empty)", 2) end
  if max ~= nil and (type(max) ~= "number" or max < 1 or max % 1 ~= 0) then
    error("bad argument #3 to 'strings.split' (integer >= 1 expected)", 2)
  end
  -- At most one separator starts at each byte, so the loop runs at most #s times.
  local limit = #s
  if max and max - 1 < limit then limit = max - 1 end
  local out, n, pos = {}, 0, 1
  for _ = 1, limit do
    local i, j = find(s, sep, pos, true)
    if not i then break end
    n = n + 1
    out[n] = sub(s, pos, i - 1)
    pos = j + 1
  end
  out[n + 1] = sub(s, pos)
  return out
end

-- trim(s): s without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r: Lua's
-- %s). Unlike s:match("^%s*(.-)%s*$"), linear in #s.
function M.trim(s)
  check_string("trim", 1, s)
  local i, j = 1, #s
  while i <= j do
    local c = byte(s, i)
    if c ~= 32 and (c < 9 or c > 13) then break end
    i = i + 1
  end
  while j > i do
    local c = byte(s, j)
    if c ~= 32 and (c < 9 or c > 13) then break end
    j = j - 1
  end
  return sub(s, i, j)
end

-- starts_with(s, prefix), ends_with(s, suffix): plain comparisons; every string starts and
-- ends with "".
function M.starts_with(s, prefix)
  check_string("starts_with", 1, s)
  check_string("starts_with", 2, prefix)
  return #prefix <= #s and sub(s, 1, #prefix) == prefix
end

function M.ends_with(s, suffix)
  check_string("ends_with", 1, s)
  check_string("ends_with", 2, suffix)
  return #suffix == 0 or (#suffix <= #s and sub(s, #s - #suffix + 1) == suffix)
end

return M
