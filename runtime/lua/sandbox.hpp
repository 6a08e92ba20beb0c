// The environment user scripts see (internal to runtime/lua/).
//
// One shared base table (never reachable from scripts) holds the allowed globals:
//   assert error ipairs next pairs rawequal rawget select setmetatable getmetatable tonumber
//   tostring type unpack _VERSION, pcall/xpcall/rawset (wrapped), and read-only proxies of
//   string, table, math (no randomseed), os (time, clock), bit, coroutine (wrapped) and gw.
// Absent: io, os.*, ffi, debug, jit, package/require/module, load/loadstring/loadfile/dofile,
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
#pragma once
#include <string_view>

struct lua_State;
typedef int (*lua_CFunction)(lua_State* L);

namespace lg::lua::detail {

inline constexpr const char* kBaseKey = "lg.base";
inline constexpr const char* kGwRealKey = "lg.gw";

// lua_CFunction to run under lua_cpcall once per state (JIT engine already off).
int build_sandbox(lua_State* L);
// Pushes a fresh script environment.
void push_script_env(lua_State* L);
// gw.<dotted_name> = fn, creating read-only intermediate tables. Returns false if a path
// component is already a function.
bool register_gw_function(lua_State* L, std::string_view dotted_name, lua_CFunction fn);

}  // namespace lg::lua::detail
