-- lunagate.tablex: table helpers for route scripts.
--
--   local tablex = require("lunagate.tablex")
--   local opts = tablex.merge({ header = "X-API-Key", limit = 10 }, conf)
--
-- Trusted stdlib code (docs/scripting.md, "The stdlib"): it runs with the sandbox's safe
-- globals, keeps the JIT, and scripts see this module read-only. Every function takes time
-- linear in the size of its input (keys: n log n) and never calls script code, except the
-- metamethods of the tables it is given where noted (those run under the calling script's
-- budget).
--
-- Tables are walked raw (with next): a table's metatable is neither consulted nor copied (pick
-- alone reads t[k], so t's __index applies there). In deep_merge only "plain" tables (no
-- metatable) are merged and copied; any other table (a cidr matcher, a stdlib module, a table
-- with a metatable of the script's own) is a value like any other and is shared, not copied.

local type, next, rawget, error, getmetatable = type, next, rawget, error, getmetatable
local sort = table.sort
local format = string.format

local M = {}

-- Raises "bad argument #n to 'tablex.fname' (table expected, got string)" at the caller of the
-- public function (level 3: check -> public function -> script).
local function check_table(fname, n, v, nil_ok)
  if type(v) == "table" or (nil_ok and v == nil) then return end
  error(format("bad argument #%d to 'tablex.%s' (table%s expected, got %s)", n, fname,
               nil_ok and " or nil" or "", type(v)), 3)
end

-- merge(a, b): a new table with the fields of a, then those of b (b wins). Shallow: nested
-- tables are shared with the inputs. Either argument may be nil (an empty table), so that
-- merge(defaults, conf) works when the route has no config.
function M.merge(a, b)
  check_table("merge", 1, a, true)
  check_table("merge", 2, b, true)
  local out = {}
  if a then for k, v in next, a do out[k] = v end end
  if b then for k, v in next, b do out[k] = v end end
  return out
end

local MAX_DEPTH = 100

local function is_plain(v)
  return type(v) == "table" and getmetatable(v) == nil
end

-- Raised from inside the recursion: deep at `depth` has depth - 1 deep frames below it, then
-- deep_merge, then the script: level depth + 3 counted from here.
local function too_deep(depth)
  error(format("tablex.deep_merge: tables nested deeper than %d levels", MAX_DEPTH), depth + 3)
end

local EMPTY = {}  -- stands for a missing side (never written): deep(t, EMPTY) copies t

-- Merges plain tables a and b into a new table. memo[a][b] holds the result of each pair
-- already merged: a table that occurs twice is copied once, a cycle comes out as a cycle, and
-- the work is bounded by the number of (a, b) pairs of tables met at the same place.
local function deep(a, b, memo, depth)
  local row = memo[a]
  if not row then
    row = {}
    memo[a] = row
  end
  local r = row[b]
  if r then return r end
  if depth > MAX_DEPTH then too_deep(depth) end
  r = {}
  row[b] = r
  for k, va in next, a do
    local vb = rawget(b, k)
    if is_plain(va) then
      if vb == nil or is_plain(vb) then
        local m = deep(va, vb or EMPTY, memo, depth + 1)
        r[k] = m
      end  -- otherwise b's value wins: set by the loop below
    elseif vb == nil then
      r[k] = va
    end
  end
  for k, vb in next, b do
    if not is_plain(vb) then
      r[k] = vb
    elseif not is_plain(rawget(a, k)) then  -- (both plain: merged above)
      local m = deep(EMPTY, vb, memo, depth + 1)
      r[k] = m
    end
  end
  return r
end

-- deep_merge(a, b): like merge, but where both sides hold a plain table the two are merged
-- recursively. The result shares no plain table with the inputs (they are copied), and
-- neither input is modified. Either argument may be nil; a and b themselves are read raw even
-- if they have a metatable. Nesting is limited to 100 levels.
function M.deep_merge(a, b)
  check_table("deep_merge", 1, a, true)
  check_table("deep_merge", 2, b, true)
  local r = deep(a or EMPTY, b or EMPTY, {}, 1)
  return r  -- not a tail call: the error levels above count this frame
end

-- pick(t, keys): a new table with t[k] for each k of the array `keys` (absent ones skipped).
-- Reads t[k] normally, so t's __index applies.
function M.pick(t, keys)
  check_table("pick", 1, t)
  check_table("pick", 2, keys)
  local out = {}
  for i = 1, #keys do
    local k = keys[i]
    if k ~= nil and k == k then  -- k == k: NaN cannot be a key
      local v = t[k]
      if v ~= nil then out[k] = v end
    end
  end
  return out
end

-- omit(t, keys): a shallow copy of t without the keys listed in the array `keys`.
function M.omit(t, keys)
  check_table("omit", 1, t)
  check_table("omit", 2, keys)
  local drop = {}
  for i = 1, #keys do
    local k = keys[i]
    if k ~= nil and k == k then drop[k] = true end  -- k == k: NaN cannot be a key
  end
  local out = {}
  for k, v in next, t do
    if not drop[k] then out[k] = v end
  end
  return out
end

-- Order of keys(): numbers (ascending), then strings (byte order), then false, true, then any
-- other type grouped by type name (in no particular order within a type).
local RANK = { number = 1, string = 2, boolean = 3 }

local function key_less(x, y)
  local tx, ty = type(x), type(y)
  if tx ~= ty then
    local rx, ry = RANK[tx] or 4, RANK[ty] or 4
    if rx ~= ry then return rx < ry end
    return tx < ty
  end
  if tx == "number" or tx == "string" then return x < y end
  if tx == "boolean" then return y and not x end
  return false
end

-- keys(t): an array of t's keys, sorted as above.
function M.keys(t)
  check_table("keys", 1, t)
  local out, n = {}, 0
  local first, mixed = nil, false
  for k in next, t do
    n = n + 1
    out[n] = k
    local tk = type(k)
    if not first then first = tk elseif tk ~= first then mixed = true end
  end
  if mixed or (first ~= "number" and first ~= "string") then
    sort(out, key_less)
  else
    sort(out)  -- only numbers or only strings: the built-in order, no Lua comparator
  end
  return out
end

-- is_array(v): true if v is a table whose keys are exactly 1..n (the empty table included;
-- note that gw.json.encode writes an empty table as {}). False for any other value.
function M.is_array(v)
  if type(v) ~= "table" then return false end
  local n, max = 0, 0
  for k in next, v do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
    if k > max then max = k end
  end
  return max == n
end

return M
