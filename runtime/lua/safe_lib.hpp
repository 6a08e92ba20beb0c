// Replacements for the standard library functions whose LuaJIT versions can run unbounded inside
// one C call, recurse on the C stack, or hit a known LuaJIT bug (internal to runtime/lua/).
#pragma once

struct lua_State;

namespace lg::lua::detail {

// strmatch.cpp (on pattern.cpp): Lua 5.1 patterns (plus %f, as LuaJIT) with a step budget that
// polls the CPU deadline and a recursion limit ("pattern too complex"); plain find uses memmem
// (linear); gsub's result is bounded by the memory budget.
int str_find(lua_State* L);
int str_match(lua_State* L);
int str_gmatch(lua_State* L);
int str_gsub(lua_State* L);

// strformat.cpp: string.format. Upvalue 1 is LuaJIT's string.format. Float conversions
// (%a %e %f %g, any case) are formatted with snprintf after validating flags/width/precision
// (at most 2 digits each), so LuaJIT's lj_strfmt_wfnum never sees a width (CVE-2024-25176);
// the rest is passed to LuaJIT's format. Nested __tostring calls are bounded (CallbackDepth).
int str_format(lua_State* L);

// safe_table.cpp
int tab_insert(lua_State* L);    // LuaJIT semantics, polls the deadline while shifting
int tab_sort(lua_State* L);      // upvalue 1: LuaJIT's table.sort; C comparators counted
int checked_call(lua_State* L);  // upvalue 1: a C function; calls it, then checks the deadline

// Registry key of the weak set of protected tables (read-only proxies, environments).
inline constexpr const char* kProtectedKey = "lg.protected";
// Raises an error if the table at `idx` is protected.
void refuse_protected(lua_State* L, int idx, const char* what);

}  // namespace lg::lua::detail
