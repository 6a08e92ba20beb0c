// Helpers shared by the Lua VM tests: a Vm with gw.test.respond registered, the corpus' request
// table, and outcome names as in the corpus manifest.
#pragma once
#include <pthread.h>
#include <time.h>

#include <functional>
#include <lua.hpp>
#include <stdexcept>
#include <string>

#include "lua/response.hpp"
#include "lua/vm.hpp"

namespace lgtest::lua {

using lg::lua::Budget;
using lg::lua::Outcome;
using lg::lua::Phase;
using lg::lua::RunResult;
using lg::lua::ScriptHandle;
using lg::lua::Vm;

// CPU time this thread has used since construction, in ms. Tests that check a budget stopped a
// script "soon" bound this rather than wall time: a loaded machine delays a thread but cannot
// make it burn more CPU than the wall time that passed, so the bound holds however busy CI is.
class CpuTimer {
 public:
  CpuTimer() : t0_(now()) {}
  double ms() const { return (now() - t0_) / 1e6; }

 private:
  static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
  double t0_;
};

// What a test handler reported through gw.test.respond(response).
struct TestRequest {
  bool responded = false;
  bool valid = false;
  lg::lua::ScriptResponse response;
  std::string error;
  std::string path = "/x";
};

inline int test_respond(lua_State* L) {
  auto* req = static_cast<TestRequest*>(Vm::current_request(L));
  if (!req) return luaL_error(L, "gw.test.respond outside a request");
  req->responded = true;
  req->valid = lg::lua::read_response(L, 1, req->response, req->error);
  return 0;
}

// gw.test.request_path(): the current request's path (current_request round trip).
inline int test_request_path(lua_State* L) {
  auto* req = static_cast<TestRequest*>(Vm::current_request(L));
  lua_pushstring(L, req ? req->path.c_str() : "(none)");
  return 1;
}

inline void register_test_functions(Vm& vm) {
  vm.register_function("test.respond", test_respond);
  vm.register_function("test.request_path", test_request_path);
}

// {method="GET", path=<path>, headers={["user-agent"]="test"}, body=""}
inline int push_corpus_request(lua_State* co, const std::string& path) {
  lua_createtable(co, 0, 4);
  lua_pushliteral(co, "GET");
  lua_setfield(co, -2, "method");
  lua_pushlstring(co, path.data(), path.size());
  lua_setfield(co, -2, "path");
  lua_createtable(co, 0, 1);
  lua_pushliteral(co, "test");
  lua_setfield(co, -2, "user-agent");
  lua_setfield(co, -2, "headers");
  lua_pushliteral(co, "");
  lua_setfield(co, -2, "body");
  return 1;
}

// Outcome names of /work/shared/corpus/README.md.
inline std::string classify(const RunResult& r, const TestRequest& t) {
  switch (r.outcome) {
    case Outcome::cpu_exceeded: return "CPU_KILL";
    case Outcome::memory_exceeded: return "MEM_KILL";
    case Outcome::runtime_error: return "RUNTIME_ERROR";
    case Outcome::yielded: return "YIELDED";
    case Outcome::ok: break;
  }
  if (!t.responded || !t.valid) return "RESPONSE_REJECT";
  if (t.response.body == "clean") return "OK_CLEAN";
  return "OK_BODY:" + t.response.body.substr(0, 80);
}

inline Budget budget(std::int64_t cpu_ms = 50, std::size_t mem = 32u << 20) {
  Budget b;
  b.cpu_ms = cpu_ms;
  b.memory_bytes = mem;
  return b;
}

// Loads `src` as a script; throws with the loader's message if it is refused.
inline ScriptHandle load_or_throw(Vm& vm, const std::string& src, const std::string& name = "t.lua",
                                  const Budget& b = budget(100)) {
  ScriptHandle h;
  std::string err;
  if (!vm.load(name, src, b, h, err)) throw std::runtime_error("load failed: " + err);
  return h;
}

// Wraps a handler body as an access handler: `return { access = function(req) <body> end }`.
inline std::string access_script(const std::string& body) {
  return "return { access = function(req)\n" + body + "\nend }\n";
}

struct Ran {
  RunResult result;
  TestRequest req;
  std::string kind;  // classify()
};

inline Ran run_access(Vm& vm, const ScriptHandle& h, const Budget& b = budget(), const std::string& path = "/x") {
  Ran ran;
  ran.req.path = path;
  ran.result = vm.run(h, Phase::access, b, &ran.req,
                      [&](lua_State* co) { return push_corpus_request(co, path); });
  ran.kind = classify(ran.result, ran.req);
  return ran;
}

// Loads `body` as an access handler and runs it once.
inline Ran run_body(Vm& vm, const std::string& body, const Budget& b = budget()) {
  const ScriptHandle h = load_or_throw(vm, access_script(body));
  Ran r = run_access(vm, h, b);
  ScriptHandle copy = h;
  vm.unload(copy);
  return r;
}

// Runs fn on a new thread with the given stack size (the gateway's workers use the default 8 MiB).
inline void run_on_thread(std::size_t stack_bytes, const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes);
  struct Ctx {
    const std::function<void()>* fn;
    std::exception_ptr error;
  } ctx{&fn, nullptr};
  pthread_t t;
  const auto body = [](void* p) -> void* {
    auto* c = static_cast<Ctx*>(p);
    try {
      (*c->fn)();
    } catch (...) {
      c->error = std::current_exception();
    }
    return nullptr;
  };
  if (pthread_create(&t, &attr, body, &ctx) != 0) throw std::runtime_error("pthread_create");
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  if (ctx.error) std::rethrow_exception(ctx.error);
}

}  // namespace lgtest::lua
