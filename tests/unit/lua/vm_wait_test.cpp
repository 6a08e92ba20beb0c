// Handlers that wait in a host call: Vm::run reports yielded and keeps the coroutine, resume()
// continues it with the call's results, abandon() drops it; budgets across waits.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "lua_support.hpp"

using namespace lgtest::lua;
using lg::lua::Suspended;

namespace {

// gw.test.wait(): yields to the host (what gw.sleep does), refusing where waiting is impossible.
int test_wait(lua_State* L) {
  if (!Vm::can_wait(L)) return luaL_error(L, "cannot wait here");
  return lua_yield(L, 0);
}

// gw.test.spin_ms(n): burns n ms of CPU inside the handler (outside Lua: the clock is checked by
// the next hook event).
int test_spin_ms(lua_State* L) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(luaL_checkinteger(L, 1));
  while (std::chrono::steady_clock::now() < until) {
  }
  return 0;
}

struct WaitVm {
  Vm vm;
  ScriptHandle h;
  TestRequest req;
  explicit WaitVm(const std::string& src) {
    register_test_functions(vm);
    vm.register_function("test.wait", test_wait);
    vm.register_function("test.spin_ms", test_spin_ms);
    std::string err;
    REQUIRE(vm.load("scripts/w.lua", src, budget(100), h, err));
  }
  ~WaitVm() { vm.unload(h); }
  RunResult run(Suspended& s, const Budget& b = budget(100)) {
    return vm.run(h, Phase::access, b, &req, [](lua_State*) { return 0; }, &s);
  }
  RunResult resume(Suspended& s, std::string value) {
    return vm.resume(s, &req, [value](lua_State* L) {
      lua_pushlstring(L, value.data(), value.size());
      return 1;
    });
  }
};

}  // namespace

TEST_CASE("lua wait: a handler yields in a host call and resumes with its results", "[lua][wait]") {
  WaitVm w(
      "return { access = function()\n"
      "  local a = gw.test.wait()\n"
      "  local b = gw.test.wait()\n"
      "  gw.test.respond({ status = 200, body = a .. '+' .. b })\n"
      "end }");
  Suspended s;
  RunResult r = w.run(s);
  REQUIRE(r.outcome == Outcome::yielded);
  REQUIRE(s.active());
  r = w.resume(s, "one");
  REQUIRE(r.outcome == Outcome::yielded);
  r = w.resume(s, "two");
  REQUIRE(r.outcome == Outcome::ok);
  CHECK_FALSE(s.active());
  REQUIRE(w.req.responded);
  CHECK(w.req.response.body == "one+two");
}

TEST_CASE("lua wait: waiting inside pcall works, inside a script coroutine it is refused", "[lua][wait]") {
  WaitVm w(
      "return { access = function()\n"
      "  local ok, v = pcall(gw.test.wait)\n"
      "  local co_ok, co_err = pcall(coroutine.wrap(function() gw.test.wait() end))\n"
      "  local g_ok = pcall(string.gsub, 'a', 'a', function() gw.test.wait() end)\n"
      "  gw.test.respond({ status = 200, body = tostring(ok) .. ',' .. tostring(v) .. ',' ..\n"
      "    tostring(co_ok) .. ',' .. tostring(co_err):match('cannot wait here') .. ',' .. tostring(g_ok) })\n"
      "end }");
  Suspended s;
  REQUIRE(w.run(s).outcome == Outcome::yielded);
  const RunResult r = w.resume(s, "v");
  REQUIRE(r.outcome == Outcome::ok);
  CHECK(w.req.response.body == "true,v,false,cannot wait here,false");
}

TEST_CASE("lua wait: time spent waiting is not charged, running time is", "[lua][wait]") {
  WaitVm w(
      "return { access = function()\n"
      "  gw.test.spin_ms(30)\n"
      "  gw.test.wait()\n"
      "  gw.test.spin_ms(tonumber(gw.test.wait()))\n"
      "  for i = 1, 1e5 do end\n"
      "  gw.test.respond({ status = 200, body = 'done' })\n"
      "end }");
  SECTION("a long wait between short runs stays within a 50 ms budget") {
    Suspended s;
    REQUIRE(w.run(s, budget(50)).outcome == Outcome::yielded);
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
    REQUIRE(w.resume(s, "").outcome == Outcome::yielded);
    const RunResult r = w.resume(s, "5");
    CHECK(r.outcome == Outcome::ok);
    CHECK(w.req.response.body == "done");
  }
  SECTION("running time adds up across resumes: 30 + 40 ms > 50 ms is killed") {
    Suspended s;
    REQUIRE(w.run(s, budget(50)).outcome == Outcome::yielded);
    REQUIRE(w.resume(s, "").outcome == Outcome::yielded);
    const RunResult r = w.resume(s, "40");
    CHECK(r.outcome == Outcome::cpu_exceeded);
    CHECK_FALSE(s.active());
  }
}

TEST_CASE("lua wait: abandoned handlers leave nothing behind", "[lua][wait]") {
  WaitVm w(
      "return { access = function()\n"
      "  local big = string.rep('x', 100000) .. tostring(math.random())\n"
      "  gw.test.wait()\n"
      "  return #big\n"
      "end }");
  {  // warm up the state
    Suspended s;
    REQUIRE(w.run(s).outcome == Outcome::yielded);
    w.vm.abandon(s);
  }
  lua_gc(w.vm.state(), LUA_GCCOLLECT, 0);
  const std::size_t base = w.vm.memory_in_use();
  for (int i = 0; i < 200; ++i) {
    Suspended s;
    REQUIRE(w.run(s).outcome == Outcome::yielded);
    w.vm.abandon(s);
    CHECK_FALSE(s.active());
    w.vm.abandon(s);  // idempotent
  }
  lua_gc(w.vm.state(), LUA_GCCOLLECT, 0);
  CHECK(w.vm.memory_in_use() < base + 64 * 1024);
}

TEST_CASE("lua wait: without a place to suspend, a yield is a runtime error", "[lua][wait]") {
  WaitVm w("return { access = function() gw.test.wait() end }");
  const RunResult r = w.vm.run(w.h, Phase::access, budget(100), &w.req, [](lua_State*) { return 0; });
  CHECK(r.outcome == Outcome::runtime_error);
  CHECK(r.message.find("waiting is not possible") != std::string::npos);
}

TEST_CASE("lua wait: a kill after a resume cannot be swallowed by pcall", "[lua][wait]") {
  WaitVm w(
      "return { access = function()\n"
      "  gw.test.wait()\n"
      "  for i = 1, 10 do pcall(function() while true do end end) end\n"
      "  gw.test.respond({ status = 200, body = 'escaped' })\n"
      "end }");
  Suspended s;
  REQUIRE(w.run(s, budget(20)).outcome == Outcome::yielded);
  const RunResult r = w.resume(s, "");
  CHECK(r.outcome == Outcome::cpu_exceeded);
  CHECK_FALSE(w.req.responded);
}

TEST_CASE("lua wait: the handler's coroutine is never handed to a script", "[lua][wait]") {
  // A script that kept the handler's coroutine could resume another request's waiting handler.
  WaitVm w(
      "local stash = {}\n"
      "return { access = function()\n"
      "  local root = coroutine.running()\n"
      "  local inner\n"
      "  coroutine.wrap(function() inner = coroutine.running() end)()\n"
      "  if stash.seen then\n"
      "    local ok, err = pcall(coroutine.resume, stash.root)\n"
      "    gw.test.respond({ status = 200, body = 'resumed:' .. tostring(ok) })\n"
      "    return\n"
      "  end\n"
      "  stash.seen, stash.root = true, root\n"
      "  gw.test.wait()\n"
      "  gw.test.respond({ status = 200, body = tostring(root) .. ',' .. type(inner) })\n"
      "end }");
  Suspended a;
  REQUIRE(w.run(a).outcome == Outcome::yielded);  // request A waits
  TestRequest b;
  Suspended bs;
  RunResult rb = w.vm.run(w.h, Phase::access, budget(100), &b, [](lua_State*) { return 0; }, &bs);
  REQUIRE(rb.outcome == Outcome::ok);  // request B tried to resume A's handler: it had nil
  CHECK(b.response.body == "resumed:false");
  const RunResult ra = w.resume(a, "");
  REQUIRE(ra.outcome == Outcome::ok);
  CHECK(w.req.response.body == "nil,thread");
}
