// The three LuaJIT CVEs Debian's luajit2 2.1-20230119 lacks the fixes for, each against the
// sandbox's mitigation.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

int test_memory(lua_State* L) {
  lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 + lua_gc(L, LUA_GCCOUNTB, 0));
  return 1;
}

std::string body_of(Vm& vm, const std::string& body, const Budget& b = budget()) {
  const Ran r = run_body(vm, body, b);
  if (r.result.outcome != Outcome::ok) return "run failed: " + r.result.message;
  return r.req.response.body;
}

std::string respond(const std::string& expr) {
  return "return gw.test.respond({ status = 200, body = " + expr + " })";
}

std::string c_format(const char* spec, double v) {
  char buf[600];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

}  // namespace

// CVE-2024-25176 (LuaJIT#1149): stack-buffer-overflow in lj_strfmt_wfnum while stripping the
// trailing zeros of %g with a width. Mitigation: float conversions are formatted by snprintf.
TEST_CASE("lua CVE-2024-25176: string.format float conversions never reach lj_strfmt_wfnum's width path", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(body_of(vm, respond("string.format('%7g', 0x1.144399609d407p+401)")) == "5.5733e+120");
  CHECK(body_of(vm, respond("('%7g|%d|%s|%-12.3e|%%|%5.1f'):format(0x1.144399609d407p+401, 42, 'x', 1/3, 2.25)")) ==
        c_format("%7g", 0x1.144399609d407p+401) + "|42|x|" + c_format("%-12.3e", 1.0 / 3) + "|%|" +
            c_format("%5.1f", 2.25));
  CHECK(body_of(vm, respond("string.format('%.99f', 1e308):len() .. ''")) ==
        std::to_string(c_format("%.99f", 1e308).size()));
  // Non-finite values keep LuaJIT's formatting.
  CHECK(body_of(vm, respond("string.format('%g %5.1f', 1/0, -1/0)")) == "inf  -inf");
  // Invalid specs are refused with the script's position, as LuaJIT does.
  const Ran r = run_body(vm, "local s = string.format('%100g', 1) return s");
  CHECK(r.result.message == "t.lua:2: invalid option '%100g' to 'format'");
  CHECK(run_body(vm, "return string.format('%.100f', 1)").result.outcome == Outcome::runtime_error);
  CHECK(run_body(vm, "return string.format('%------5f', 1)").result.outcome == Outcome::runtime_error);

  // Random specs and values against the C library.
  std::mt19937_64 rng(25176);
  std::string cases, expected;
  for (int i = 0; i < 2000; ++i) {
    std::string spec = "%";
    for (int f = static_cast<int>(rng() % 3); f > 0; --f) spec += "-+ #0"[rng() % 5];
    if (rng() % 2) spec += std::to_string(rng() % 100);
    if (rng() % 2) spec += "." + std::to_string(rng() % 100);
    spec += "aAeEfgG"[rng() % 7];
    double v;
    switch (rng() % 4) {
      case 0: v = std::ldexp(static_cast<double>(rng() >> 11), static_cast<int>(rng() % 2000) - 1000); break;
      case 1: v = static_cast<double>(static_cast<int>(rng() % 2000001) - 1000000) / 1000; break;
      case 2: v = static_cast<double>(rng() % 100000); break;
      default: {
        const std::uint64_t bits = rng();
        std::memcpy(&v, &bits, sizeof v);
      }
    }
    if (!std::isfinite(v)) v = 0.5;
    char lit[64];
    std::snprintf(lit, sizeof lit, "%a", v);
    cases += "{'" + spec + "'," + lit + "},\n";
    expected += c_format(spec.c_str(), v) + "\n";
  }
  const std::string got = body_of(vm,
                                  "local cases = {\n" + cases +
                                      "}\nlocal out = {}\n"
                                      "for i, c in ipairs(cases) do out[i] = string.format(c[1], c[2]) end\n" +
                                      respond("table.concat(out, '\\n') .. '\\n'"),
                                  budget(5000));
  CHECK(got == expected);
}

// CVE-2024-25177 (LuaJIT#1147): wrong unsinking of IR_FSTORE for a NULL metatable, JIT only.
// Mitigation: every user chunk is marked no-JIT, so no user code is ever compiled (the engine is
// on for the trusted stdlib only, which never calls setmetatable(t, nil); stdlib_test.cpp checks
// that no user bytecode ends up in a trace).
TEST_CASE("lua CVE-2024-25177: no trace is ever compiled for user code", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  // The reproducer of LuaJIT#1147 (it needs jit.opt.start('hotloop=1'); here the loop also runs
  // long enough to get hot under default settings) gives correct results.
  CHECK(body_of(vm,
                "local counter, tab = 0\n"
                "while true do\n"
                "  counter = counter + 1\n"
                "  tab = { counter }\n"
                "  setmetatable(tab, nil)\n"
                "  if counter > 2000 then break end\n"
                "end\n" +
                    respond("(tab[1] == 2001 and getmetatable(tab) == nil) and 'clean' or 'bad'")) == "clean");
  CHECK(body_of(vm, respond("tostring(jit)")) == "nil");
  // A loop that is hot before it spins: with a trace compiled the count hook would never fire
  // again and this would never end.
  const Ran r = run_body(vm,
                         "local function spin(n) local x = 0 for i = 1, n do x = x + i end return x end\n"
                         "for _ = 1, 500 do spin(1000) end\n"
                         "return spin(1e18)");
  CHECK(r.result.outcome == Outcome::cpu_exceeded);
}

// CVE-2024-25178 (LuaJIT#1152): out-of-bounds read/write in the stack-overflow handling (a
// message handler that overflows again; a big frame at the stack limit; a refused stack growth).
// Mitigations: Lua stacks are capped at 40000 slots by the call hook (LuaJIT's limit, 65500, is
// never reached); xpcall runs its handler after unwinding; stack growth is never refused by the
// memory budget (served from a reserve, then the run is killed).
TEST_CASE("lua CVE-2024-25178: stack overflow handling stays in bounds", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  vm.register_function("test.memory", test_memory);
  // 1. A message handler that overflows the stack itself (unpatched LuaJIT returns a garbage
  //    number read out of bounds: 6.9e-310 here).
  CHECK(body_of(vm,
                "local r, e = coroutine.wrap(function()\n"
                "  local function recursive() recursive() end\n"
                "  local function bad_errfunc() bad_errfunc() end\n"
                "  return xpcall(recursive, bad_errfunc)\n"
                "end)()\n" +
                    respond("(not r and type(e) == 'string' and e:find('stack overflow')) and 'clean' or tostring(e)")) ==
        "clean");
  // 2. A recursive function with the maximum number of locals (200).
  std::string big = "local function recursive_f()\n";
  for (int i = 0; i < 200; ++i) big += "local _\n";
  big += "recursive_f()\nend\n";
  CHECK(body_of(vm, big +
                        "local r, e = coroutine.wrap(function() return pcall(recursive_f) end)()\n" +
                        respond("(not r and e:find('stack overflow')) and 'clean' or tostring(e)")) == "clean");
  // 2b. The call hook (the depth check) is armed only once a stack reaches 8,192 slots: frames of
  //     ~8,000 slots per level (unpack's maximum) and 250-slot frames, in the handler's own
  //     coroutine and in a nested one, still stop at the gateway's limit, well before LuaJIT's
  //     (whose overflow handling is the CVE).
  const std::string wide =
      "local t = {} for i = 1, 7990 do t[i] = i end\n"
      "local function wide(...) local n = select('#', ...) wide(unpack(t)) return n end\n";
  CHECK(body_of(vm, wide + "local r, e = pcall(wide)\n" +
                        respond("(not r and e:find('script call depth limit', 1, true)) and 'clean' or tostring(e)")) == "clean");
  CHECK(body_of(vm, wide + "local r, e = coroutine.wrap(function() return pcall(wide, 1, 2) end)()\n" +
                        respond("(not r and e:find('script call depth limit', 1, true)) and 'clean' or tostring(e)")) == "clean");
  CHECK(body_of(vm, big + "local r, e = pcall(recursive_f)\n" +
                        respond("(not r and e:find('script call depth limit', 1, true)) and 'clean' or tostring(e)")) == "clean");
  // A deep but legal recursion (a few thousand levels) is not refused, and the next run is fine.
  CHECK(body_of(vm, "local function d(n) if n == 0 then return 0 end return 1 + d(n - 1) end\n" +
                        respond("tostring(d(5000))")) == "5000");
  // 3. Stack growth when the request is at its memory limit: never refused (that would write
  //    the error message past the stack), the run is stopped as memory-exceeded instead.
  for (const std::size_t gap : {8u << 10, 48u << 10, 200u << 10}) {
    const std::size_t mem = 4u << 20;
    const Ran r = run_body(vm,
                           "local m0 = gw.test.memory()\n"
                           "local keep, pad = nil, ('p'):rep(200)\n"
                           "while gw.test.memory() - m0 < " + std::to_string(mem - gap) + " do keep = { pad .. gw.test.memory(), keep } end\n" +
                               big + "recursive_f()",
                           budget(2000, mem));
    INFO("gap " << gap << ": " << r.result.message);
    CHECK((r.result.outcome == Outcome::memory_exceeded || r.result.outcome == Outcome::runtime_error));
    CHECK(run_body(vm, "return 1").result.outcome == Outcome::ok);
  }
}
