// The per-worker script VM: one lua_State with a budget-enforcing allocator, the JIT engine on
// for trusted stdlib code only, and the sandbox of sandbox.hpp. See budget.hpp for what bounds a
// running script.
//
// JIT: detail::set_jit_engine turns the engine on for the state (luaopen_jit; before it the
// engine was never initialized, so nothing was compiled), and every user chunk is marked
// LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF in load(): its functions, closures and the coroutines
// made of them stay interpreted, so count hooks keep firing in user code (they do not fire
// inside traces) and the CPU budget holds. Only stdlib functions are compiled (sandbox.hpp):
// loops bounded by their input, that call no user code. The JIT-only CVE-2024-25177 (unsinking
// of IR_FSTORE for a NULL metatable) needs setmetatable(t, nil) in compiled code: no stdlib
// module calls it. tests/unit/lua/stdlib_test.cpp checks that no user bytecode ends up in a trace.
#include "lua/vm.hpp"

#include <algorithm>
#include <cctype>
#include <lua.hpp>
#include <stdexcept>

#include "lua/budget.hpp"
#include "lua/sandbox.hpp"

namespace lg::lua {

using detail::Governor;
using detail::Mode;
using detail::RunState;

namespace {

constexpr std::size_t kMaxSourceBytes = 4u << 20;
constexpr std::size_t kMaxMessage = 1024;
constexpr std::size_t kFullGcAfter = 1u << 20;  // a run that grew the state by more: collect
constexpr std::size_t kGcStepAfter = 16u << 10;  // ... by more: one incremental step
constexpr std::int64_t kGcSliceNs = 1'000'000;      // collection work after a run, at most

const char* const kPhaseNames[] = {"rewrite", "access", "response", "body", "log"};

// Error text for logs: control characters escaped (a script may put "\r\nSet-Cookie:" in its
// error), bounded length. Never for the client.
std::string sanitize(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s.substr(0, kMaxMessage)) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    else out += static_cast<char>(c);
  }
  if (s.size() > kMaxMessage) out += "...";
  return out;
}

// The error value at the top of `co` as text, without calling any metamethod.
std::string error_text(lua_State* co, std::string_view chunk) {
  const int t = lua_type(co, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushvalue(co, -1);
    std::size_t n;
    const char* s = lua_tolstring(co, -1, &n);
    std::string r = sanitize(std::string_view(s, n));
    lua_pop(co, 1);
    return r;
  }
  return std::string(chunk) + ": (error object is a " + lua_typename(co, t) + " value)";
}

bool has_bytecode_signature(std::string_view src) {
  if (src.substr(0, 3) == "\xEF\xBB\xBF") src.remove_prefix(3);  // LuaJIT skips a BOM
  if (!src.empty() && src[0] == '#') {                            // and a first "#..." line
    const auto nl = src.find('\n');
    src = nl == std::string_view::npos ? std::string_view{} : src.substr(nl + 1);
  }
  return !src.empty() && src[0] == '\x1b';
}

std::string base_name(std::string_view chunk) {
  const auto slash = chunk.find_last_of('/');
  if (slash != std::string_view::npos) chunk.remove_prefix(slash + 1);
  if (chunk.size() > 4 && chunk.substr(chunk.size() - 4) == ".lua") chunk.remove_suffix(4);
  return std::string(chunk);
}

}  // namespace

const char* phase_name(Phase p) {
  const auto i = static_cast<std::size_t>(p);
  return i < std::size(kPhaseNames) ? kPhaseNames[i] : "?";
}

struct Vm::Impl {
  Governor gov;
  lua_State* L = nullptr;
  lua_State* spare = nullptr;  // a finished coroutine kept for the next run
  int spare_ref = -1;
  int gc_cycles_pending = 0;   // collection cycles still to complete in slices

  void start(RunState& rs, Mode mode, const Budget& b, void* request) {
    rs.mode = mode;
    rs.cpu_ms = b.cpu_ms;
    rs.memory_bytes = b.memory_bytes;
    rs.request = request;
    rs.deadline_ns = detail::monotonic_ns() + std::max<std::int64_t>(b.cpu_ms, 0) * 1'000'000;
    const char marker = 0;
    const char* floor = &marker - std::min<std::uintptr_t>(detail::kCStackAllowance,
                                                            reinterpret_cast<std::uintptr_t>(&marker));
    if (const char* low = detail::thread_stack_low()) floor = std::max(floor, low + detail::kCStackMargin);
    rs.c_stack_floor = floor;
  }

  // Runs the function on top of L's stack in a new coroutine under `rs` (popping it). The first
  // result, when `keep_result`, is left on L's stack (nil if none) after a successful run.
  // A handler that waits in a host call is kept in `*suspended` (or dropped when null).
  RunResult execute(RunState& rs, std::string_view chunk, const std::function<int(lua_State*)>* push_args,
                    bool keep_result, Suspended* suspended) {
    int co_ref = 0;
    lua_State* co = take_coroutine(co_ref);
    lua_xmove(L, co, 1);
    int nargs = 0;
    if (!push_on(co, co_ref, chunk, push_args, nargs)) return {Outcome::runtime_error, std::string(chunk) + ": error while pushing the handler's arguments"};
    return drive(rs, co, co_ref, nargs, chunk, keep_result, suspended);
  }

  // A coroutine for the next run: the spare one (a run that returned), else a new one.
  lua_State* take_coroutine(int& co_ref) {
    lua_State* co = spare;
    co_ref = spare_ref;
    spare = nullptr;
    if (!co) {
      co = lua_newthread(L);
      co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return co;
  }

  // Pushes arguments outside the budget. A Lua error while pushing (out of memory, a failed
  // luaL_checkstack) is raised on a coroutine that is not running: with LuaJIT's external
  // (C++-compatible) unwinding it reaches the catch (...) below instead of the panic function.
  bool push_on(lua_State* co, int co_ref, std::string_view, const std::function<int(lua_State*)>* push,
               int& nargs) {
    try {
      nargs = push ? (*push)(co) : 0;
    } catch (const std::exception&) {
      lua_settop(co, 0);
      luaL_unref(L, LUA_REGISTRYINDEX, co_ref);
      throw;
    } catch (...) {
      luaL_unref(L, LUA_REGISTRYINDEX, co_ref);  // the thread is dropped, not reused
      return false;
    }
    return true;
  }

  // Resumes `co` with `nargs` values on its stack under `rs` and settles the outcome.
  RunResult drive(RunState& rs, lua_State* co, int co_ref, int nargs, std::string_view chunk, bool keep_result,
                  Suspended* suspended) {
    rs.root = co;
    const std::size_t before = gov.in_use();
    gov.begin(&rs, rs.memory_bytes);
    gov.arm(L);
    const int st = lua_resume(co, nargs);
    gov.end();

    RunResult res;
    bool keep_co = false;
    if (st == 0) {
      if (keep_result) {
        lua_settop(co, std::min(lua_gettop(co), 1));
        if (lua_gettop(co) == 0) lua_pushnil(L);
        else lua_xmove(co, L, 1);
      }
    } else if (st == LUA_YIELD && suspended && !rs.killed()) {
      // A host call waits: keep the coroutine and what is left of the budget.
      res.outcome = Outcome::yielded;
      const std::size_t used = gov.in_use() > before ? gov.in_use() - before : 0;
      suspended->co = co;
      suspended->co_ref = co_ref;
      if (chunk.data() != suspended->chunkname.data()) suspended->chunkname.assign(chunk);
      suspended->cpu_left_ns = std::max<std::int64_t>(rs.deadline_ns - detail::monotonic_ns(), 0);
      suspended->memory_left = used < rs.memory_bytes ? rs.memory_bytes - used : 0;
      lua_settop(co, 0);
      keep_co = true;
    } else if (st == LUA_YIELD) {
      res.outcome = Outcome::runtime_error;
      res.message = std::string(chunk) + ": a host call waited where waiting is not possible";
    } else if (rs.cpu_killed || rs.mem_killed) {
      const bool cpu = rs.cpu_killed;
      res.outcome = cpu ? Outcome::cpu_exceeded : Outcome::memory_exceeded;
      const std::string where = rs.kill_where.empty() || rs.kill_where == "?" ? std::string(chunk) + ":"
                                                                                : sanitize(rs.kill_where);
      res.message = where + (cpu ? " cpu budget exceeded (" + std::to_string(rs.cpu_ms) + " ms)"
                                 : " memory budget exceeded (" + std::to_string(rs.memory_bytes) + " bytes)");
    } else {
      res.outcome = Outcome::runtime_error;
      res.message = error_text(co, chunk);
    }
    if (!keep_co) {
      lua_settop(co, 0);
      if (st == 0 && !spare) {  // a coroutine that returned can run the next handler
        spare = co;
        spare_ref = co_ref;
      } else {
        luaL_unref(L, LUA_REGISTRYINDEX, co_ref);
      }
    }
    // A killed run may leave up to its whole budget as garbage (and LuaJIT keeps its string
    // buffer at its largest size until a collection shrinks it). A full collection of that
    // takes ~30 ms, so it is done in slices of at most kGcSliceNs after each run until two
    // cycles have completed. Otherwise LuaJIT's allocation-paced incremental GC keeps up; help
    // it with one small step after runs that allocated noticeably.
    const std::size_t after = gov.in_use();
    if (rs.killed() || after > before + kFullGcAfter) gc_cycles_pending = 2;
    if (gc_cycles_pending > 0) collect_slice();
    else if (after > before + kGcStepAfter) lua_gc(L, LUA_GCSTEP, 0);
    return res;
  }

  void collect_slice() {
    const std::int64_t until = detail::monotonic_ns() + kGcSliceNs;
    do {
      if (lua_gc(L, LUA_GCSTEP, 64) && --gc_cycles_pending == 0) return;  // 1: a cycle ended
    } while (detail::monotonic_ns() < until);
  }
};

Vm::Vm() : impl_(std::make_unique<Impl>()) {
  lua_State* L = lua_newstate(&Governor::alloc, &impl_->gov);
  if (!L) {  // not expected on x86_64 GC64 (measured: works); then count through lua_gc
    L = luaL_newstate();
    impl_->gov.custom_allocator = false;
  }
  if (!L) throw std::runtime_error("cannot create a Lua state");
  impl_->L = L;
  lua_setexdata(L, &impl_->gov);  // inherited by every coroutine of the state
  impl_->gov.set_state(L);
  detail::set_jit_engine(L, true);  // false: everything interpreted (see the top of this file)
  if (lua_cpcall(L, &detail::build_sandbox, nullptr) != 0) {
    std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
    lua_close(L);
    throw std::runtime_error("cannot build the Lua sandbox: " + msg);
  }
}

Vm::~Vm() {
  if (impl_ && impl_->L) lua_close(impl_->L);
}

lua_State* Vm::state() { return impl_->L; }

std::size_t Vm::memory_in_use() const {
  if (impl_->gov.custom_allocator) return impl_->gov.in_use();
  return static_cast<std::size_t>(lua_gc(impl_->L, LUA_GCCOUNT, 0)) * 1024u +
         static_cast<std::size_t>(lua_gc(impl_->L, LUA_GCCOUNTB, 0));
}

void* Vm::current_request(lua_State* L) {
  Governor* g = Governor::of(L);
  return g && g->run() ? g->run()->request : nullptr;
}

void Vm::register_function(std::string_view dotted_name, int (*fn)(lua_State*)) {
  if (dotted_name.empty() || !detail::register_gw_function(impl_->L, dotted_name, fn))
    throw std::invalid_argument("cannot register gw." + std::string(dotted_name));
}

namespace {

// Lines for load errors that Lua itself does not locate: the last top-level `return` (or the
// last line), and the first line assigning a field ("access =").
int line_of_return(std::string_view src) {
  int line = 1, last_return = 0;
  bool at_line_start = true;
  for (std::size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      at_line_start = true;
      continue;
    }
    if (at_line_start && src.compare(i, 6, "return") == 0) last_return = line;
    if (src[i] != ' ' && src[i] != '\t') at_line_start = false;
  }
  if (last_return) return last_return;
  return (!src.empty() && src.back() == '\n') ? line - 1 : line;
}

int line_of_field(std::string_view src, std::string_view name) {
  int line = 1;
  for (std::size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      continue;
    }
    if (src.compare(i, name.size(), name) != 0) continue;
    const bool start_ok = i == 0 || !(std::isalnum(static_cast<unsigned char>(src[i - 1])) || src[i - 1] == '_');
    std::size_t j = i + name.size();
    while (j < src.size() && (src[j] == ' ' || src[j] == '\t')) ++j;
    if (start_ok && j < src.size() && src[j] == '=' && (j + 1 >= src.size() || src[j + 1] != '=')) return line;
  }
  return 1;
}

}  // namespace

bool Vm::load(std::string_view chunkname, std::string_view source, const Budget& budget, ScriptHandle& out,
              std::string& err) {
  lua_State* L = impl_->L;
  const std::string chunk(chunkname);
  out = ScriptHandle{};
  err.clear();
  if (impl_->gov.run()) {
    err = chunk + ": cannot load a script while a script is running";
    return false;
  }
  if (source.size() > kMaxSourceBytes) {
    err = chunk + ":1: script larger than " + std::to_string(kMaxSourceBytes) + " bytes";
    return false;
  }
  if (has_bytecode_signature(source)) {
    err = chunk + ":1: precompiled bytecode is not accepted";
    return false;
  }
  RunState rs;
  impl_->start(rs, Mode::load, budget, nullptr);
  const int top = lua_gettop(L);
  // Compiled under the load budget's memory limit; mode "t" refuses binary chunks as well.
  impl_->gov.begin(&rs, budget.memory_bytes);
  const std::string name = "@" + chunk;
  const int st = luaL_loadbufferx(L, source.data(), source.size(), name.c_str(), "t");
  impl_->gov.end();
  if (st != 0) {
    err = rs.killed() ? chunk + ": load budget exceeded while compiling" : error_text(L, chunk);
    lua_settop(L, top);
    return false;
  }
  luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);
  detail::push_script_env(L);
  lua_pushvalue(L, -1);
  const int env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfenv(L, -2);

  RunResult r = impl_->execute(rs, chunk, nullptr, true, nullptr);
  const auto fail = [&](std::string msg) {
    err = std::move(msg);
    for (int& ref : out.phase_refs) {
      if (ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, ref);
      ref = -1;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, env_ref);
    lua_settop(L, top);
    return false;
  };
  if (r.outcome != Outcome::ok) {
    if (r.outcome == Outcome::yielded) r.message = chunk + ": the top level yielded";
    return fail(r.outcome == Outcome::cpu_exceeded || r.outcome == Outcome::memory_exceeded
                    ? r.message + " while loading"
                    : r.message);
  }
  const int result = lua_gettop(L);
  if (!lua_istable(L, result))
    return fail(chunk + ":" + std::to_string(line_of_return(source)) +
                ": the script must return a table of phase handlers (got " + luaL_typename(L, result) + ")");
  // Copied into a table of our own, read raw: a metamethod on the returned table never runs
  // outside a budget, and the script cannot swap handlers after the load.
  lua_newtable(L);
  const int handlers = lua_gettop(L);
  std::uint8_t phases = 0;
  for (std::size_t i = 0; i < std::size(kPhaseNames); ++i) {
    lua_pushstring(L, kPhaseNames[i]);
    lua_rawget(L, result);
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, -1);
      out.phase_refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
      lua_setfield(L, handlers, kPhaseNames[i]);
      phases |= static_cast<std::uint8_t>(1u << i);
    } else if (!lua_isnil(L, -1)) {
      return fail(chunk + ":" + std::to_string(line_of_field(source, kPhaseNames[i])) + ": field '" + kPhaseNames[i] +
                  "' must be a function (got " + luaL_typename(L, -1) + ")");
    } else {
      lua_pop(L, 1);
    }
  }
  for (const char* f : {"name", "version", "schema"}) {
    lua_pushstring(L, f);
    lua_rawget(L, result);
    const int want = f[0] == 's' ? LUA_TTABLE : LUA_TSTRING;
    if (!lua_isnil(L, -1) && lua_type(L, -1) != want)
      return fail(chunk + ":" + std::to_string(line_of_field(source, f)) + ": field '" + f + "' must be a " +
                  lua_typename(L, want) + " (got " + luaL_typename(L, -1) + ")");
    if (f[0] == 'v' && lua_type(L, -1) == LUA_TSTRING) out.version = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (phases == 0)
    return fail(chunk + ":" + std::to_string(line_of_return(source)) +
                ": the script defines no phase handler (rewrite, access, response, body, log)");
  lua_pushliteral(L, "schema");  // kept to validate each route's config against it
  lua_rawget(L, result);
  out.schema_ref = lua_istable(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX) : (lua_pop(L, 1), -1);
  lua_pushvalue(L, handlers);
  out.handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  out.env_ref = env_ref;
  out.phases = phases;
  out.chunkname = chunk;
  out.name = base_name(chunkname);
  lua_settop(L, top);
  return true;
}

void Vm::unload(ScriptHandle& h) {
  lua_State* L = impl_->L;
  if (h.handlers_ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, h.handlers_ref);
  if (h.env_ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, h.env_ref);
  if (h.schema_ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, h.schema_ref);
  for (int& ref : h.phase_refs) {
    if (ref >= 0) luaL_unref(L, LUA_REGISTRYINDEX, ref);
    ref = -1;
  }
  h.handlers_ref = h.env_ref = h.schema_ref = -1;
  h.phases = 0;
}

RunResult Vm::run(const ScriptHandle& script, Phase phase, const Budget& budget, void* request,
                  const std::function<int(lua_State*)>& push_args, Suspended* suspended) {
  lua_State* L = impl_->L;
  const std::string_view chunk = script.chunkname.empty() ? std::string_view(script.name) : script.chunkname;
  if (!script.has(phase) || script.handlers_ref < 0)
    return {Outcome::runtime_error, std::string(chunk) + ": no " + phase_name(phase) + " handler"};
  if (impl_->gov.run())
    return {Outcome::runtime_error, std::string(chunk) + ": Vm::run called while a script is running"};
  lua_rawgeti(L, LUA_REGISTRYINDEX, script.handlers_ref);
  lua_getfield(L, -1, phase_name(phase));  // our own plain table: no metamethod
  lua_remove(L, -2);
  RunState rs;
  impl_->start(rs, Mode::handler, budget, request);
  if (suspended) suspended->budget = budget;
  return impl_->execute(rs, chunk, push_args ? &push_args : nullptr, false, suspended);
}

RunResult Vm::run(const ScriptHandle& script, Phase phase, const Budget& budget, void* request, int arg_ref,
                  Suspended* suspended) {
  const auto p = static_cast<std::size_t>(phase);
  if (!script.has(phase) || p >= std::size(script.phase_refs) || script.phase_refs[p] < 0 || impl_->gov.run())
    return run(script, phase, budget, request, [arg_ref](lua_State* L) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, arg_ref);
      return 1;
    }, suspended);  // the slow path reports why
  const std::string_view chunk = script.chunkname.empty() ? std::string_view(script.name) : script.chunkname;
  int co_ref = 0;
  lua_State* co = impl_->take_coroutine(co_ref);
  // Straight onto the coroutine: the handler, then its argument (a registry read cannot fail).
  lua_rawgeti(co, LUA_REGISTRYINDEX, script.phase_refs[p]);
  if (arg_ref >= 0) lua_rawgeti(co, LUA_REGISTRYINDEX, arg_ref);
  else lua_pushnil(co);
  if (suspended) suspended->budget = budget;
  RunState rs;
  impl_->start(rs, Mode::handler, budget, request);
  return impl_->drive(rs, co, co_ref, 1, chunk, false, suspended);
}

RunResult Vm::resume(Suspended& s, void* request, const std::function<int(lua_State*)>& push_results) {
  if (!s.active()) return {Outcome::runtime_error, s.chunkname + ": resume of a handler that is not waiting"};
  if (impl_->gov.run()) return {Outcome::runtime_error, s.chunkname + ": Vm::resume called while a script is running"};
  lua_State* co = s.co;
  const int co_ref = s.co_ref;
  s.co = nullptr;
  s.co_ref = -1;
  if (lua_status(co) != LUA_YIELD) {  // not where the host left it: never resume blindly
    lua_settop(co, 0);
    luaL_unref(impl_->L, LUA_REGISTRYINDEX, co_ref);
    return {Outcome::runtime_error, s.chunkname + ": the waiting handler was resumed by something else"};
  }
  int nargs = 0;
  if (!impl_->push_on(co, co_ref, s.chunkname, &push_results, nargs))
    return {Outcome::runtime_error, s.chunkname + ": error while pushing a wait's results"};
  RunState rs;
  impl_->start(rs, Mode::handler, s.budget, request);
  rs.deadline_ns = detail::monotonic_ns() + s.cpu_left_ns;  // waiting is not charged
  rs.memory_bytes = s.memory_left;
  return impl_->drive(rs, co, co_ref, nargs, s.chunkname, false, &s);
}

void Vm::abandon(Suspended& s) {
  if (!s.active()) return;
  lua_settop(s.co, 0);
  luaL_unref(impl_->L, LUA_REGISTRYINDEX, s.co_ref);  // the coroutine is collected with its frames
  s.co = nullptr;
  s.co_ref = -1;
}

bool Vm::can_wait(lua_State* L) {
  Governor* g = Governor::of(L);
  return g && g->run() && g->run()->root == L && lua_isyieldable(L);
}

}  // namespace lg::lua
