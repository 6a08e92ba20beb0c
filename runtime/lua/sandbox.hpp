// The environment user scripts see (internal to runtime/lua/).
//
// One shared base table (never reachable from scripts) holds the allowed globals:
//   assert error ipairs next pairs rawequal rawget select setmetatable getmetatable tonumber
//   tostring type unpack _VERSION, pcall/xpcall/rawset (wrapped), require (stdlib only), and
//   read-only proxies of string, table, math (no randomseed), os (time, clock), bit, coroutine
//   (wrapped) and gw.
// Absent: io, os.*, ffi, debug, jit, package/module, load/loadstring/loadfile/dofile,
// string.dump, collectgarbage, gcinfo, newproxy, setfenv/getfenv, print.
//
// A read-only proxy is an empty table whose metatable has __index = the real table, __newindex =
// an error and __metatable = false (getmetatable returns false, setmetatable refuses); proxies
// and script environments are in a weak "protected" set that rawset and table.insert refuse.
// The string metatable (shared by all strings of the state) gets __index = the safe string table
// and __metatable = false: ("").dump is nil and getmetatable("") is false.
//
// Each script gets its own environment: an empty protected table whose __index is the script's
// storage (whose __index is the base) and whose __newindex stores into the storage while the
// script's top level runs, and raises an error in a request handler (globals written during one
// request would otherwise be seen by the next one). _G is the environment itself.
//
// The stdlib (stdlib.hpp, stdlib_loader.cpp): every module is run once when the sandbox is
// built, in an environment of its own (empty; reads fall through to the base table, writes are
// refused), and require(name) returns its result as a read-only proxy, the same one to every
// script. require of any other name raises "module 'x' not found (only the stdlib is
// available: ...)". The module tables hold only functions and scalars, so the one proxy makes
// the whole module read-only.
//
// JIT: only the stdlib's functions may be compiled. Vm::load marks every user chunk
// LUAJIT_MODE_ALLFUNC | OFF (its closures, and so coroutines made of them, share those
// prototypes); build_sandbox marks the sandbox's Lua wrappers and LuaJIT's Lua-implemented
// builtins (table.remove, string.len, math.deg/rad) off too. LuaJIT's recorder refuses to enter
// or return into a no-JIT function (LJ_TRERR_CJITOFF), so a trace never holds user code. And
// since every hook call aborts a recording in progress and the budget's call hook fires on
// every call (builtins included), what gets compiled are stdlib loops without calls, bounded by
// their input. A script looping over such calls is still killed on time: the count hook keeps firing
// in its own code, and a loop over a block of 64 KiB or more runs in the hook's fine mode
// (budget.hpp), so the kill comes at most about one stdlib call late.
#pragma once
#include <string_view>

struct lua_State;
typedef int (*lua_CFunction)(lua_State* L);

namespace lg::lua::detail {

inline constexpr const char* kBaseKey = "lg.base";
inline constexpr const char* kGwRealKey = "lg.gw";

// Turns the JIT engine on for the whole state (luaopen_jit: its parameters, then on; if that
// fails, off) or off. Called once, before build_sandbox.
void set_jit_engine(lua_State* L, bool on);
// lua_CFunction to run under lua_cpcall once per state (after set_jit_engine).
int build_sandbox(lua_State* L);
// Replaces the table on top of the stack by a read-only proxy of it (marked protected).
void to_proxy(lua_State* L);
// Adds require to the base table and runs every stdlib module (build_sandbox calls it).
void open_stdlib(lua_State* L);
// Pushes a fresh script environment.
void push_script_env(lua_State* L);
// gw.<dotted_name> = fn, creating read-only intermediate tables. Returns false if a path
// component is already a function.
bool register_gw_function(lua_State* L, std::string_view dotted_name, lua_CFunction fn);

}  // namespace lg::lua::detail
