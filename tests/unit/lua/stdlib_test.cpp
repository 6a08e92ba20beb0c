// The trusted stdlib (stdlib/lunagate/*.lua) as scripts see it: require, each module's
// functions (good and bad input), read-only shared proxies, budgets across the boundary, and the
// JIT policy (stdlib code may be compiled, user code never is). A check that fails inside Lua
// raises error() with what it got.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "lua/stdlib.hpp"
#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

const char* const kPrelude = R"LUA(
local T, S, C = require("lunagate.tablex"), require("lunagate.strings"), require("lunagate.cidr")
local function eq(got, want, what)
  if got ~= want then
    error((what or "value") .. ": got " .. tostring(got) .. ", want " .. tostring(want), 2)
  end
end
-- A misuse: the call raises an error that contains want_err and names the caller's line (the
-- call is made from a Lua function here, not directly by pcall, so that there is a line).
local function fails(want_err, fn, ...)
  local ok, err = pcall(function(...) local r = fn(...) return r end, ...)
  if ok then error("no error raised (want " .. want_err .. ")", 2) end
  err = tostring(err)
  if not err:find(want_err, 1, true) then error("error " .. err .. ", want " .. want_err, 2) end
  if err:find("stdlib/", 1, true) then error("error names the stdlib, not the caller: " .. err, 2) end
end
-- Deterministic text of a value: tables with sorted keys, strings quoted with ''.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) ~= "table" then return tostring(v) end
  if depth > 6 then return "..." end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == "boolean" then return not a and b end
    return a < b
  end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = tostring(k) .. "=" .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ",") .. "}"
end
)LUA";

std::string script(const std::string& body) {
  return std::string(kPrelude) + "return { access = function(req)\n" + body + "\nend }\n";
}

RunResult run_std(Vm& vm, const std::string& body, const Budget& b = budget(2000, 64u << 20)) {
  ScriptHandle h = load_or_throw(vm, script(body), "scripts/std.lua");
  const RunResult r = vm.run(h, Phase::access, b, nullptr, nullptr);
  vm.unload(h);
  return r;
}

#define REQUIRE_STD_OK(vm, body)             \
  do {                                       \
    const RunResult r_ = run_std(vm, body);  \
    INFO(r_.message);                        \
    REQUIRE(r_.outcome == Outcome::ok);      \
  } while (0)

// The value of a Lua expression in a handler: "value:<tostring>" or "error:<message>".
std::string eval(Vm& vm, const std::string& expr) {
  // Not a tail call: the error positions name this line (t.lua:2).
  const Ran r = run_body(vm, "local ok, v = pcall(function() local v = (" + expr +
                                 ") return v end)\n"
                                 "return gw.test.respond({ status = 200, body = (ok and 'value:' or 'error:') .. tostring(v) })");
  if (r.result.outcome != Outcome::ok) return "run:" + r.result.message;
  return r.req.response.body;
}

double ms_since(const CpuTimer& t0) { return t0.ms(); }  // CPU time: see CpuTimer

}  // namespace

TEST_CASE("lua stdlib: require returns the embedded modules and nothing else", "[lua-stdlib]") {
  Vm vm;
  register_test_functions(vm);
  REQUIRE(lg::lua::stdlib_modules().size() >= 3);
  for (const auto& m : lg::lua::stdlib_modules()) {
    INFO(m.name);
    CHECK(eval(vm, "type(require('" + std::string(m.name) + "'))") == "value:table");
    CHECK(m.chunkname == "stdlib/" + [&] {
      std::string p(m.name);
      for (char& c : p)
        if (c == '.') c = '/';
      return p;
    }() + ".lua");
  }
  const std::string list = "(only the stdlib is available: lunagate.cidr, lunagate.strings, lunagate.tablex)";
  CHECK(eval(vm, "require('os')") == "error:t.lua:2: module 'os' not found " + list);
  for (const char* name : {"lunagate", "ffi", "jit", "debug", "io", "lunagate.tablex.x", "LUNAGATE.TABLEX", ""})
    CHECK(eval(vm, "require('" + std::string(name) + "')") ==
          "error:t.lua:2: module '" + std::string(name) + "' not found " + list);
  CHECK(eval(vm, "require(('x'):rep(100))") == "error:t.lua:2: module '" + std::string(64, 'x') + "...' not found " + list);
  CHECK(eval(vm, "require(42)") == "error:t.lua:2: bad argument #1 to 'require' (string expected, got number)");
  CHECK(eval(vm, "require()") == "error:t.lua:2: bad argument #1 to 'require' (string expected, got no value)");
  CHECK(eval(vm, "tostring(package) .. tostring(module)") == "value:nilnil");
  CHECK(eval(vm, "require('lunagate.tablex') == require('lunagate.tablex')") == "value:true");

  // At a script's top level too, and the same table for every script.
  const ScriptHandle a = load_or_throw(vm,
                                       "local T = require('lunagate.tablex')\n" +
                                           access_script("return gw.test.respond({ status = 200, body = tostring(T) })"),
                                       "a.lua");
  const ScriptHandle b = load_or_throw(
      vm, access_script("return gw.test.respond({ status = 200, body = tostring(require('lunagate.tablex')) })"),
      "b.lua");
  const std::string ta = run_access(vm, a).req.response.body, tb = run_access(vm, b).req.response.body;
  CHECK(ta.rfind("table: ", 0) == 0);
  CHECK(ta == tb);
  for (ScriptHandle h : {a, b}) vm.unload(h);
}

TEST_CASE("lua stdlib: tablex", "[lua-stdlib]") {
  Vm vm;
  REQUIRE_STD_OK(vm, R"LUA(
    -- merge: shallow, b wins, nil is an empty table, inputs untouched.
    local a, b = { x = 1, y = 2, n = {} }, { y = 3, z = 4 }
    local m = T.merge(a, b)
    eq(show(m), "{n={},x=1,y=3,z=4}")
    eq(m.n, a.n, "nested tables are shared")
    eq(show(a) .. show(b), "{n={},x=1,y=2}{y=3,z=4}")
    eq(show(T.merge(nil, { k = 1 })) .. show(T.merge({ k = 1 })) .. show(T.merge()), "{k=1}{k=1}{}")
    eq(show(T.merge({ 1, 2, 3 }, { 9 })), "{1=9,2=2,3=3}")
    eq(show(T.merge(setmetatable({}, { __index = { hidden = 1 } }), {})), "{}", "read raw")
    fails("scripts/std.lua:", T.merge, 1, {})
    fails("bad argument #1 to 'tablex.merge' (table or nil expected, got number)", T.merge, 1, {})
    fails("bad argument #2 to 'tablex.merge' (table or nil expected, got string)", T.merge, {}, "x")

    -- deep_merge: recursive where both sides are plain tables, a fresh result.
    local da = { a = { x = 1, y = 2, deep = { k = "a" } }, b = 1, s = { 1, 2 } }
    local db = { a = { y = 3, z = 4, deep = { j = "b" } }, c = { d = 1 }, s = "scalar wins" }
    local d = T.deep_merge(da, db)
    eq(show(d), "{a={deep={j='b',k='a'},x=1,y=3,z=4},b=1,c={d=1},s='scalar wins'}")
    eq(show(da), "{a={deep={k='a'},x=1,y=2},b=1,s={1=1,2=2}}", "a untouched")
    eq(show(db), "{a={deep={j='b'},y=3,z=4},c={d=1},s='scalar wins'}", "b untouched")
    eq(d.a ~= da.a and d.a ~= db.a and d.c ~= db.c and d.a.deep ~= da.a.deep, true, "no plain table shared")
    eq(show(T.deep_merge({ a = 1 }, { a = { x = 1 } })), "{a={x=1}}")
    eq(show(T.deep_merge({ a = { x = 1 } }, { a = false })), "{a=false}")
    eq(show(T.deep_merge(nil, { a = { 1 } })) .. show(T.deep_merge({ a = { 1 } })) .. show(T.deep_merge()), "{a={1=1}}{a={1=1}}{}")
    local mt_t = setmetatable({ v = 1 }, {})
    local r = T.deep_merge({ m = mt_t }, { n = mt_t })
    eq(r.m == mt_t and r.n == mt_t, true, "a table with a metatable is a value, shared")
    local cyc = { name = "c" } cyc.self = cyc
    r = T.deep_merge(cyc, nil)
    eq(r.self == r and r ~= cyc and r.name == "c", true, "a cycle comes out as a cycle")
    local cb = { extra = true } cb.self = cb
    r = T.deep_merge(cyc, cb)
    eq(r.self == r and r.extra and r.name == "c", true, "merged cycles")
    local shared = { v = 1 }
    r = T.deep_merge({ p = shared, q = shared })
    eq(r.p == r.q and r.p ~= shared, true, "a table seen twice is copied once")
    local dag = {} for _ = 1, 60 do dag = { dag, dag } end  -- 2^60 paths, 61 tables
    r = T.deep_merge(dag, dag)
    eq(r[1] == r[2], true, "shared structure is merged once")
    local nest = {} for _ = 1, 150 do nest = { nest } end
    fails("scripts/std.lua:", T.deep_merge, nest, {})
    fails("tablex.deep_merge: tables nested deeper than 100 levels", T.deep_merge, {}, nest)
    local ok99 = {} for _ = 1, 98 do ok99 = { ok99 } end
    eq(type(T.deep_merge(ok99, ok99)), "table")
    fails("bad argument #2 to 'tablex.deep_merge' (table or nil expected, got boolean)", T.deep_merge, {}, true)

    -- pick / omit
    eq(show(T.pick({ a = 1, b = 2, c = 3 }, { "a", "c", "zz" })), "{a=1,c=3}")
    eq(show(T.pick(setmetatable({}, { __index = function(_, k) return k .. "!" end }), { "x", 0 / 0 })), "{x='x!'}")
    eq(show(T.pick({ 10, 20, 30 }, { 3, 1 })), "{1=10,3=30}")
    fails("bad argument #1 to 'tablex.pick' (table expected, got nil)", T.pick, nil, {})
    fails("bad argument #2 to 'tablex.pick' (table expected, got string)", T.pick, {}, "a")
    eq(show(T.omit({ a = 1, b = 2, c = 3 }, { "b", 0 / 0, "zz" })), "{a=1,c=3}")
    eq(show(T.omit({ 1, 2, 3 }, { 2 })), "{1=1,3=3}")
    fails("bad argument #2 to 'tablex.omit' (table expected, got nil)", T.omit, {})

    -- keys: numbers, strings, false, true, then other types
    eq(show(T.keys({ b = 1, a = 2, [3] = 0, [1] = 0, [-2.5] = 0, [true] = 0, [false] = 0 })),
       "{1=-2.5,2=1,3=3,4='a',5='b',6=false,7=true}")
    eq(show(T.keys({ zeta = 1, alpha = 1, Beta = 1 })), "{1='Beta',2='alpha',3='zeta'}")
    eq(show(T.keys({ 5, 4, 3 })) .. show(T.keys({})), "{1=1,2=2,3=3}{}")
    local f, t = function() end, {}
    local ks = T.keys({ [t] = 1, x = 1, [f] = 1, [2] = 1 })
    eq(ks[1] == 2 and ks[2] == "x" and ks[3] == f and ks[4] == t, true, "functions before tables")
    fails("bad argument #1 to 'tablex.keys' (table expected, got string)", T.keys, "abc")

    -- is_array
    eq(T.is_array({}) and T.is_array({ 1, 2, 3 }) and T.is_array({ [1] = "a", [2] = "b" }), true)
    eq(T.is_array({ [1] = 1, [3] = 3 }) or T.is_array({ a = 1 }) or T.is_array({ 1, 2, x = 3 }), false)
    eq(T.is_array({ [1.5] = 1 }) or T.is_array({ [0] = 1 }) or T.is_array({ [1 / 0] = 1 }), false)
    eq(T.is_array("x") or T.is_array(nil) or T.is_array(42), false)
    eq(T.is_array(setmetatable({}, { __index = { 1 } })), true, "read raw")
  )LUA");
}

TEST_CASE("lua stdlib: strings", "[lua-stdlib]") {
  Vm vm;
  REQUIRE_STD_OK(vm, R"LUA(
    eq(show(S.split("a,b,,c", ",")), "{1='a',2='b',3='',4='c'}")
    eq(show(S.split("", ",")) .. show(S.split(",", ",")), "{1=''}{1='',2=''}")
    eq(show(S.split("a.b%c", ".")) .. show(S.split("a%b", "%")), "{1='a',2='b%c'}{1='a',2='b'}")
    eq(show(S.split("a--b---c", "--")), "{1='a',2='b',3='-c'}")
    eq(show(S.split("k=v=w", "=", 2)) .. show(S.split("abc", ",", 1)) .. show(S.split("a,b", ",", 99)),
       "{1='k',2='v=w'}{1='abc'}{1='a',2='b'}")
    eq(#S.split(("a,"):rep(100000), ","), 100001)
    eq(#S.split(("x"):rep(100000), "y"), 1)
    fails("scripts/std.lua:", S.split, 1, ",")
    fails("bad argument #1 to 'strings.split' (string expected, got number)", S.split, 1, ",")
    fails("bad argument #2 to 'strings.split' (string expected, got nil)", S.split, "a")
    fails("bad argument #2 to 'strings.split' (separator is empty)", S.split, "a", "")
    for _, max in ipairs({ 0, -1, 1.5, 1 / 0, 0 / 0 }) do
      fails("bad argument #3 to 'strings.split' (integer >= 1 expected)", S.split, "a", ",", max)
    end
    fails("bad argument #3 to 'strings.split' (integer >= 1 expected)", S.split, "a", ",", "2")

    eq(S.trim("  a b \t\n"), "a b")
    eq(S.trim("") .. S.trim("   ") .. S.trim("\v\f\r\n\t "), "")
    eq(S.trim("x") .. S.trim(" x") .. S.trim("x ") .. S.trim("\0x\0"), "xxx\0x\0")
    local long = (" "):rep(200000) .. "mid" .. ("\t"):rep(200000)
    eq(S.trim(long), "mid")
    fails("bad argument #1 to 'strings.trim' (string expected, got table)", S.trim, {})

    eq(S.starts_with("hello", "he") and S.starts_with("hello", "hello") and S.starts_with("x", ""), true)
    eq(S.starts_with("he", "hello") or S.starts_with("hello", "lo") or S.starts_with("", "x"), false)
    eq(S.ends_with("hello", "lo") and S.ends_with("hello", "hello") and S.ends_with("x", "") and S.ends_with("", ""), true)
    eq(S.ends_with("lo", "hello") or S.ends_with("hello", "he") or S.ends_with("", "x"), false)
    fails("bad argument #2 to 'strings.starts_with' (string expected, got number)", S.starts_with, "a", 1)
    fails("bad argument #1 to 'strings.ends_with' (string expected, got nil)", S.ends_with, nil, "a")
  )LUA");
}

TEST_CASE("lua stdlib: cidr ranges, contains and malformed input", "[lua-stdlib]") {
  Vm vm;
  REQUIRE_STD_OK(vm, R"LUA(
    local m = assert(C.parse({ "10.0.0.0/8", "192.168.1.7", "192.168.4.0/23", "2001:db8::/33", "::1", "fe80::/10" }))
    local function yes(ip) eq(m:contains(ip), true, ip) end
    local function no(ip) eq(m:contains(ip), false, ip) end
    for _, ip in ipairs({ "10.0.0.0", "10.255.255.255", "192.168.1.7", "192.168.4.0", "192.168.5.255",
                          "2001:db8::", "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff", "::1", "0:0:0:0:0:0:0:1",
                          "fe80::1", "febf:ffff::", "::ffff:10.9.9.9", "::FFFF:10.0.0.1", "2001:DB8::42" }) do
      yes(ip)
    end
    for _, ip in ipairs({ "11.0.0.0", "9.255.255.255", "192.168.1.8", "192.168.6.0", "192.168.3.255",
                          "2001:db8:8000::", "2001:db9::", "::2", "::", "fec0::", "::ffff:11.0.0.1",
                          "::ffff:0:10.0.0.1", "10.0.0.1.in-addr" }) do
      if ip == "10.0.0.1.in-addr" then eq(m:contains(ip), nil, ip) else no(ip) end
    end
    eq(select(2, m:contains("not an ip")), "invalid IP address")
    eq(select(2, m:contains("")), "invalid IP address")
    fails("scripts/std.lua:", m.contains, m, nil)
    fails("bad argument #1 to 'contains' (string expected, got nil)", m.contains, m, nil)
    fails("bad self to 'contains' (use matcher:contains(ip))", m.contains, "10.0.0.1")
    fails("attempt to modify a cidr matcher", function() m.contains = print end)
    eq(getmetatable(m), false)
    eq(tostring(m), "cidr matcher")

    local any4, any6 = assert(C.parse("0.0.0.0/0")), assert(C.parse({ "::/0" }))
    eq(any4:contains("1.2.3.4") and any4:contains("255.255.255.255") and not any4:contains("::1"), true)
    eq(any6:contains("::1") and any6:contains("::ffff:1.2.3.4") and not any6:contains("1.2.3.4"), true)
    local none = assert(C.parse({}))
    eq(none:contains("1.2.3.4") or none:contains("::"), false)
    local forms = assert(C.parse({ "2001:0db8:0000:0000:0000:0000:0000:0001/128", "64:ff9b::192.0.2.33",
                                   "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4" }))
    for _, ip in ipairs({ "2001:db8::1", "64:ff9b::c000:221", "1:2:3:4:5:6:7:0", "0:2:3:4:5:6:7:8",
                          "1:2:3:4:5:6:102:304" }) do
      eq(forms:contains(ip), true, ip)
    end

    local function bad(entry, why)
      local v, err = C.parse({ "10.0.0.0/8", entry })
      eq(v, nil, entry)
      eq(err, "entry 2 ('" .. entry .. "'): " .. why, entry)
    end
    for _, e in ipairs({ "10.0.0.300/8", "10.0.0/8", "10.0.0.1.1", "010.0.0.1", "1.2.3.-4", "1.2.3.4 ", " 1.2.3.4",
                         "1..2.3", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1", "1:", "1:::2", "12345::", "fe80::1%eth0",
                         "::ffff:1.2.3", "::ffff:1.2.3.04", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "g::1",
                         "1.2.3.4::", "1:2:3:4:5:6:7:1.2.3.4", "", "/8", "localhost" }) do
      bad(e, "invalid address")
    end
    for _, e in ipairs({ "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "::/129",
                         "::/1000", "10.0.0.0/ 8" }) do
      bad(e, "invalid prefix length (0.." .. (e:find(":") and 128 or 32) .. ")")
    end
    for _, e in ipairs({ "10.0.0.1/8", "192.168.1.0/23", "2001:db8::1/64", "::1/0", "2001:db8:4000::/33" }) do
      bad(e, "bits set past the prefix length")
    end
    local v, err = C.parse({ ("1"):rep(100) })
    eq(err, "entry 1 ('" .. ("1"):rep(64) .. "...'): invalid address")
    fails("bad argument #1 to 'cidr.parse' (table or string expected, got nil)", C.parse)
    fails("bad argument #1 to 'cidr.parse' (entry 2 is a number, not a string)", C.parse, { "1.2.3.4", 5 })
  )LUA");
}

// Random addresses and near-misses, checked against inet_pton/inet_ntop.
TEST_CASE("lua stdlib: cidr agrees with inet_pton and with prefix arithmetic", "[lua-stdlib]") {
  std::mt19937_64 rng(4291);
  std::string cases = "local cases = {\n";
  std::string expect;
  const std::string alphabet = "0123456789abcdefABCDEF:.";
  std::vector<std::string> samples;
  for (int i = 0; i < 3000; ++i) {
    unsigned char bytes[16];
    for (auto& b : bytes) b = static_cast<unsigned char>(rng() % 4 == 0 ? 0 : rng());
    char text[INET6_ADDRSTRLEN];
    const bool v6 = rng() % 2;
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text);
    std::string s = text;
    switch (rng() % 4) {  // 1 in 4 kept as is, the others mutated
      case 1: s.erase(rng() % s.size(), 1); break;
      case 2: s.insert(rng() % (s.size() + 1), 1, alphabet[rng() % alphabet.size()]); break;
      case 3: s[rng() % s.size()] = alphabet[rng() % alphabet.size()]; break;
      default: break;
    }
    unsigned char out[16];
    const bool valid = inet_pton(AF_INET, s.c_str(), out) == 1 || inet_pton(AF_INET6, s.c_str(), out) == 1;
    cases += "'" + s + "',\n";
    expect += valid ? '1' : '0';
  }
  cases += "}\n";
  // Prefix arithmetic: a random /len network and addresses around its edges.
  std::string ranges = "local ranges = {\n";
  std::string rexpect;
  for (int i = 0; i < 400; ++i) {
    const bool v6 = i % 2;
    const int bits = v6 ? 128 : 32, len = static_cast<int>(rng() % (bits + 1));
    unsigned char net[16] = {}, probe[16];
    for (int b = 0; b < bits / 8; ++b) net[b] = static_cast<unsigned char>(rng());
    for (int bit = len; bit < bits; ++bit) net[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
    std::memcpy(probe, net, 16);
    if (rng() % 2 && len < bits) {  // flip a bit past the prefix: still inside
      const int bit = len + static_cast<int>(rng() % (bits - len));
      probe[bit / 8] ^= static_cast<unsigned char>(0x80 >> (bit % 8));
      rexpect += '1';
    } else if (len > 0) {  // flip a bit of the prefix: outside
      const int bit = static_cast<int>(rng() % len);
      probe[bit / 8] ^= static_cast<unsigned char>(0x80 >> (bit % 8));
      rexpect += '0';
    } else {
      rexpect += '1';
    }
    char a[INET6_ADDRSTRLEN], p[INET6_ADDRSTRLEN];
    inet_ntop(v6 ? AF_INET6 : AF_INET, net, a, sizeof a);
    inet_ntop(v6 ? AF_INET6 : AF_INET, probe, p, sizeof p);
    ranges += "{ '" + std::string(a) + "/" + std::to_string(len) + "', '" + p + "' },\n";
  }
  ranges += "}\n";
  Vm vm;
  REQUIRE_STD_OK(vm, cases + ranges + R"LUA(
    local got = {}
    for i, s in ipairs(cases) do
      local m = C.parse(s)
      got[i] = m and "1" or "0"
      if m then eq(m:contains(s), true, s) end
    end
    eq(table.concat(got), ")LUA" + expect + R"LUA(", "parse vs inet_pton")
    got = {}
    for i, r in ipairs(ranges) do
      local m = assert(C.parse(r[1]))
      got[i] = m:contains(r[2]) and "1" or "0"
    end
    eq(table.concat(got), ")LUA" + rexpect + R"LUA(", "contains vs prefix arithmetic")
  )LUA");
}

TEST_CASE("lua stdlib: modules are read-only, shared, and see none of a script's globals", "[lua-stdlib]") {
  Vm vm;
  register_test_functions(vm);
  REQUIRE_STD_OK(vm, R"LUA(
    fails("attempt to modify a read-only table (field 'merge')", function() T.merge = nil end)
    fails("attempt to modify a read-only table (field 'evil')", function() S.evil = 1 end)
    fails("rawset: attempt to modify a read-only table", rawset, C, "parse", print)
    fails("table.insert: attempt to modify a read-only table", table.insert, T, 1)
    fails("cannot change a protected metatable", setmetatable, T, nil)
    eq(getmetatable(T), false)
    eq(next(T), nil, "a proxy is empty")
    eq(type(T.merge) .. type(S.split) .. type(C.parse), "functionfunctionfunction")
  )LUA");
  // A script that tries to tamper with a module, then another script: the module is intact and
  // results are fresh tables per call.
  const ScriptHandle a = load_or_throw(vm,
                                       "local S = require('lunagate.strings')\n"
                                       "SPLIT = S.split\n" +
                                           access_script("pcall(function() S.split = function() return {'evil'} end end)\n"
                                                         "local r = S.split('a,b', ',') r[1] = 'evil' r.x = 1\n"
                                                         "return gw.test.respond({ status = 200, body = 'clean' })"),
                                       "a.lua");
  const ScriptHandle b = load_or_throw(
      vm, access_script("local r = require('lunagate.strings').split('a,b', ',')\n"
                        "return gw.test.respond({ status = 200, body = r[1] .. r[2] .. tostring(r.x) .. tostring(SPLIT) })"),
      "b.lua");
  CHECK(run_access(vm, a).kind == "OK_CLEAN");
  CHECK(run_access(vm, b).req.response.body == "abnilnil");
  // The stdlib's environment is its own: a script that shadows type/next/string at load time
  // changes nothing for the stdlib functions it calls.
  const ScriptHandle c = load_or_throw(vm,
                                       "local T = require('lunagate.tablex')\n"
                                       "type = function() return 'table' end\n"
                                       "next = function() return nil end\n"
                                       "string = { format = function() return 'PWNED' end }\n" +
                                           access_script("local ok, e = pcall(function() local r = T.merge(1, {}) return r end)\n"
                                                         "return gw.test.respond({ status = 200, body = "
                                                         "tostring(e) .. '|' .. #T.keys({ a = 1, b = 2 }) })"),
                                       "c.lua");
  CHECK(run_access(vm, c).req.response.body ==
        "c.lua:6: bad argument #1 to 'tablex.merge' (table or nil expected, got number)|2");
  for (ScriptHandle h : {a, b, c}) vm.unload(h);
}

TEST_CASE("lua stdlib: the CPU and memory budgets still stop the script", "[lua-stdlib]") {
  Vm vm;
  register_test_functions(vm);
  constexpr double kLate = 400;  // as budget_test.cpp: a bound on the thread's CPU time, generous
  const char* bodies[] = {
      // A user callback (an __index metamethod) that loops, called by a stdlib function.
      "local T = require('lunagate.tablex')\n"
      "return T.pick(setmetatable({}, { __index = function() while true do end end }), { 'a' })",
      // A user loop after require.
      "local T = require('lunagate.tablex')\nwhile true do end",
      // Hot stdlib calls (compiled once hot) in a user loop.
      "local T, S, C = require('lunagate.tablex'), require('lunagate.strings'), require('lunagate.cidr')\n"
      "local m = C.parse({ '10.0.0.0/8', '2001:db8::/32' })\n"
      "while true do T.is_array({ 1, 2, 3 }) S.trim('  x  ') S.split('a,b,c', ',') m:contains('10.1.2.3') end",
      // Big inputs, over and over: linear work per call, the loop is the script's.
      "local S = require('lunagate.strings')\nlocal s = ('a,'):rep(50000)\nwhile true do local _ = #S.split(s, ',') end",
      "local S = require('lunagate.strings')\nlocal s = (' '):rep(1e6) .. 'x'\nwhile true do local _ = S.trim(s) end",
      "local T = require('lunagate.tablex')\nlocal t = {} for i = 1, 20000 do t['k' .. i] = i end\n"
      "while true do local _ = T.keys(t) end",
  };
  for (const char* body : bodies) {
    INFO(body);
    const CpuTimer t0;
    const Ran r = run_body(vm, body);
    const double ms = ms_since(t0);
    CHECK(r.result.outcome == Outcome::cpu_exceeded);
    CHECK(r.result.message.find("t.lua:") == 0);  // the script's line, not the stdlib's
    CHECK(ms < 50 + kLate);
  }
  // Compiled stdlib loops give no hook events: between two clock checks a script can run many
  // stdlib calls. Each loop covers one string or table part: below 64 KiB it is short (~µs);
  // from 64 KiB on, the state holds a big block and the hook checks every 16 instructions, so
  // the kill comes at most one call late (budget.hpp).
  for (const char* body : {"local S = require('lunagate.strings')\nlocal s = (' '):rep(60000)\n"
                           "while true do local _ = S.trim(s) end",
                           "local S = require('lunagate.strings')\nlocal s = (' '):rep(16 * 2^20)\n"
                           "while true do local _ = S.trim(s) end",
                           "local T = require('lunagate.tablex')\nlocal t = {} for i = 1, 4000 do t[i] = i end\n"
                           "while true do local _ = T.is_array(t) end",
                           "local C = require('lunagate.cidr')\nlocal l = {} for i = 1, 3000 do l[i] = '10.' .. (i % 250) .. '.' .. (i % 7) .. '.0/24' end\n"
                           "local m = C.parse(l)\nwhile true do local _ = m:contains('192.168.1.1') end"}) {
    INFO(body);
    const CpuTimer t0;
    const Ran r = run_body(vm, body, budget(50, 64u << 20));
    const double ms = ms_since(t0);
    CHECK(r.result.outcome == Outcome::cpu_exceeded);
    CHECK(ms < 50 + kLate);
    std::cout << "stdlib kill latency: " << ms - 50 << " ms past a 50 ms budget: " << body << "\n";
  }
  // Memory: results of a warmed-up (compiled) stdlib function kept until the budget refuses.
  REQUIRE(run_body(vm, "local S = require('lunagate.strings')\nfor _ = 1, 2000 do S.split('a,b,c,d', ',') end").result.outcome ==
          Outcome::ok);
  for (int i = 0; i < 5; ++i) {
    const Ran r = run_body(vm,
                           "local S = require('lunagate.strings')\nlocal keep = {}\n"
                           "while true do keep[#keep + 1] = S.split('a,b,c,d', ',') end",
                           budget(2000, 4u << 20));
    CHECK(r.result.outcome == Outcome::memory_exceeded);
  }
  CHECK(run_body(vm, "return gw.test.respond({ status = 200, body = 'clean' })").kind == "OK_CLEAN");
}

namespace {

// Attaches jit.attach handlers (from the registry: scripts never see `jit`) that count, per
// origin of the function, the bytecodes of every trace that was completed, and the traces:
// "user" (a script chunk), "stdlib" (@stdlib/...), "other" (the sandbox's wrappers, builtins).
// A bytecode is announced to the "record" handler before the recorder looks at it, so the
// entry of a user function called from stdlib code is announced, then refused (the recorder
// aborts the trace: LJ_TRERR_CJITOFF): those are counted apart, as "aborted_user".
void attach_jit_counters(lua_State* L) {
  const char* code = R"LUA(
    local jit, util, counts = ...
    local function origin(func)
      local src = util.funcinfo(func).source
      if not src then return "other" end
      if src:sub(1, 8) == "@stdlib/" then return "stdlib" end
      if src == "@t.lua" or src == "@u.lua" then return "user" end
      return "other"
    end
    local pending, started = {}, "other"
    jit.attach(function(tr, func) local o = origin(func) pending[o] = (pending[o] or 0) + 1 end, "record")
    jit.attach(function(what, tr, func)
      if what == "start" then
        pending, started = {}, origin(func)
      elseif what == "stop" then  -- (func is where the trace ended; counted by where it started)
        for o, n in pairs(pending) do counts[o] = counts[o] + n end
        local k = "traces_" .. started
        counts[k] = counts[k] + 1
        pending = {}
      elseif what == "abort" then
        counts.aborted_user = counts.aborted_user + (pending.user or 0)
        pending = {}
      end
    end, "trace")
  )LUA";
  REQUIRE(luaL_loadstring(L, code) == 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "jit");
  lua_remove(L, -2);
  REQUIRE(lua_istable(L, -1));
  lua_getfield(L, LUA_REGISTRYINDEX, "_PRELOAD");
  lua_getfield(L, -1, "jit.util");
  lua_remove(L, -2);
  REQUIRE(lua_pcall(L, 0, 1, 0) == 0);
  lua_newtable(L);
  for (const char* k : {"user", "stdlib", "other", "aborted_user", "traces_user", "traces_stdlib", "traces_other"}) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, k);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "lgtest.jit_counts");
  REQUIRE(lua_pcall(L, 3, 0, 0) == 0);
}

long jit_count(lua_State* L, const char* key) {
  lua_getfield(L, LUA_REGISTRYINDEX, "lgtest.jit_counts");
  lua_getfield(L, -1, key);
  const long n = static_cast<long>(lua_tointeger(L, -1));
  lua_pop(L, 2);
  return n;
}

bool jit_status(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "jit");
  lua_getfield(L, -1, "status");
  lua_call(L, 0, 1);
  const bool on = lua_toboolean(L, -1);
  lua_pop(L, 3);
  return on;
}

}  // namespace

TEST_CASE("lua stdlib: the JIT compiles stdlib code and never user code", "[lua-stdlib]") {
  Vm vm;
  register_test_functions(vm);
  lua_State* L = vm.state();
  REQUIRE(jit_status(L));
  attach_jit_counters(L);
  // 1. Hot user code of every shape, each ending in a loop that only a count hook can stop:
  //    killed at the deadline, so none of it runs as a trace.
  const char* user_loops[] = {
      "local function spin(n) local x = 0 for i = 1, n do x = x + i end return x end\n"
      "for _ = 1, 500 do spin(1000) end\nreturn spin(1e18)",
      "local fs = {} for i = 1, 200 do fs[i] = function(n) local x = 0 for j = 1, n do x = x + j end return x end end\n"
      "for i = 1, 200 do fs[i](1000) end\nreturn fs[1](1e18)",
      "local w = coroutine.wrap(function() local x = 0 while true do x = x + 1 if x % 1000 == 0 then coroutine.yield(x) end end end)\n"
      "for _ = 1, 500 do w() end\nlocal x = 0 while true do x = x + w() end",
      "local co = coroutine.create(function(n) for i = 1, n do local t = { i } end end)\n"
      "for _ = 1, 300 do coroutine.resume(coroutine.create(function() for i = 1, 1000 do local t = { i } end end)) end\n"
      "coroutine.resume(co, 1e18)",
      "local mt = { __index = function(t, k) return k end }\nlocal t = setmetatable({}, mt)\n"
      "local n = 0 while true do n = n + t[1] end",
  };
  for (const char* body : user_loops) {
    INFO(body);
    const CpuTimer t0;
    const Ran r = run_body(vm, body);
    CHECK(r.result.outcome == Outcome::cpu_exceeded);
    CHECK(ms_since(t0) < 3000);  // killed at its budget, not run away (generous: CI machines are shared)
  }
  // LuaJIT's table.remove is Lua code: hot here, but marked no-JIT like the sandbox's wrappers.
  REQUIRE(run_body(vm, "local t = {} for i = 1, 1000 do t[i] = i end\n"
                       "for _ = 1, 3000 do table.insert(t, 1, 0) table.remove(t, 1) end")
              .result.outcome == Outcome::ok);
  // 2. User loops that call hot stdlib functions (so stdlib code is recorded and compiled), and
  //    stdlib functions that are handed user closures and user metamethods.
  const ScriptHandle h = load_or_throw(vm,
                                       "local T, S, C = require('lunagate.tablex'), require('lunagate.strings'), require('lunagate.cidr')\n"
                                       "local m = C.parse({ '10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32' })\n"
                                       "local big = (' '):rep(300) .. ('a,'):rep(300) .. (' '):rep(300)\n" +
                                           access_script("local n = 0\n"
                                                         "for i = 1, 300 do\n"
                                                         "  n = n + #S.split(S.trim(big), ',')\n"
                                                         "  if m:contains('192.168.3.4') then n = n + 1 end\n"
                                                         "  n = n + #T.keys({ a = 1, b = 2, c = 3 })\n"
                                                         "  local p = T.pick(setmetatable({}, { __index = function(_, k) return #k end }), { 'ab', 'c' })\n"
                                                         "  n = n + p.ab + (T.is_array({ i, i }) and 1 or 0)\n"
                                                         "end\n"
                                                         "return gw.test.respond({ status = 200, body = tostring(n) })"),
                                       "u.lua");
  for (int i = 0; i < 5; ++i) {
    const Ran r = run_access(vm, h, budget(2000));
    INFO(r.result.message);
    REQUIRE(r.result.outcome == Outcome::ok);
    CHECK(r.req.response.body == std::to_string(300 * (301 + 1 + 3 + 2 + 1)));
  }
  ScriptHandle copy = h;
  vm.unload(copy);
  INFO("bytecodes in completed traces: user " << jit_count(L, "user") << ", stdlib " << jit_count(L, "stdlib")
                                             << ", other " << jit_count(L, "other") << "; traces: stdlib "
                                             << jit_count(L, "traces_stdlib") << ", other " << jit_count(L, "traces_other")
                                             << "; user entries refused: " << jit_count(L, "aborted_user"));
  CHECK(jit_count(L, "user") == 0);
  CHECK(jit_count(L, "traces_user") == 0);
  CHECK(jit_count(L, "traces_other") == 0);  // the sandbox's Lua wrappers and table.remove & co. are no-JIT
  // The engine is really on: stdlib loops without calls (cidr's range loop) get compiled. The
  // budget's call hook aborts any recording that meets a call, so they are the only ones.
  CHECK(jit_count(L, "stdlib") > 0);
  CHECK(jit_count(L, "traces_stdlib") > 0);
}
