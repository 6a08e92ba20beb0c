-- lunagate.cidr: IPv4/IPv6 address ranges, in pure Lua.
--
--   local cidr = require("lunagate.cidr")
--   local office = assert(cidr.parse({ "10.0.0.0/8", "192.168.1.7", "2001:db8::/32" }))
--   ...
--   if not office:contains(gw.request.get_client_ip()) then return gw.response.exit(403) end
--
-- Trusted stdlib code (docs/scripting.md, "The stdlib"): it runs with the sandbox's safe
-- globals, keeps the JIT, and scripts see this module read-only. parse is linear in the length
-- of the list's text, contains in the number of ranges; neither calls script code.
--
-- Syntax: IPv4 is a dotted quad of decimal octets without leading zeros ("010.0.0.1" is refused,
-- as inet_pton does); IPv6 is RFC 4291 text (hex groups, one "::", an optional dotted quad in
-- the last 32 bits; no zone "%eth0"). A range is "address/length" or a bare address (/32, /128).
-- The address of a range must have no bits set past its length ("10.0.0.1/8" is refused: it
-- is usually a typo for 10.0.0.0/8 or 10.0.0.1/32).
--
-- Addresses are held as 32-bit words (doubles, exact): one for IPv4, four for IPv6. A range is
-- a word array `net` and a divisor array `div` with div = 2^(bits of the word past the prefix):
-- an address is in the range when w - w % div == net for each word.

local type, error, setmetatable = type, error, setmetatable
local byte, sub, find, format = string.byte, string.sub, string.find, string.format

local M = {}

-- The dotted quad s[i..j] as a number, or nil.
local function ipv4_word(s, i, j)
  local word, dots, value, digits = 0, 0, 0, 0
  for p = i, j do  -- bounded by the text: every byte either extends an octet or ends one
    local c = byte(s, p)
    if c >= 48 and c <= 57 then
      if digits > 0 and value == 0 then return nil end  -- leading zero
      value = value * 10 + (c - 48)
      if value > 255 then return nil end
      digits = digits + 1
    elseif c == 46 and digits > 0 and dots < 3 then  -- "."
      word = word * 256 + value
      dots, value, digits = dots + 1, 0, 0
    else
      return nil
    end
  end
  if digits == 0 or dots ~= 3 then return nil end
  return word * 256 + value
end

-- Scratch space for the eight 16-bit groups of an IPv6 address: module-level, never visible to
-- scripts, and filled completely before use (no script code can run while it is in use).
local g = { 0, 0, 0, 0, 0, 0, 0, 0 }

local function hex_digit(c)
  if c >= 48 and c <= 57 then return c - 48 end
  if c >= 97 and c <= 102 then return c - 87 end
  if c >= 65 and c <= 70 then return c - 55 end
  return nil
end

-- The IPv6 address s[i..j] as four words, or nil.
local function ipv6_words(s, i, j)
  local ng, gap, p = 0, nil, i
  if byte(s, p) == 58 then  -- a leading ":" must be "::"
    if p + 1 > j or byte(s, p + 1) ~= 58 then return nil end
    gap, p = 0, p + 2
  end
  -- Each iteration reads one group and its separator: at most 8 iterations.
  while p <= j do
    if ng == 8 then return nil end
    local q, v = p, 0
    while q <= j and q - p < 5 do
      local d = hex_digit(byte(s, q))
      if not d then break end
      v = v * 16 + d
      q = q + 1
    end
    if q - p > 4 then return nil end
    if q <= j and byte(s, q) == 46 then  -- "." : the last 32 bits as a dotted quad
      if ng > 6 then return nil end
      local w = ipv4_word(s, p, j)
      if not w then return nil end
      g[ng + 1], g[ng + 2] = (w - w % 65536) / 65536, w % 65536
      ng = ng + 2
      break
    end
    if q == p then return nil end  -- empty group
    ng = ng + 1
    g[ng] = v
    if q > j then break end
    if byte(s, q) ~= 58 then return nil end
    if q < j and byte(s, q + 1) == 58 then  -- "::"
      if gap then return nil end
      gap, p = ng, q + 2
    elseif q == j then  -- a trailing single ":"
      return nil
    else
      p = q + 1
    end
  end
  if gap then
    if ng > 7 then return nil end  -- "::" stands for at least one group
    local tail = ng - gap
    for k = 0, tail - 1 do g[8 - k] = g[ng - k] end  -- move the groups after "::" to the end
    for k = gap + 1, 8 - tail do g[k] = 0 end
  elseif ng ~= 8 then
    return nil
  end
  return g[1] * 65536 + g[2], g[3] * 65536 + g[4], g[5] * 65536 + g[6], g[7] * 65536 + g[8]
end

-- An address: false (IPv4) and its word, or true (IPv6) and its four words; nil if s[i..j] is
-- neither. IPv4 is tried first: it fails at the first byte that is not a digit or a dot.
local function address(s, i, j)
  if i > j then return nil end
  local w = ipv4_word(s, i, j)
  if w then return false, w end
  local a, b, c, d = ipv6_words(s, i, j)
  if a then return true, a, b, c, d end
  return nil
end

local matchers = setmetatable({}, { __mode = "k" })  -- matcher object -> its ranges

local Matcher = {}

local matcher_mt = {
  __index = Matcher,
  __newindex = function() error("attempt to modify a cidr matcher", 2) end,
  __metatable = false,
  __tostring = function() return "cidr matcher" end,
}

-- Is the address (a, or a..d) in one of the ranges held in net/div (n words, `words` per range)?
local function match(net, div, n, words, a, b, c, d)
  for e = 0, n - 1, words do
    if a - a % div[e + 1] == net[e + 1] then
      if words == 1 then return true end
      if b - b % div[e + 2] == net[e + 2] and c - c % div[e + 3] == net[e + 3]
          and d - d % div[e + 4] == net[e + 4] then
        return true
      end
    end
  end
  return false
end

-- matcher:contains(ip): true if the address text ip is in one of the ranges, false if not,
-- nil and an error message if ip is not an address. An IPv4-mapped IPv6 address
-- (::ffff:a.b.c.d, as dual-stack sockets report IPv4 clients) is also tried as IPv4.
function Matcher.contains(self, ip)
  local r = matchers[self]
  if not r then error("bad self to 'contains' (use matcher:contains(ip))", 2) end
  if type(ip) ~= "string" then
    error(format("bad argument #1 to 'contains' (string expected, got %s)", type(ip)), 2)
  end
  local v6, a, b, c, d = address(ip, 1, #ip)
  if v6 == nil then return nil, "invalid IP address" end
  if not v6 then return match(r.net4, r.div4, r.n4, 1, a) end
  if a == 0 and b == 0 and c == 65535 and match(r.net4, r.div4, r.n4, 1, d) then return true end
  return match(r.net6, r.div6, r.n6, 4, a, b, c, d)
end

-- Appends the range of `len` bits of words (w[1..count]) to net/div at n; false if the address
-- has bits set past the prefix.
local function add_range(net, div, n, len, count, w)
  for k = 1, count do
    local bits = len - 32 * (k - 1)
    local dv = bits >= 32 and 1 or 2 ^ (32 - (bits > 0 and bits or 0))
    if w[k] % dv ~= 0 then return false end
    net[n + k], div[n + k] = w[k], dv
  end
  return true
end

-- A prefix length: 1 to 3 decimal digits without a leading zero; nil otherwise.
local function prefix_length(s, i, j)
  if i > j or j - i > 2 or (j > i and byte(s, i) == 48) then return nil end
  local v = 0
  for p = i, j do
    local c = byte(s, p)
    if c < 48 or c > 57 then return nil end
    v = v * 10 + (c - 48)
  end
  return v
end

local function bad_entry(i, s, why)
  if #s > 64 then s = sub(s, 1, 64) .. "..." end
  return nil, format("entry %d ('%s'): %s", i, s, why)
end

-- parse(list): a matcher for the ranges in list (an array of strings, or one string), or nil
-- and a message naming the first bad entry ("entry 2 ('10.0.0.300/8'): invalid address").
-- A list that is not a table or a string, or holds a non-string, is a misuse (an error).
function M.parse(list)
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then
    error(format("bad argument #1 to 'cidr.parse' (table or string expected, got %s)", type(list)), 2)
  end
  local r = { net4 = {}, div4 = {}, n4 = 0, net6 = {}, div6 = {}, n6 = 0 }
  local w = { 0, 0, 0, 0 }
  for i = 1, #list do
    local s = list[i]
    if type(s) ~= "string" then
      error(format("bad argument #1 to 'cidr.parse' (entry %d is a %s, not a string)", i, type(s)), 2)
    end
    local slash = find(s, "/", 1, true)
    local v6
    v6, w[1], w[2], w[3], w[4] = address(s, 1, slash and slash - 1 or #s)
    if v6 == nil then return bad_entry(i, s, "invalid address") end
    local max = v6 and 128 or 32
    local len = max
    if slash then
      len = prefix_length(s, slash + 1, #s)
      if not len or len > max then return bad_entry(i, s, "invalid prefix length (0.." .. max .. ")") end
    end
    local ok
    if v6 then
      ok = add_range(r.net6, r.div6, r.n6, len, 4, w)
      r.n6 = r.n6 + 4
    else
      ok = add_range(r.net4, r.div4, r.n4, len, 1, w)
      r.n4 = r.n4 + 1
    end
    if not ok then return bad_entry(i, s, "bits set past the prefix length") end
  end
  local m = setmetatable({}, matcher_mt)
  matchers[m] = r
  return m
end

return M
