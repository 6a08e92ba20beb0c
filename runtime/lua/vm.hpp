// One LuaJIT VM per worker, running untrusted route scripts in sandboxed environments under CPU
// and memory budgets. All Lua C API use of the runtime lives in runtime/lua/ (vm, sandbox,
// bindings); the rest of the core sees only this interface.
//
// Thread model: a Vm belongs to one worker thread. Scripts are compiled into every worker's Vm
// when a snapshot is installed; a request runs a phase handler in a fresh coroutine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct lua_State;

namespace lg::lua {

enum class Phase : std::uint8_t { rewrite, access, response, body, log, count_ };
const char* phase_name(Phase p);
constexpr unsigned phase_bit(Phase p) { return 1u << static_cast<unsigned>(p); }

struct Budget {
  std::int64_t cpu_ms = 50;                  // wall time the handler may run (checked by a count hook)
  std::size_t memory_bytes = 32u << 20;      // bytes the request's allocations may grow the VM by
};

enum class Outcome : std::uint8_t {
  ok,               // the handler returned
  runtime_error,    // a Lua error (message for the log only, never for the client)
  cpu_exceeded,     // stopped at its CPU budget (sticky: pcall cannot swallow it)
  memory_exceeded,  // an allocation past the memory budget was refused and the handler failed
  yielded,          // the handler waits in a host call (gw.http, gw.sleep): resume() or abandon() it
};

struct RunResult {
  Outcome outcome = Outcome::ok;
  std::string message;  // "scripts/x.lua:12: attempt to index a nil value" for errors
};

// A script compiled into one Vm: its sandboxed environment and its table of phase handlers.
struct ScriptHandle {
  std::string name;          // file name without ".lua"
  std::string chunkname;     // as given to load(), e.g. "scripts/tenant.lua" (for messages)
  std::string version;       // the script's optional `version` field
  int handlers_ref = -1;     // registry reference to the returned table
  int env_ref = -1;          // registry reference to the script's environment
  int schema_ref = -1;       // registry reference to its `schema` table, if it declares one
  int phase_refs[5] = {-1, -1, -1, -1, -1};  // registry references to each phase's handler
  std::uint8_t phases = 0;   // bit (1 << Phase) for each handler present
  bool has(Phase p) const { return phases & phase_bit(p); }
};

// A handler suspended inside a host call that waits (gw.http.request, gw.sleep, ...): its
// coroutine and what is left of its budget. Time spent waiting is not charged to the CPU budget.
// Owned by the request; exactly one resume() or abandon() ends it.
struct Suspended {
  int co_ref = -1;
  lua_State* co = nullptr;
  std::int64_t cpu_left_ns = 0;
  std::size_t memory_left = 0;
  Budget budget;          // as configured, for messages
  std::string chunkname;  // of the script, for messages
  bool active() const { return co_ref >= 0; }
};

class Vm {
 public:
  Vm();
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Compiles `source` (chunk name e.g. "scripts/tenant.lua") in a fresh sandboxed environment and
  // runs its top level under `budget`. Rejected with err = "scripts/x.lua:LINE: message": bytecode
  // (any chunk starting with ESC, also after a BOM), syntax errors, top-level errors or budget,
  // a result that is not a table whose phase fields are functions.
  bool load(std::string_view chunkname, std::string_view source, const Budget& budget, ScriptHandle& out,
            std::string& err);
  void unload(ScriptHandle& h);

  // Runs handler `phase` of `script` in a new coroutine. `push_args` pushes the handler's
  // arguments on the coroutine and returns how many. `request` is available to host functions
  // (bindings) through current_request().
  // push_args runs before the budget is armed and must only push values (lua_checkstack for
  // more than 20); a Lua error there ends the run as runtime_error, a std::exception propagates.
  // A coroutine that returned is reused by the next run. Outcome::yielded can only come from a
  // host function that waits (scripts cannot yield the handler's coroutine themselves); the
  // coroutine is then kept in `suspended` until resume() or abandon().
  RunResult run(const ScriptHandle& script, Phase phase, const Budget& budget, void* request,
                const std::function<int(lua_State*)>& push_args, Suspended* suspended = nullptr);
  // The same with one argument: the registry value `arg_ref` (nil when -1), e.g. a route's
  // config table. The request path uses this one (no type-erased callback).
  RunResult run(const ScriptHandle& script, Phase phase, const Budget& budget, void* request, int arg_ref,
                Suspended* suspended);
  // Continues a suspended handler; `push_results` pushes what the waiting host call returns.
  // Yields again into the same `s`, or ends it.
  RunResult resume(Suspended& s, void* request, const std::function<int(lua_State*)>& push_results);
  void abandon(Suspended& s);  // the request went away while its handler waited
  // True when a host function may wait (yield) from `L`: only the handler's own coroutine can,
  // not a coroutine the script created (its yield would return to the script, not the gateway).
  static bool can_wait(lua_State* L);

  // Host functions exposed to scripts under the read-only global `gw`, e.g.
  // register_function("request.get_header", fn). Call before loading scripts.
  void register_function(std::string_view dotted_name, int (*fn)(lua_State*));
  static void* current_request(lua_State* L);  // from inside a host function; nullptr outside run()

  lua_State* state();
  std::size_t memory_in_use() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lg::lua
