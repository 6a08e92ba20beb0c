#include "lua/budget.hpp"

#include <pthread.h>
#include <time.h>

#include <cstdlib>
#include <string_view>
#include <lua.hpp>

namespace lg::lua::detail {

std::int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

const char* thread_stack_low() {
  thread_local const char* low = [] {
    pthread_attr_t attr;
    void* addr = nullptr;
    std::size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstack(&attr, &addr, &size);
      pthread_attr_destroy(&attr);
    }
    return static_cast<const char*>(addr);
  }();
  return low;
}

Governor* Governor::of(lua_State* L) { return static_cast<Governor*>(lua_getexdata(L)); }

void* Governor::alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* g = static_cast<Governor*>(ud);
  const std::size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    g->in_use_ -= old;
    g->big_blocks_ -= old >= kClockCheckAlloc;
    return nullptr;
  }
  if (nsize > old && g->run_) {
    RunState& rs = *g->run_;
    const std::size_t grow = nsize - old;
    const bool small_realloc = ptr && nsize <= kSmallRealloc;
    if (grow >= kClockCheckAlloc) {
      // Long C calls (string.rep, table.concat, upper/lower of big strings) allocate as they go:
      // refuse their big allocations once the deadline has passed. A stack growth is never
      // refused for time: the hook stops the run at its next event.
      if (!rs.cpu_killed && monotonic_ns() >= rs.deadline_ns) rs.cpu_killed = true;
      if (rs.cpu_killed && !small_realloc) return nullptr;
    }
    if (g->in_use_ + grow > g->soft_limit_) {
      rs.mem_killed = true;
      if (!small_realloc || g->in_use_ + grow > g->hard_limit_) return nullptr;
    }
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  g->in_use_ = g->in_use_ - old + nsize;
  g->big_blocks_ += (nsize >= kClockCheckAlloc) - (old >= kClockCheckAlloc);
  if (nsize >= kClockCheckAlloc && g->run_ && !g->run_->fine && !g->run_->killed() && g->main_) {
    g->run_->fine = true;  // lua_sethook only sets hook fields and the dispatch table
    g->set_hook(g->main_, kHookCountFine, true);
  }
  return p;
}

void Governor::begin(RunState* run, std::size_t memory_budget) {
  run_ = run;
  if (run) {
    soft_limit_ = memory_budget > SIZE_MAX - in_use_ - kMemoryReserve ? SIZE_MAX - kMemoryReserve
                                                                        : in_use_ + memory_budget;
    hard_limit_ = soft_limit_ + kMemoryReserve;
  }
}

void Governor::end() {
  run_ = nullptr;
  soft_limit_ = hard_limit_ = SIZE_MAX;
}

void Governor::set_hook(lua_State* L, int count, bool call) {
  if (armed_count_ == count && armed_call_ == call) return;
  armed_count_ = count;
  armed_call_ = call;
  lua_sethook(L, &Governor::hook, LUA_MASKCOUNT | (call ? LUA_MASKCALL : 0), count);
}

void Governor::arm(lua_State* L) {
  const bool fine = big_blocks_ > 0;
  if (run_) run_->fine = fine;
  set_hook(L, fine ? kHookCountFine : kHookCount, fine);
}

void Governor::arm_kill(lua_State* L) { set_hook(L, 1, true); }

namespace {

// "chunk:line:" of the innermost script function at or above `level` (the sandbox's own
// wrappers and the stdlib skipped: the line to show is the script's call), or "".
std::string where(lua_State* L, int level) {
  lua_Debug ar;
  for (int lv = level; lv < level + 8 && lua_getstack(L, lv, &ar); ++lv) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0) continue;
    const std::string_view src(ar.source);
    if (src != "=lunagate.sandbox" && !src.starts_with("@stdlib/"))
      return std::string(ar.short_src) + ":" + std::to_string(ar.currentline) + ":";
  }
  return {};
}

constexpr const char kCStackMessage[] = "C stack overflow (callbacks or coroutines nested too deeply)";

[[noreturn]] void raise_msg(lua_State* L, int level, const char* msg) {
  const std::string w = where(L, level);
  lua_pushfstring(L, "%s%s%s", w.c_str(), w.empty() ? "" : " ", msg);
  lua_error(L);
  __builtin_unreachable();
}

// The C stack has grown past the run's floor (the caller's frame is below it).
[[gnu::noinline]] bool below_floor(const RunState& rs) {
  const char probe = 0;
  return &probe < rs.c_stack_floor;
}

// Refuses deep Lua stacks long before LuaJIT's own limit (LuaJIT's stack-overflow error path is
// CVE-2024-25178), and a C stack past the run's floor.
void check_depth(lua_State* L, RunState& rs) {
  lua_Debug d;
  if (lua_getstack(L, 0, &d) && (d.i_ci & 0xffff) > kMaxLuaSlots)
    raise_msg(L, 1, "stack overflow (script call depth limit)");
  if (below_floor(rs)) raise_msg(L, 1, kCStackMessage);
}

}  // namespace

[[noreturn]] void raise_kill(lua_State* L, RunState& rs) {
  if (Governor* g = Governor::of(L)) g->arm_kill(L);
  if (rs.kill_where.empty()) {
    rs.kill_where = where(L, 0);
    if (rs.kill_where.empty()) rs.kill_where = "?";
  }
  // Both messages are interned at startup and anchored in the registry: pushing them does not
  // allocate, which matters when the state is at its memory limit.
  lua_pushstring(L, rs.cpu_killed ? "cpu budget exceeded" : "memory budget exceeded");
  lua_error(L);
  __builtin_unreachable();
}

void Governor::hook(lua_State* L, lua_Debug* ar) {
  Governor* g = of(L);
  if (!g || !g->run_) return;
  RunState& rs = *g->run_;
  if (rs.killed()) raise_kill(L, rs);
  if (ar->event == LUA_HOOKCOUNT) {
    if (!g->custom_allocator) {
      g->in_use_ = static_cast<std::size_t>(lua_gc(L, LUA_GCCOUNT, 0)) * 1024u +
                   static_cast<std::size_t>(lua_gc(L, LUA_GCCOUNTB, 0));
      if (g->in_use_ > g->soft_limit_) rs.mem_killed = true;
    }
    if (monotonic_ns() >= rs.deadline_ns) rs.cpu_killed = true;
    if (rs.killed()) raise_kill(L, rs);
    check_depth(L, rs);  // belt and braces: C->Lua paths are checked where they start
    // Three quarters of the budget used: garbage may be part of it (LuaJIT does not collect
    // before refusing an allocation), so collect once before the allocator starts refusing, if
    // at least half of the CPU budget is left (a full collection of a budget-sized heap takes
    // ~20 ms: it must not push the run far past its deadline).
    if (!rs.gc_forced && g->soft_limit_ != SIZE_MAX &&
        g->in_use_ > g->soft_limit_ - rs.memory_bytes / 4 &&
        rs.deadline_ns - monotonic_ns() > rs.cpu_ms * 500'000) {
      rs.gc_forced = true;
      lua_gc(L, LUA_GCCOLLECT, 0);
    }
    return;
  }
  // A Lua function is being entered (its frame is already allocated).
  check_depth(L, rs);
}

void check_c_stack(lua_State* L) {
  Governor* g = Governor::of(L);
  if (!g || !g->run()) return;
  if (below_floor(*g->run())) raise_msg(L, 1, kCStackMessage);
}

void check_killed(lua_State* L) {
  Governor* g = Governor::of(L);
  if (g && g->run() && g->run()->killed()) raise_kill(L, *g->run());
}

void check_deadline(lua_State* L) {
  Governor* g = Governor::of(L);
  if (!g || !g->run()) return;
  RunState& rs = *g->run();
  if (!rs.killed() && monotonic_ns() >= rs.deadline_ns) rs.cpu_killed = true;
  if (rs.killed()) raise_kill(L, rs);
}

void check_buffer(lua_State* L, std::size_t bytes) {
  Governor* g = Governor::of(L);
  if (!g || !g->run()) return;
  RunState& rs = *g->run();
  if (bytes > rs.memory_bytes) rs.mem_killed = true;
  if (rs.killed()) raise_kill(L, rs);
}

void poll(lua_State* L) {
  Governor* g = Governor::of(L);
  if (!g || !g->run()) return;
  RunState& rs = *g->run();
  if (rs.killed()) raise_kill(L, rs);
  if ((++rs.poll_steps & 4095u) == 0 && monotonic_ns() >= rs.deadline_ns) {
    rs.cpu_killed = true;
    raise_kill(L, rs);
  }
}

CallbackDepth::CallbackDepth(lua_State* L) {
  check_c_stack(L);  // before counting: a raise from here runs no destructor
  Governor* g = Governor::of(L);
  rs_ = g ? g->run() : nullptr;
  if (!rs_) return;
  if (rs_->callback_depth >= kMaxCallbackDepth) {
    rs_ = nullptr;
    luaL_error(L, "callbacks nested too deeply (limit %d)", kMaxCallbackDepth);
  }
  ++rs_->callback_depth;
}

CallbackDepth::~CallbackDepth() {
  if (rs_) --rs_->callback_depth;
}

}  // namespace lg::lua::detail
