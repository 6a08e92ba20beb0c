// Every budget test is bounded: the worst case is the script's own budget plus a collection.
#include <catch2/catch.hpp>

#include <chrono>

#include "lua_support.hpp"

using namespace lgtest::lua;

namespace {

struct Timed {
  Ran ran;
  double ms;
};

Timed timed(Vm& vm, const std::string& body, const Budget& b = budget()) {
  const CpuTimer t0;
  Ran r = run_body(vm, body, b);
  return {r, t0.ms()};
}

// The kill must come close to the deadline. The bound is on the thread's CPU time (see CpuTimer),
// generous anyway.
constexpr double kLate = 400;

}  // namespace

TEST_CASE("lua budget: CPU kills are sticky and prompt", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const char* loops[] = {
      "while true do end",
      "local n = 0 ::top:: n = n + 1 goto top",
      "for i = 1, 1e18 do end",
      "local function f(n) return f(n + 1) end return f(1)",  // tail calls: no stack growth
      "while true do pcall(function() while true do end end) end",
      "while true do xpcall(function() while true do end end, function() while true do end end) end",
      "while true do pcall(coroutine.wrap(function() while true do end end)) end",
      "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end",
      "local t = {} for i = 1, 100 do t[i] = i end table.sort(t, function(a, b) while true do end end)",
      "local mt = { __index = function(t, k) while true do end end } local x = setmetatable({}, mt).y",
      "local s = ('a'):rep(100) while true do s = s:gsub('a', function(c) return c end) end",
  };
  for (const char* body : loops) {
    INFO(body);
    const Timed t = timed(vm, body);
    CHECK(t.ran.result.outcome == Outcome::cpu_exceeded);
    CHECK(t.ran.result.message.find("t.lua:") == 0);
    CHECK(t.ran.result.message.find("cpu budget exceeded (50 ms)") != std::string::npos);
    CHECK(t.ms < 50 + kLate);
  }
}

TEST_CASE("lua budget: long C calls and heavy instructions stay near the deadline", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const char* bodies[] = {
      // Exponential pattern backtracking (the corpus' bomb, and `a*a*a*a*b`: 18 s in LuaJIT).
      "return ('a'):rep(40):find(('a?'):rep(40) .. ('a'):rep(40) .. 'b')",
      "return ('a'):rep(200):find('a*a*a*a*a*b')",
      "while true do local _ = ('a'):rep(5000):match('.-.-.-.-.-b') end",
      // Instructions on big strings: interned results allocate nothing after the first.
      "local s = ('x'):rep(8 * 2^20) while true do local t = s .. '' end",
      "local s = ('x'):rep(4 * 2^20) while true do local u = s:upper() end",
      "local s = ('x'):rep(4 * 2^20) while true do local u = s:rep(1) end",
      "local a, b = ('x'):rep(8 * 2^20), ('x'):rep(8 * 2^20 - 1) .. 'y' while true do local _ = a < b end",
      "local s = ('x'):rep(8 * 2^20) while true do local _ = s:find('y', 1, true) end",
      // table functions implemented in C.
      "local t = {} table.insert(t, -1e9, 1)",
      "local t = {} for i = 1, 200000 do t[i] = -i end while true do table.sort(t) end",
      "local t = {} for i = 1, 200000 do t[i] = i end while true do local _ = table.maxn(t) end",
      "local t = {} for i = 1, 200000 do t[i] = '' end while true do local _ = table.concat(t) end",
      "local t = {} for i = 1, 100000 do t[i] = i end while true do table.insert(t, 1, 0) table.remove(t, 1) end",
  };
  for (const char* body : bodies) {
    INFO(body);
    const Timed t = timed(vm, body);
    CHECK((t.ran.result.outcome == Outcome::cpu_exceeded || t.ran.result.outcome == Outcome::memory_exceeded));
    CHECK(t.ms < 50 + kLate);
  }
}

TEST_CASE("lua budget: Lua recursion is a clean, catchable error", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  Ran r = run_body(vm, "local function f() return 1 + f() end\nreturn f()");
  CHECK(r.result.outcome == Outcome::runtime_error);
  CHECK(r.result.message.find("stack overflow (script call depth limit)") != std::string::npos);
  // Not sticky: a handler may catch it and go on.
  r = run_body(vm,
               "local function f() return 1 + f() end\n"
               "local ok, e = pcall(f)\n"
               "return gw.test.respond({ status = 200, body = (not ok and e:find('stack overflow')) and 'clean' or 'bad' })");
  CHECK(r.kind == "OK_CLEAN");
  // Through metamethods (__index functions are called by the VM, no C frame).
  r = run_body(vm, "local t = setmetatable({}, { __index = function(t, k) return t[k] end })\nreturn t.x");
  CHECK(r.result.outcome == Outcome::runtime_error);
  // tostring() calls __tostring as a tail call: endless, not deep.
  r = run_body(vm, "local mt = {} mt.__tostring = function(t) return tostring(t) end\nreturn tostring(setmetatable({}, mt))");
  CHECK(r.result.outcome == Outcome::cpu_exceeded);
  r = run_body(vm, "local mt = {} mt.__tostring = function(t) return (tostring(t)) end\nreturn tostring(setmetatable({}, mt))");
  CHECK(r.result.outcome == Outcome::runtime_error);
}

TEST_CASE("lua budget: C-stack recursion is a Lua error, never a crash", "[lua]") {
  // Each body nests C frames: gsub -> Lua -> gsub, coroutine.wrap -> resume -> wrap,
  // os.time -> __index -> os.time, format -> __tostring -> format, sort -> comparator -> sort.
  const char* bodies[] = {
      "local function g(s) return (s:gsub('.', g)) end\nreturn g('x')",
      "local t t = setmetatable({}, { __index = function(_, k) return (k:gsub('.', t)) end })\nreturn ('x'):gsub('.', t)",
      "local function f() return coroutine.wrap(f)() end\nreturn f()",
      "local function f() local co = coroutine.create(f) local ok, e = coroutine.resume(co) error(e, 0) end\nreturn f()",
      "local t t = setmetatable({}, { __index = function() return os.time(t) end })\nreturn os.time(t)",
      "local mt = {} mt.__tostring = function(t) return string.format('%s', t) end\nreturn string.format('%s', setmetatable({}, mt))",
      "local function s() table.sort({3, 2, 1}, function(a, b) s() return a < b end) end\nreturn s()",
  };
  for (std::size_t stack : {std::size_t{8} << 20, std::size_t{512} << 10}) {
    for (const char* body : bodies) {
      Ran r;
      run_on_thread(stack, [&] {
        Vm vm;
        register_test_functions(vm);
        r = run_body(vm, body, budget(2000, 64u << 20));  // memory is not what stops them
        // The VM keeps serving on that thread.
        if (run_body(vm, "return 1").result.outcome != Outcome::ok) r.kind = "VM broken";
      });
      INFO(body << " on a " << stack << "-byte stack: " << r.result.message.substr(0, 200));
      if (std::string(body).find("wrap(f)") != std::string::npos) {
        // Stopped by the C-stack check too, but coroutine.wrap prepends a position to the error
        // at each of the ~10^4 levels it unwinds: that quadratic message hits the memory budget.
        CHECK((r.result.outcome == Outcome::runtime_error || r.result.outcome == Outcome::memory_exceeded));
      } else {
        CHECK(r.result.outcome == Outcome::runtime_error);
      }
      CHECK(r.kind != "VM broken");
    }
  }
}

TEST_CASE("lua budget: memory kills", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  const char* bodies[] = {
      "local t = {} for i = 1, 1e9 do t[i] = i end",
      "local t = {} for i = 1, 1e9 do t[i] = { i } end",
      "return ('x'):rep(64 * 2^20)",
      "local s = ('x'):rep(1000) return (s:gsub('.', ('y'):rep(100000)))",  // gsub result outside the allocator
      "local s = ('x'):rep(2^20) local r = s:gsub('.+', ('%0'):rep(40)) return r",
      // Caught, then retried: the memory kill is sticky.
      "local keep = {} while true do local ok, s = pcall(string.rep, 'z', 2^22 + #keep) if ok then keep[#keep + 1] = s end end",
      "pcall(string.rep, 'x', 2^30) while true do local t = {} end",
  };
  for (const char* body : bodies) {
    INFO(body);
    const Timed t = timed(vm, body);
    CHECK(t.ran.result.outcome == Outcome::memory_exceeded);
    CHECK(t.ran.result.message.find("memory budget exceeded (33554432 bytes)") != std::string::npos);
    CHECK(t.ms < 50 + kLate);
    CHECK(run_body(vm, "local t = {} for i = 1, 1000 do t[i] = i end").result.outcome == Outcome::ok);
  }
}

TEST_CASE("lua budget: garbage does not count as memory use", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  // ~40 MiB of short-lived tables and strings with an 8 MiB budget.
  const Ran r = run_body(vm,
                         "for i = 1, 40000 do local t = {} for j = 1, 64 do t[j] = j end local s = ('x'):rep(200) .. i end\n"
                         "return gw.test.respond({ status = 200, body = 'clean' })",
                         budget(5000, 8u << 20));
  CHECK(r.kind == "OK_CLEAN");
}

TEST_CASE("lua budget: each run gets its own budget", "[lua]") {
  Vm vm;
  register_test_functions(vm);
  CHECK(run_body(vm, "while true do end").result.outcome == Outcome::cpu_exceeded);
  CHECK(run_body(vm, "local t = {} for i = 1, 1e9 do t[i] = i end").result.outcome == Outcome::memory_exceeded);
  const Ran r = run_body(vm,
                         "local n = 0 for i = 1, 1e5 do n = n + i end\n"
                         "local t = {} for i = 1, 1e5 do t[i] = i end\n"
                         "return gw.test.respond({ status = 200, body = 'clean' })");
  CHECK(r.kind == "OK_CLEAN");
}
