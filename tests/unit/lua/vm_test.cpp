#include <catch2/catch.hpp>

#include <chrono>
#include <iostream>

#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

std::string load_error(Vm& vm, const std::string& src, const std::string& name = "scripts/x.lua",
                       const Budget& b = budget(100)) {
  ScriptHandle h;
  std::string err;
  if (vm.load(name, src, b, h, err)) {
    vm.unload(h);
    return "(loaded)";
  }
  return err;
}

double ms_since(const CpuTimer& t0) { return t0.ms(); }  // CPU time: see CpuTimer

}  // namespace

TEST_CASE("lua vm: load accepts a table of phase handlers", "[lua]") {
  Vm vm;
  ScriptHandle h;
  std::string err;
  REQUIRE(vm.load("scripts/tenant-header.lua",
                  "return { name = 'tenant', version = '1.2', schema = {},\n"
                  "  access = function() end, log = function() end }",
                  budget(100), h, err));
  CHECK(err.empty());
  CHECK(h.name == "tenant-header");
  CHECK(h.chunkname == "scripts/tenant-header.lua");
  CHECK(h.version == "1.2");
  CHECK(h.has(Phase::access));
  CHECK(h.has(Phase::log));
  CHECK_FALSE(h.has(Phase::rewrite));
  CHECK_FALSE(h.has(Phase::body));
  CHECK(h.handlers_ref >= 0);
  CHECK(h.env_ref >= 0);
  vm.unload(h);
  CHECK(h.handlers_ref == -1);
  CHECK(h.phases == 0);
}

TEST_CASE("lua vm: load rejections name the chunk and the line", "[lua]") {
  Vm vm;
  SECTION("bytecode, bare, after a BOM, after a '#' line") {
    const std::string bc = "\x1bLJ\x02\x0a\x40\x00\x01";
    CHECK(load_error(vm, bc) == "scripts/x.lua:1: precompiled bytecode is not accepted");
    CHECK(load_error(vm, "\xEF\xBB\xBF" + bc) == "scripts/x.lua:1: precompiled bytecode is not accepted");
    CHECK(load_error(vm, "#!/usr/bin/lua\n" + bc) == "scripts/x.lua:1: precompiled bytecode is not accepted");
  }
  SECTION("syntax error") {
    CHECK(load_error(vm, "return {\n  access = function( end\n}") ==
          "scripts/x.lua:2: <name> or '...' expected near 'end'");
  }
  SECTION("error at the top level") {
    CHECK(load_error(vm, "local x = 1\nerror('boom')\nreturn {}") == "scripts/x.lua:2: boom");
  }
  SECTION("endless top level: stopped by the load budget") {
    const CpuTimer t0;
    const std::string err = load_error(vm, "local n = 0\nwhile true do n = n + 1 end");
    CHECK(err == "scripts/x.lua:2: cpu budget exceeded (100 ms) while loading");
    CHECK(ms_since(t0) < 2000);
  }
  SECTION("allocating top level: stopped by the load budget") {
    const std::string err = load_error(vm, "local t = {}\nfor i = 1, 1e9 do t[i] = i end", "scripts/x.lua",
                                       budget(1000, 4u << 20));
    CHECK(err.find("memory budget exceeded (4194304 bytes) while loading") != std::string::npos);
  }
  SECTION("not a table, bad field types, no handler") {
    CHECK(load_error(vm, "return function() end") ==
          "scripts/x.lua:1: the script must return a table of phase handlers (got function)");
    CHECK(load_error(vm, "") == "scripts/x.lua:1: the script must return a table of phase handlers (got nil)");
    CHECK(load_error(vm, "return { access = 42 }") ==
          "scripts/x.lua:1: field 'access' must be a function (got number)");
    CHECK(load_error(vm, "return { body = 'x', access = function() end }") ==
          "scripts/x.lua:1: field 'body' must be a function (got string)");
    CHECK(load_error(vm, "return { name = 1, access = function() end }") ==
          "scripts/x.lua:1: field 'name' must be a string (got number)");
    CHECK(load_error(vm, "return { version = {}, access = function() end }") ==
          "scripts/x.lua:1: field 'version' must be a string (got table)");
    CHECK(load_error(vm, "return { schema = 'x', access = function() end }") ==
          "scripts/x.lua:1: field 'schema' must be a table (got string)");
    CHECK(load_error(vm, "return { name = 'x' }").find("defines no phase handler") != std::string::npos);
  }
  SECTION("a metamethod on the returned table never runs") {
    const CpuTimer t0;
    const std::string err =
        load_error(vm, "return setmetatable({}, { __index = function() while true do end end })");
    CHECK(err.find("defines no phase handler") != std::string::npos);
    CHECK(ms_since(t0) < 1000);
  }
  SECTION("a top level that yields") {
    CHECK(load_error(vm, "coroutine.yield()\nreturn {}").find("scripts/x.lua:1: attempt to yield") == 0);
  }
  SECTION("too large") {
    CHECK(load_error(vm, "return {}" + std::string(5u << 20, ' ')).find("script larger than") != std::string::npos);
  }
  // The VM still serves after all of this.
  const Ran r = run_body(vm, "return gw.test and 1");
  CHECK(r.result.outcome == Outcome::ok);
}

TEST_CASE("lua vm: run outcomes and messages", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  SECTION("ok") {
    const Ran r = run_body(vm, "return gw.test.respond({ status = 201, body = 'clean' })");
    CHECK(r.result.outcome == Outcome::ok);
    CHECK(r.result.message.empty());
    CHECK(r.req.response.status == 201);
  }
  SECTION("runtime error with chunk:line") {
    const Ran r = run_body(vm, "local x = nil\nreturn x.field");
    CHECK(r.result.outcome == Outcome::runtime_error);
    CHECK(r.result.message == "t.lua:3: attempt to index local 'x' (a nil value)");
  }
  SECTION("error(nil), error(table with a throwing __tostring)") {
    Ran r = run_body(vm, "error(nil)");
    CHECK(r.result.outcome == Outcome::runtime_error);
    CHECK(r.result.message == "t.lua: (error object is a nil value)");
    r = run_body(vm, "error(setmetatable({}, { __tostring = function() error('nested') end }))");
    CHECK(r.result.outcome == Outcome::runtime_error);
    CHECK(r.result.message == "t.lua: (error object is a table value)");
  }
  SECTION("control characters in messages are escaped") {
    const Ran r = run_body(vm, "error('a\\r\\nSet-Cookie: x\\0y', 0)");
    CHECK(r.result.message == "a\\r\\nSet-Cookie: x\\x00y");
  }
  SECTION("missing phase") {
    const ScriptHandle h = load_or_throw(vm, access_script("return 1"));
    TestRequest t;
    const RunResult r = vm.run(h, Phase::log, budget(), &t, nullptr);
    CHECK(r.outcome == Outcome::runtime_error);
    CHECK(r.message == "t.lua: no log handler");
  }
}

TEST_CASE("lua vm: a handler cannot yield to the host by itself", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  Ran r = run_body(vm, "coroutine.yield('not-a-gateway-op')");
  CHECK(r.result.outcome == Outcome::runtime_error);
  CHECK(r.result.message.find("t.lua:2: attempt to yield from a request handler") == 0);
  // ... nor through pcall or coroutine.wrap's caller.
  r = run_body(vm, "local ok, e = pcall(coroutine.yield)\nreturn gw.test.respond({ status = 200, body = ok and 'bad' or 'clean' })");
  CHECK(r.kind == "OK_CLEAN");
  // Yields inside the script's own coroutines work (generators, pcall inside a coroutine).
  r = run_body(vm,
               "local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)\n"
               "local co = coroutine.create(function() local ok, v = pcall(coroutine.yield, 7) return v end)\n"
               "local _, a = coroutine.resume(co)\n"
               "local _, b = coroutine.resume(co, 8)\n"
               "local s = gen() + gen() + gen()\n"
               "return gw.test.respond({ status = 200, body = (s == 6 and a == 7 and b == 8) and 'clean' or 'bad' })");
  CHECK(r.kind == "OK_CLEAN");
}

TEST_CASE("lua vm: errors in push_args", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const ScriptHandle h = load_or_throw(vm, access_script("return gw.test.respond({ status = 200, body = 'clean' })"));
  TestRequest t;
  RunResult r = vm.run(h, Phase::access, budget(), &t, [](lua_State* co) -> int {
    lua_pushliteral(co, "x");
    return luaL_error(co, "boom");
  });
  CHECK(r.outcome == Outcome::runtime_error);
  CHECK(r.message == "t.lua: error while pushing the handler's arguments");
  CHECK_THROWS_AS(vm.run(h, Phase::access, budget(), &t, [](lua_State*) -> int { throw std::logic_error("x"); }),
                  std::logic_error);
  CHECK(run_access(vm, h).kind == "OK_CLEAN");
}

TEST_CASE("lua vm: register_function and current_request round trip", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  vm.register_function("deep.er.fn", test_request_path);
  CHECK_THROWS(vm.register_function("test.respond.x", test_request_path));  // respond is a function
  const ScriptHandle h = load_or_throw(
      vm, access_script("return gw.test.respond({ status = 200, body = gw.test.request_path() .. ' ' .. "
                        "gw.deep.er.fn() })"));
  Ran r = run_access(vm, h, budget(), "/a/b");
  CHECK(r.req.response.body == "/a/b /a/b");
  r = run_access(vm, h, budget(), "/other");
  CHECK(r.req.response.body == "/other /other");
  CHECK(Vm::current_request(vm.state()) == nullptr);  // outside a run
  // At load time there is no request.
  const ScriptHandle h2 = load_or_throw(vm, "local p = gw.test.request_path()\n" + access_script(
                                                "return gw.test.respond({ status = 200, body = p })"));
  r = run_access(vm, h2);
  CHECK(r.req.response.body == "(none)");
}

TEST_CASE("lua vm: a host function cannot start a nested run", "[lua]") {
  static Vm* vmp = nullptr;
  static RunResult nested;
  Vm vm;
  vmp = &vm;
  register_test_functions(vm);
  static ScriptHandle inner;
  inner = load_or_throw(vm, access_script("return 1"), "inner.lua");
  vm.register_function("test.nested", [](lua_State*) -> int {
    TestRequest t;
    nested = vmp->run(inner, Phase::access, budget(), &t, nullptr);
    return 0;
  });
  const Ran r = run_body(vm, "gw.test.nested()\nreturn gw.test.respond({ status = 200, body = 'clean' })");
  CHECK(r.kind == "OK_CLEAN");
  CHECK(nested.outcome == Outcome::runtime_error);
  CHECK(nested.message == "inner.lua: Vm::run called while a script is running");
  vm.unload(inner);
}

TEST_CASE("lua vm: memory returns after runs and unloads", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const std::size_t fresh = vm.memory_in_use();
  INFO("fresh VM: " << fresh << " bytes");
  CHECK(fresh < (1u << 20));
  const ScriptHandle hog = load_or_throw(vm, access_script("local t = {} for i = 1, 1e9 do t[i] = {i} end"));
  const Ran r = run_access(vm, hog);
  CHECK(r.result.outcome == Outcome::memory_exceeded);
  // The garbage of a killed run is collected in slices of at most 1 ms after the next runs.
  const ScriptHandle small = load_or_throw(vm, access_script("local s = ('x'):rep(1000) .. 'y'"));
  for (int i = 0; i < 100; ++i) {
    const CpuTimer t0;
    CHECK(run_access(vm, small).result.outcome == Outcome::ok);
    CHECK(ms_since(t0) < 50);
  }
  CHECK(vm.memory_in_use() < fresh + (4u << 20));
  for (ScriptHandle h : {hog, small}) vm.unload(h);
  for (int i = 0; i < 100; ++i) CHECK(run_body(vm, "local s = ('x'):rep(1000) .. 'y'").result.outcome == Outcome::ok);
  CHECK(vm.memory_in_use() < fresh + (4u << 20));
}

TEST_CASE("lua vm: cost per run (measurement, not asserted)", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const auto measure = [&](const std::string& body, int n, bool with_req = true) {
    const ScriptHandle h = load_or_throw(vm, access_script(body));
    TestRequest t;
    const std::function<int(lua_State*)> args = [with_req](lua_State* co) {
      return with_req ? push_corpus_request(co, "/x") : 0;
    };
    for (int i = 0; i < 1000; ++i) vm.run(h, Phase::access, budget(), &t, args);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      if (vm.run(h, Phase::access, budget(), &t, args).outcome != Outcome::ok) FAIL("run failed");
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
    ScriptHandle copy = h;
    vm.unload(copy);
    return ns;
  };
  const double bare = measure("return", 100000, false);
  const double trivial = measure("return", 100000);
  const double header = measure(
      "local ua = req.headers['user-agent'] or ''\n"
      "local v = ua:lower():sub(1, 16)\n"
      "if v:find('bot', 1, true) then return end\n"
      "local n = 0 for i = 1, 10 do n = n + i end\n"
      "return gw.test.request_path()",
      50000);
  std::cout << "lua vm (user code interpreted, count+call hooks): run() of a trivial handler: " << bare
            << " ns without arguments, " << trivial << " ns with the corpus' req table; header-manipulation handler: "
            << header << " ns\n";
  CHECK(trivial > 0);
}

TEST_CASE("Vm: load errors Lua cannot locate still name a line", "[lua]") {
  lg::lua::Vm vm;
  CHECK(load_error(vm, "local x = 1\n\nreturn 42\n") ==
        "scripts/x.lua:3: the script must return a table of phase handlers (got number)");
  CHECK(load_error(vm, "return {\n  name = 'n',\n  access = 'oops',\n}\n") ==
        "scripts/x.lua:3: field 'access' must be a function (got string)");
  CHECK(load_error(vm, "local a = 1\nlocal b = 2\n") ==
        "scripts/x.lua:2: the script must return a table of phase handlers (got nil)");
}
