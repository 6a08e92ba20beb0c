#include <catch2/catch.hpp>

#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

// Runs `expr` (a Lua expression) in a handler; returns "value:<tostring>" or "error:<message>".
std::string eval(Vm& vm, const std::string& expr) {
  const Ran r = run_body(vm, "local ok, v = pcall(function() return " + expr +
                                 " end)\n"
                                 "return gw.test.respond({ status = 200, body = (ok and 'value:' or 'error:') .. tostring(v) })");
  if (r.result.outcome != Outcome::ok) return "run:" + r.result.message;
  return r.req.response.body;
}

// Runs `stmt` in a handler; returns "ok" or the error message.
std::string exec(Vm& vm, const std::string& stmt) {
  const Ran r = run_body(vm, stmt);
  return r.result.outcome == Outcome::ok ? "ok" : r.result.message;
}

}  // namespace

TEST_CASE("lua sandbox: forbidden globals are absent", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  for (const char* name :
       {"io", "ffi", "debug", "jit", "package", "module", "load", "loadstring", "loadfile", "dofile",
        "collectgarbage", "gcinfo", "newproxy", "setfenv", "getfenv", "print", "string.dump", "os.execute",
        "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname", "os.date", "os.setlocale",
        "math.randomseed", "table.foreach"}) {
    INFO(name);
    CHECK(eval(vm, name) == "value:nil");
  }
  CHECK(eval(vm, "('').dump") == "value:nil");
  // require exists, for the trusted stdlib only (stdlib_test.cpp).
  CHECK(eval(vm, "type(require)") == "value:function");
  CHECK(eval(vm, "select(2, pcall(require, 'io'))").find("module 'io' not found (only the stdlib is available: ") !=
        std::string::npos);
}

TEST_CASE("lua sandbox: what scripts do get", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(eval(vm, "type(os.time()) .. type(os.clock())") == "value:numbernumber");
  CHECK(eval(vm, "string.format('%d-%s-%5.2f', 7, 'x', 3.14159)") == "value:7-x- 3.14");
  CHECK(eval(vm, "table.concat({1, 2, 3}, ',')") == "value:1,2,3");
  CHECK(eval(vm, "bit.band(0xff, 0x0f) + math.floor(2.5)") == "value:17");
  CHECK(eval(vm, "select('#', unpack({1, 2, 3}))") == "value:3");
  CHECK(eval(vm, "_VERSION") == "value:Lua 5.1");
  CHECK(eval(vm, "undefined_global") == "value:nil");  // reading an undefined global is nil
  CHECK(eval(vm, "_G.string == string and _G._G == _G") == "value:true");
  CHECK(eval(vm, "getmetatable(setmetatable({}, { __index = { a = 1 } })).__index.a") == "value:1");
  CHECK(eval(vm, "(function() local t = {} table.insert(t, 'a') table.insert(t, 1, 'b') "
                 "table.sort(t) return table.remove(t, 1) .. #t end)()") == "value:a1");
  CHECK(eval(vm, "select(2, pcall(error, 'x', 0))") == "value:x");
  CHECK(eval(vm, "select(2, xpcall(function() error('x', 0) end, function(e) return 'h:' .. e end))") ==
        "value:h:x");
  CHECK(eval(vm, "select(2, xpcall(function(a, b) return a + b end, tostring, 2, 3))") == "value:5");
  CHECK(eval(vm, "xpcall(error)").find("bad argument #2 to 'xpcall' (function expected, got nil)") != std::string::npos);
  CHECK(eval(vm, "select('#', pcall(function() return 1, nil, 3 end))") == "value:4");
}

TEST_CASE("lua sandbox: the standard library is read-only", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(exec(vm, "string.upper = function() return 'PWNED' end").find("attempt to modify a read-only table (field 'upper')") !=
        std::string::npos);
  CHECK(exec(vm, "table.insert = nil").find("read-only") != std::string::npos);
  CHECK(exec(vm, "math.pi = 3").find("read-only") != std::string::npos);
  CHECK(exec(vm, "coroutine.yield = print").find("read-only") != std::string::npos);
  CHECK(exec(vm, "os.time = nil").find("read-only") != std::string::npos);
  CHECK(exec(vm, "rawset(string, 'upper', tostring)").find("rawset: attempt to modify a read-only table") !=
        std::string::npos);
  CHECK(exec(vm, "table.insert(string, tostring)").find("table.insert: attempt to modify a read-only table") !=
        std::string::npos);
  CHECK(exec(vm, "setmetatable(string, nil)").find("cannot change a protected metatable") != std::string::npos);
  CHECK(eval(vm, "getmetatable(string)") == "value:false");
  CHECK(eval(vm, "next(string)") == "value:nil");  // proxies are empty
  CHECK(eval(vm, "string.upper('abc') .. ('abc'):upper()") == "value:ABCABC");
}

TEST_CASE("lua sandbox: the string metatable is protected", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(eval(vm, "getmetatable('')") == "value:false");
  CHECK(eval(vm, "getmetatable('').__index").find("error:") == 0);
  CHECK(exec(vm, "local s = 'x' s.upper = print").find("attempt to index") != std::string::npos);
  CHECK(exec(vm, "setmetatable('', {})").find("bad argument #1 to 'setmetatable'") != std::string::npos);
  CHECK(eval(vm, "('x'):rep(3)") == "value:xxx");
}

TEST_CASE("lua sandbox: each script has its own environment; globals are read-only in handlers", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const ScriptHandle a = load_or_throw(vm,
                                       "SHARED = 'a'\n"
                                       "function helper() return SHARED end\n" +
                                           access_script("return gw.test.respond({ status = 200, body = helper() })"),
                                       "a.lua");
  const ScriptHandle b = load_or_throw(
      vm, access_script("return gw.test.respond({ status = 200, body = tostring(SHARED) .. tostring(helper) })"),
      "b.lua");
  CHECK(run_access(vm, a).req.response.body == "a");    // load-time globals stay the script's own
  CHECK(run_access(vm, b).req.response.body == "nilnil");  // ... and invisible to other scripts
  const ScriptHandle w = load_or_throw(vm, access_script("X_POLLUTED = true"), "w.lua");
  const Ran r = run_access(vm, w);
  CHECK(r.result.outcome == Outcome::runtime_error);
  CHECK(r.result.message.find("w.lua:2: assignment to global 'X_POLLUTED' in a request handler") == 0);
  CHECK(exec(vm, "rawset(_G, 'POLLUTED_BY_RAWSET', 1)").find("rawset: attempt to modify a read-only table") !=
        std::string::npos);
  CHECK(exec(vm, "setmetatable(_G, nil)").find("cannot change a protected metatable") != std::string::npos);
  for (ScriptHandle h : {a, b, w}) vm.unload(h);
}

TEST_CASE("lua sandbox: gw is read-only", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(exec(vm, "gw.x = 1").find("attempt to modify a read-only table (field 'x')") != std::string::npos);
  CHECK(exec(vm, "gw.test.respond = nil").find("read-only") != std::string::npos);
  CHECK(exec(vm, "rawset(gw.test, 'respond', print)").find("read-only") != std::string::npos);
  CHECK(exec(vm, "setmetatable(gw, nil)").find("protected metatable") != std::string::npos);
  CHECK(eval(vm, "getmetatable(gw)") == "value:false");
  CHECK(eval(vm, "type(gw.test.respond)") == "value:function");
}

TEST_CASE("lua sandbox: a script's functions cannot reach the real globals", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  // The wrappers (pcall, xpcall, coroutine.*) are Lua functions with an empty environment and no
  // way for scripts to read it (getfenv/debug absent); string methods are C functions.
  CHECK(eval(vm, "tostring(getfenv)") == "value:nil");
  CHECK(eval(vm, "tostring(debug)") == "value:nil");
  CHECK(eval(vm, "type(pcall) .. type(coroutine.wrap)") == "value:functionfunction");
}

TEST_CASE("lua sandbox: odd library calls end as values or errors, never a crash", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const char* exprs[] = {
      "bit.tohex(1, -2^31)", "bit.tohex(1, 2^31 - 1)", "bit.tohex(-1, -1e9)", "string.format('%c', 256)",
      "string.format('%5.99s', 'x')", "string.format('%-99.99f', -1e308)", "string.format('%#99.99g', 1e-308)",
      "string.format('%99.99a', 1e-320)", "string.format('%.0e', 0.5)", "string.format('%q', '\\0\\r\\n\\255')",
      "string.format('%d', 2^63)", "string.format('%x', -1)", "string.format('%s %s', 1)", "string.format('%')",
      "string.format('%5')", "string.format('%.f', 1)", "string.format('%#x', 255)", "string.format('%i', 3)",
      "('x'):rep(-1)", "('x'):rep(2^31)", "('x'):rep(1e9, ',')", "('x'):rep(0, ('y'):rep(1e6))",
      "('abc'):sub(-1e18, 1e18)", "('abc'):byte(-1e9, 1e9)", "string.char(256)", "string.char(-1)",
      "table.concat({}, ',', 1, 1e9)", "table.concat({1, {}, 3})", "unpack({}, 1, 1e8)", "unpack({}, -2^31, 2^31 - 1)",
      "select(-1e9, 1)", "select(2^31, 1)", "table.insert({}, 1e18, 1)", "table.insert({}, 0/0, 1)",
      "table.remove({}, -1e9)", "table.remove({1, 2, 3}, 1e9)", "table.sort({3, 1, 2}, function() return true end)",
      "table.sort({1, 'x', {}})", "table.maxn(setmetatable({}, { __index = function() error('x') end }))",
      "math.floor(0/0)", "math.random(0)", "math.random(2^53, 1)", "math.max()", "math.fmod(1, 0)", "tonumber('0x', 16)",
      "tonumber('z', 36)", "tonumber('1', 99)", "tostring(nil) .. tostring(0/0)", "os.time({ year = 1e18, month = 1, day = 1 })",
      "os.time({ year = 2024 })", "os.clock() >= 0", "coroutine.resume(coroutine.running())", "coroutine.wrap(error)()",
      "coroutine.status(coroutine.create(print))", "coroutine.resume(coroutine.create(string.rep), 'x', 3)",
      "coroutine.wrap(coroutine.yield)(1)", "coroutine.isyieldable()", "getmetatable(coroutine.running())",
      "('x'):gsub('', '%')", "('x'):gsub('x', '%9')", "('x'):find('%f')", "('x'):find('%fx')", "('x'):match('%b')",
      "('x'):match('%bx')", "('x'):find('x', 2^31)", "('x'):find('x', -2^31)", "('x'):gsub('x', 'y', -1)",
      "('x'):gsub('x', 'y', 1e18)", "string.gmatch('x', '(')()", "rawset({}, nil, 1)", "rawset({}, 0/0, 1)",
      "rawget(string, 'upper')", "rawequal(string, string)", "next({}, 'nope')", "ipairs(nil)", "setmetatable({}, 1)",
      "error()", "assert(false, nil)", "assert(1 == 1, 'x')", "xpcall(error, error)", "pcall(pcall, pcall, error)",
  };
  for (const char* e : exprs) {
    INFO(e);
    const Ran r = run_body(vm, "local ok, v = pcall(function() return " + std::string(e) +
                                   " end)\nreturn gw.test.respond({ status = 200, body = 'clean' })");
    // ('x'):rep(1e9, ',') is a memory kill, table.insert({}, 0/0, 1) shifts 2^31 slots: a kill.
    CHECK((r.kind == "OK_CLEAN" || r.kind == "MEM_KILL" || r.kind == "CPU_KILL"));
  }
}
