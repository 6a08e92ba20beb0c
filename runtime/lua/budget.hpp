// CPU, memory and stack budgets of the script VM (internal to runtime/lua/).
//
// One Governor per Vm. It is the state's allocator userdata and the exdata of every lua_State of
// the family (luajit2's lua_newthread and coroutine.create copy exdata from the creating thread),
// so hooks and library wrappers find it from any coroutine in O(1). The request that is running
// right now is governor->run: a coroutine can outlive its request (a script may keep one in a
// chunk-level local), so nothing per-request is ever stored in a coroutine.
//
// What bounds a script (its code is never JIT-compiled, so every instruction of it is interpreted;
// only stdlib loops bounded by their input may run as traces, see sandbox.hpp):
// - a count hook every kHookCount instructions compares a monotonic clock with the deadline;
// - a call hook on every Lua function call refuses Lua stacks deeper than kMaxLuaSlots slots. It
//   is armed only while the state holds a block of kClockCheckAlloc bytes or more: a Lua stack of
//   8,192 slots or more is such a block (any growth to that size is a reallocation the allocator
//   sees), and below that size no stack is anywhere near LuaJIT's limit. One instruction adds at
//   most ~8,250 slots (a call with unpack's 8,000 results into a 250-slot frame), so a stack
//   checked on every call from 8,192 slots on stops below 48,500, far from 65,500. Without the
//   call hook a script pays no per-call price (~130 instructions per Lua call);
// - C stacks deeper than the run's allowance are refused where C calls back into Lua
//   (CallbackDepth: gsub, format, sort; coroutine.resume/wrap; os.time's table; gw.http options)
//   and on every count-hook event;
// - the allocator refuses growth past the run's memory limit, and checks the clock on every
//   allocation of 64 KiB or more (long C calls allocate as they go);
// - while the state holds any block of 64 KiB or more (a big string, LuaJIT's string buffer
//   grown for one), the count hook runs every kHookCountFine instructions instead: a single
//   instruction on such data (`big .. ""`, `big < other`) costs up to milliseconds, and LuaJIT
//   interns strings, so repeating it allocates nothing the allocator could refuse;
// - library wrappers (pattern matcher, table.insert/sort/concat/maxn, plain find) call
//   poll() while they work.
// Once a run is killed (CPU or memory) the hook is re-armed at count 1 and every hook event
// raises the kill again, so pcall/xpcall/coroutine boundaries cannot swallow it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

struct lua_State;
struct lua_Debug;

namespace lg::lua::detail {

inline constexpr int kHookCount = 1000;                 // instructions between clock checks
inline constexpr int kHookCountFine = 16;               // ... while the state holds big blocks
inline constexpr int kMaxLuaSlots = 40000;              // LuaJIT's hard limit is 65500 (CVE-2024-25178)
inline constexpr std::size_t kCStackAllowance = 1u << 20;  // C stack a run may use below run()
inline constexpr std::size_t kCStackMargin = 128u << 10;   // kept free above the thread's guard
inline constexpr std::size_t kMemoryReserve = 16u << 20;   // see Governor::alloc
inline constexpr std::size_t kSmallRealloc = 1u << 20;     // reallocations served from the reserve
inline constexpr std::size_t kClockCheckAlloc = 64u << 10; // allocations that check the clock
inline constexpr int kMaxCallbackDepth = 64;            // nested C->Lua callbacks (gsub, format, sort)

enum class Mode : std::uint8_t { load, handler };

struct RunState {
  Mode mode = Mode::handler;
  std::int64_t deadline_ns = 0;      // CLOCK_MONOTONIC
  std::int64_t cpu_ms = 0;
  std::size_t memory_bytes = 0;
  const char* c_stack_floor = nullptr;  // lowest address the C stack may reach during the run
  lua_State* root = nullptr;         // the coroutine running the handler (yield refused there)
  void* request = nullptr;
  bool cpu_killed = false;
  bool mem_killed = false;
  bool gc_forced = false;            // one emergency full collection per run
  bool fine = false;                 // hook armed at kHookCountFine
  int callback_depth = 0;
  std::uint32_t poll_steps = 0;
  std::string kill_where;            // "chunk:line:" where the kill was first raised
  bool killed() const { return cpu_killed || mem_killed; }
};

class Governor {
 public:
  // lua_Alloc. Outside a run there is no limit. During a run an allocation that would grow the
  // state past `soft_limit_` is refused, except a reallocation to at most kSmallRealloc, which is
  // served up to `soft_limit_ + kMemoryReserve`: Lua stack growth is such a reallocation, and a
  // refused stack growth while a Lua frame is current makes LuaJIT write the error message past
  // the end of the stack (the lj_err_mem half of CVE-2024-25178). Either way the run is marked
  // memory-killed and the next hook event stops it.
  static void* alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);

  // The state's Governor (from exdata), or nullptr if none.
  static Governor* of(lua_State* L);
  void set_state(lua_State* L) { main_ = L; }

  void begin(RunState* run, std::size_t memory_budget);
  void end();
  RunState* run() const { return run_; }
  std::size_t in_use() const { return in_use_; }
  bool custom_allocator = true;  // false if lua_newstate was refused (then lua_gc counts)
  void set_in_use_fallback(std::size_t n) { in_use_ = n; }

  // Hook entry points (count + call). The hook stays installed between runs (it returns at once
  // when no run is active): lua_sethook rewrites the dispatch table, so it is only called when
  // the count changes.
  static void hook(lua_State* L, lua_Debug* ar);
  // count hook every kHookCount, or every kHookCountFine + the call hook while big blocks live
  void arm(lua_State* L);
  void arm_kill(lua_State* L);  // count hook at 1 + call hook: the kill is raised on every instruction

 private:
  std::size_t in_use_ = 0;
  std::size_t big_blocks_ = 0;  // live blocks of kClockCheckAlloc bytes or more
  int armed_count_ = 0;         // the count the hook is installed with (0: not installed)
  bool armed_call_ = false;     // ... and whether the call hook is on
  void set_hook(lua_State* L, int count, bool call);
  lua_State* main_ = nullptr;
  std::size_t soft_limit_ = SIZE_MAX;
  std::size_t hard_limit_ = SIZE_MAX;
  RunState* run_ = nullptr;
};

std::int64_t monotonic_ns();

// Called by C functions doing long work: every 4096 calls checks the clock, and raises the kill
// (never returns) if the run is over its CPU budget or already killed.
void poll(lua_State* L);
// Raises the kill if the running request was killed (CPU or memory). Cheap.
void check_killed(lua_State* L);
// Checks the clock now (for wrappers that just finished one long C call).
void check_deadline(lua_State* L);
[[noreturn]] void raise_kill(lua_State* L, RunState& rs);
// For results built outside the Lua allocator (gsub's std::string): a buffer larger than the
// run's whole memory budget kills the run as memory-exceeded.
void check_buffer(lua_State* L, std::size_t bytes);

// Raises "C stack overflow" if the C stack is below the run's floor: called where C code calls
// back into Lua (each level of such a recursion passes here).
void check_c_stack(lua_State* L);

// RAII nesting counter for C functions that call back into Lua (gsub with a function or table,
// format's __tostring, sort's comparator): raises "callbacks nested too deeply" past the limit.
class CallbackDepth {
 public:
  explicit CallbackDepth(lua_State* L);
  ~CallbackDepth();
  CallbackDepth(const CallbackDepth&) = delete;
  CallbackDepth& operator=(const CallbackDepth&) = delete;

 private:
  RunState* rs_;
};

// Lowest usable address of the calling thread's stack (cached per thread).
const char* thread_stack_low();

}  // namespace lg::lua::detail
