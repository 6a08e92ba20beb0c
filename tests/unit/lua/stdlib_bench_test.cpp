// Measurement, not a test (hidden: run with ./build/tests/lg-unit-tests "[lua-stdlib-bench]"):
// what the stdlib's functions cost per call from a user script with the JIT engine on (the
// default) and off, and what loading the stdlib adds to building a Vm. Results in
// bench/RESULTS.md ("Lua stdlib: JIT on vs off").
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "lua/sandbox.hpp"
#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

struct Work {
  const char* name;
  const char* setup;  // script top level (after T, S, C)
  const char* call;   // one call, inside a loop `for i = 1, N do <call> end`
  int n;
};

const Work kWork[] = {
    {"empty loop (baseline)", "", "", 2000000},
    {"cidr:contains, IPv4, 10 ranges, last hits",
     "local m = C.parse({ '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '127.0.0.0/8',\n"
     "  '169.254.0.0/16', '198.18.0.0/15', '203.0.113.0/24', '198.51.100.0/24', '192.0.2.0/24' })\n",
     "m:contains('192.0.2.77')", 200000},
    {"cidr:contains, IPv6 (::ffff: mapped), 10 ranges",
     "local m = C.parse({ '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '2001:db8::/32', 'fe80::/10',\n"
     "  'fc00::/7', '::1', '64:ff9b::/96', '2001::/32', '2002::/16' })\n",
     "m:contains('2002:c000:0204::1')", 200000},
    {"cidr.parse, 10 ranges", "local l = { '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '2001:db8::/32', 'fe80::/10',\n"
     "  'fc00::/7', '::1', '64:ff9b::/96', '2001::/32', '2002::/16' }\n",
     "C.parse(l)", 20000},
    {"strings.split 8 fields + trim each", "local h = 'gzip, deflate, br, zstd, identity, x-a, x-b, x-c'\n",
     "for _, p in ipairs(S.split(h, ',')) do S.trim(p) end", 100000},
    {"strings.trim, 1 KiB padding", "local s = (' '):rep(512) .. 'value' .. ('\\t'):rep(512)\n", "S.trim(s)", 100000},
    {"strings.starts_with + ends_with", "", "S.starts_with('/v1/users/42', '/v1/') S.ends_with('/v1/users/42', '/42')",
     500000},
    {"tablex.deep_merge, 2 levels, 10 keys",
     "local d = { header = 'X-API-Key', limit = { rate = 10, burst = 20 }, log = { level = 'info', fields = { 'a', 'b' } } }\n"
     "local c = { limit = { rate = 50 }, log = { fields = { 'c' } }, extra = true }\n",
     "T.deep_merge(d, c)", 100000},
    {"tablex.merge, 6 + 3 keys", "local d = { a = 1, b = 2, c = 3, d = 4, e = 5, f = 6 } local c = { a = 0, g = 7, h = 8 }\n",
     "T.merge(d, c)", 200000},
    {"tablex.keys, 20 string keys", "local t = {} for i = 1, 20 do t['key' .. i] = i end\n", "T.keys(t)", 50000},
    {"tablex.is_array, 100 elements", "local t = {} for i = 1, 100 do t[i] = i end\n", "T.is_array(t)", 100000},
};

std::string handler(const Work& w) {
  return "local T, S, C = require('lunagate.tablex'), require('lunagate.strings'), require('lunagate.cidr')\n" +
         std::string(w.setup) + "return { access = function()\n  for i = 1, " + std::to_string(w.n) + " do " + w.call +
         " end\nend }\n";
}

// ns per call: best of `reps` runs of the handler (after one warm-up run).
double per_call(Vm& vm, const ScriptHandle& h, const Work& w, int reps = 5) {
  double best = 1e300;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const RunResult res = vm.run(h, Phase::access, budget(60000, 256u << 20), nullptr, nullptr);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / w.n;
    if (res.outcome != Outcome::ok) FAIL(w.name << ": " << res.message);
    if (r > 0) best = std::min(best, ns);
  }
  return best;
}

// The same loop run straight on the Vm's state, never through Vm::run, so the budget's count
// and call hooks are never installed (not a configuration that can run scripts): what the hooks
// cost, and what the JIT could do for the stdlib without them. The chunk is marked no-JIT like a
// user chunk.
double per_call_no_hooks(const Work& w, bool jit, int reps = 5) {
  Vm vm;
  lua_State* L = vm.state();
  if (!jit) luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  const std::string src = handler(w);
  REQUIRE(luaL_loadbuffer(L, src.data(), src.size(), "=bench") == 0);
  luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
  lua_newtable(L);
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, lg::lua::detail::kBaseKey);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfenv(L, -2);
  REQUIRE(lua_pcall(L, 0, 1, 0) == 0);
  lua_getfield(L, -1, "access");
  double best = 1e300;
  for (int r = 0; r <= reps; ++r) {
    lua_pushvalue(L, -1);
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(lua_pcall(L, 0, 0, 0) == 0);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / w.n;
    if (r > 0) best = std::min(best, ns);
  }
  return best;
}

}  // namespace

TEST_CASE("lua stdlib bench: cost per call, JIT engine on vs off", "[.][lua-stdlib-bench]") {
  std::printf("\n| call (from an interpreted user loop) | JIT on (default) ns | JIT off ns | off / on | no hooks: JIT off ns | "
              "no hooks: JIT on ns |\n|---|---:|---:|---:|---:|---:|\n");
  for (const Work& w : kWork) {
    Vm vm;
    const ScriptHandle h = load_or_throw(vm, handler(w), "bench.lua", budget(10000, 256u << 20));
    const double on = per_call(vm, h, w);
    luaJIT_setmode(vm.state(), 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_FLUSH);
    luaJIT_setmode(vm.state(), 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    const double off = per_call(vm, h, w);
    std::printf("| %s | %.0f | %.0f | %.2f | %.0f | %.0f |\n", w.name, on, off, off / on, per_call_no_hooks(w, false),
                per_call_no_hooks(w, true));
    ScriptHandle copy = h;
    vm.unload(copy);
  }

  // What the stdlib adds to a Vm: building one (all modules run once) vs running the stdlib's
  // loader again on a built state (the same work, measured alone).
  constexpr int kVms = 200;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kVms; ++i) Vm vm;
  const double vm_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kVms;
  Vm vm;
  lua_State* L = vm.state();
  const auto reload = [L] {
    return lua_cpcall(
        L, [](lua_State* S) { lg::lua::detail::open_stdlib(S); return 0; }, nullptr);
  };
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kVms; ++i) REQUIRE(reload() == 0);
  const double stdlib_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kVms;
  // Memory held by the modules: keep the current ones alive, load them again, collect.
  lua_getfield(L, LUA_REGISTRYINDEX, "lg.stdlib");
  const int keep = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_gc(L, LUA_GCCOLLECT, 0);
  const std::size_t m0 = vm.memory_in_use();
  REQUIRE(reload() == 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  const std::size_t m1 = vm.memory_in_use();
  luaL_unref(L, LUA_REGISTRYINDEX, keep);
  lua_gc(L, LUA_GCCOLLECT, 0);
  std::printf("\nVm construction: %.1f us, of which running the stdlib's modules: %.1f us; the modules hold %zu bytes "
              "of a %zu-byte VM\n",
              vm_us, stdlib_us, m1 - m0, vm.memory_in_use());
  CHECK(vm_us > 0);
}
