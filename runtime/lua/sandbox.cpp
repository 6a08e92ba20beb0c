#include "lua/sandbox.hpp"

#include <lua.hpp>
#include <cstring>
#include <string>

#include "lua/budget.hpp"
#include "lua/safe_lib.hpp"

namespace lg::lua::detail {
namespace {

// Trusted wrappers, compiled once with an empty environment; everything they use is an upvalue.
// - pcall/xpcall/coroutine.resume/coroutine.wrap re-raise a kill as soon as they return, so a
//   script cannot keep running after its budget by catching the kill (the hook would also raise
//   it again on the next instruction).
// - xpcall runs the message handler after the failed call has unwound, as an ordinary call.
//   LuaJIT mishandles a message handler that itself overflows the stack while a stack overflow
//   is being handled: it returns a value read out of bounds (CVE-2024-25178, LuaJIT#1152).
//   The handler therefore sees the error object but cannot inspect the failed frames (debug is
//   not available to scripts anyway).
// - coroutine.yield refuses to suspend the handler's own coroutine: only the gateway's async
//   calls may suspend a request, and coroutine.running() returns nil there (the handler's
//   coroutine is never handed to a script).
constexpr const char kWrappers[] = R"lua(
local pcall, type, error, check, is_root, co_resume, co_wrap, co_yield, co_running, cstack = ...
local function pass(...) check() return ... end
local function safe_pcall(f, ...) return pass(pcall(f, ...)) end
local function finish_x(handler, ok, ...)
  check()
  if ok then return true, ... end
  local _, r = pcall(handler, (...))
  check()
  return false, r
end
local function safe_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
  end
  return finish_x(handler, pcall(f, ...))
end
-- A resume nests C frames (lj_vm_resume): cstack() refuses one past the run's C-stack floor.
local function safe_resume(co, ...) cstack() return pass(co_resume(co, ...)) end
local function safe_wrap(f)
  local g = co_wrap(f)
  return function(...) cstack() return pass(g(...)) end
end
local function safe_yield(...)
  if is_root() then
    error("attempt to yield from a request handler (only gateway calls may suspend it)", 2)
  end
  return co_yield(...)
end
-- The handler's own coroutine is the gateway's: a script that got hold of it could resume it
-- while it waits in a gateway call (from another request). Like Lua 5.1's main thread, it is nil.
local function safe_running()
  if is_root() then return nil end
  return co_running()
end
return safe_pcall, safe_xpcall, safe_resume, safe_wrap, safe_yield, safe_running
)lua";

int readonly_newindex(lua_State* L) {
  const char* k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
  return luaL_error(L, "attempt to modify a read-only table (field '%s')", k);
}

int env_newindex(lua_State* L) {
  Governor* g = Governor::of(L);
  if (g && g->run() && g->run()->mode == Mode::load) {
    lua_settop(L, 3);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
  }
  const char* k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
  return luaL_error(L,
                    "assignment to global '%s' in a request handler (globals are read-only once "
                    "the script is loaded: use a local, or gw.ctx)",
                    k);
}

int check_fn(lua_State* L) {
  check_killed(L);
  return 0;
}

int cstack_fn(lua_State* L) {
  check_c_stack(L);
  return 0;
}

// os.time(t) reads t's fields with lua_getfield: an __index function runs as a C->Lua nesting.
int safe_os_time(lua_State* L) {
  check_c_stack(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int is_root_fn(lua_State* L) {
  Governor* g = Governor::of(L);
  lua_pushboolean(L, g && g->run() && g->run()->root == L);
  return 1;
}

int safe_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  refuse_protected(L, 1, "rawset");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

void mark_protected(lua_State* L, int idx) {
  idx = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, kProtectedKey);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

// base[name] = a read-only proxy of a copy of G[name], without the field `skip`.
void copy_library(lua_State* L, int G, int base, const char* name, const char* skip) {
  lua_getfield(L, G, name);
  const int real = lua_gettop(L);
  lua_newtable(L);
  for (lua_pushnil(L); lua_next(L, real); lua_pop(L, 1)) {
    if (skip && lua_type(L, -2) == LUA_TSTRING && std::strcmp(lua_tostring(L, -2), skip) == 0) continue;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, real + 1);
  }
  to_proxy(L);
  lua_setfield(L, base, name);
  lua_settop(L, real - 1);
}

void copy_field(lua_State* L, int from, int to, const char* name) {
  lua_getfield(L, from, name);
  lua_setfield(L, to, name);
}

void set_fn(lua_State* L, int to, const char* name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, to, name);
}

// t[name] = closure(f, upvalue = from[name]).
void set_wrapped(lua_State* L, int from, int to, const char* name, lua_CFunction f) {
  lua_getfield(L, from, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, to, name);
}

// Marks every Lua function of the table at `t` no-JIT. LuaJIT implements a few builtins in Lua
// (table.remove, string.len, math.deg/rad); with the engine on they would otherwise be compiled
// when hot, and table.remove's loop over the array would then run without hook events.
void jit_off_lua_functions(lua_State* L, int t) {
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
    if (lua_isfunction(L, -1) && !lua_iscfunction(L, -1)) luaJIT_setmode(L, -1, LUAJIT_MODE_FUNC | LUAJIT_MODE_OFF);
}

}  // namespace

void to_proxy(lua_State* L) {
  lua_newtable(L);                  // real proxy
  lua_newtable(L);                  // real proxy mt
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, readonly_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);          // real proxy
  lua_remove(L, -2);                // proxy
  mark_protected(L, -1);
}

int build_sandbox(lua_State* L) {
  const luaL_Reg libs[] = {{"", luaopen_base},           {LUA_TABLIBNAME, luaopen_table},
                           {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                           {LUA_OSLIBNAME, luaopen_os},    {LUA_BITLIBNAME, luaopen_bit}};
  for (const luaL_Reg& lib : libs) {  // never io, debug, package, jit, ffi
    lua_pushcfunction(L, lib.func);
    lua_pushstring(L, lib.name);
    lua_call(L, 1, 0);
  }
  lua_newtable(L);  // the weak set of protected tables
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kProtectedKey);
  // Kill messages, interned once: raise_kill pushes them without allocating.
  lua_pushliteral(L, "cpu budget exceeded");
  lua_setfield(L, LUA_REGISTRYINDEX, "lg.msg.cpu");
  lua_pushliteral(L, "memory budget exceeded");
  lua_setfield(L, LUA_REGISTRYINDEX, "lg.msg.mem");

  const int G = LUA_GLOBALSINDEX;
  jit_off_lua_functions(L, G);
  for (const char* lib : {"string", "table", "math", "os", "bit", "coroutine"}) {
    lua_getfield(L, G, lib);
    jit_off_lua_functions(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  lua_newtable(L);
  const int base = lua_gettop(L);
  for (const char* name : {"assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "select",
                           "setmetatable", "getmetatable", "tonumber", "tostring", "type", "unpack",
                           "_VERSION"})
    copy_field(L, G, base, name);
  set_fn(L, base, "rawset", safe_rawset);

  // string: the safe table is also the __index of the string metatable.
  lua_getfield(L, G, "string");
  const int rstring = lua_gettop(L);
  lua_newtable(L);
  const int str = lua_gettop(L);
  for (const char* name : {"byte", "char", "len", "lower", "upper", "rep", "reverse", "sub"})
    copy_field(L, rstring, str, name);
  set_fn(L, str, "find", str_find);
  set_fn(L, str, "match", str_match);
  set_fn(L, str, "gmatch", str_gmatch);
  set_fn(L, str, "gsub", str_gsub);
  set_wrapped(L, rstring, str, "format", str_format);
  mark_protected(L, str);  // unreachable by scripts anyway (see below): belt and braces
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, str);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  lua_pushvalue(L, str);
  to_proxy(L);
  lua_setfield(L, base, "string");
  lua_settop(L, base);

  lua_getfield(L, G, "table");
  const int rtable = lua_gettop(L);
  lua_newtable(L);
  const int tab = lua_gettop(L);
  set_wrapped(L, rtable, tab, "concat", checked_call);
  set_wrapped(L, rtable, tab, "maxn", checked_call);
  set_fn(L, tab, "insert", tab_insert);
  copy_field(L, rtable, tab, "remove");
  set_wrapped(L, rtable, tab, "sort", tab_sort);
  to_proxy(L);
  lua_setfield(L, base, "table");
  lua_settop(L, base);

  // math without randomseed (a shared generator's seed is not a script's to set), and bit.
  copy_library(L, G, base, "math", "randomseed");
  copy_library(L, G, base, "bit", nullptr);

  lua_getfield(L, G, "os");
  lua_newtable(L);
  lua_getfield(L, base + 1, "time");
  lua_pushcclosure(L, safe_os_time, 1);
  lua_setfield(L, base + 2, "time");
  copy_field(L, base + 1, base + 2, "clock");
  to_proxy(L);
  lua_setfield(L, base, "os");
  lua_settop(L, base);

  lua_getfield(L, G, "coroutine");
  const int rco = lua_gettop(L);
  lua_newtable(L);
  const int co = lua_gettop(L);
  for (const char* name : {"create", "status", "isyieldable"}) copy_field(L, rco, co, name);
  if (luaL_loadbuffer(L, kWrappers, sizeof kWrappers - 1, "=lunagate.sandbox") != 0) return lua_error(L);
  luaJIT_setmode(L, -1, LUAJIT_MODE_ALLFUNC | LUAJIT_MODE_OFF);  // they call user functions
  lua_newtable(L);
  lua_setfenv(L, -2);
  lua_getfield(L, G, "pcall");
  lua_getfield(L, G, "type");
  lua_getfield(L, G, "error");
  lua_pushcfunction(L, check_fn);
  lua_pushcfunction(L, is_root_fn);
  lua_getfield(L, rco, "resume");
  lua_getfield(L, rco, "wrap");
  lua_getfield(L, rco, "yield");
  lua_getfield(L, rco, "running");
  lua_pushcfunction(L, cstack_fn);
  lua_call(L, 10, 6);
  lua_setfield(L, co, "running");
  lua_setfield(L, co, "yield");
  lua_setfield(L, co, "wrap");
  lua_setfield(L, co, "resume");
  lua_setfield(L, base, "xpcall");
  lua_setfield(L, base, "pcall");
  lua_pushvalue(L, co);
  to_proxy(L);
  lua_setfield(L, base, "coroutine");
  lua_settop(L, base);

  lua_newtable(L);  // gw: filled by register_gw_function
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, kGwRealKey);
  to_proxy(L);
  lua_setfield(L, base, "gw");

  lua_setfield(L, LUA_REGISTRYINDEX, kBaseKey);
  open_stdlib(L);
  return 0;
}

void push_script_env(lua_State* L) {
  lua_newtable(L);  // storage: the script's load-time globals
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, kBaseKey);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_newtable(L);  // the environment itself: always empty
  lua_newtable(L);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -3);
  lua_pushcclosure(L, env_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "_G");
  mark_protected(L, -1);
  lua_remove(L, -2);
}

bool register_gw_function(lua_State* L, std::string_view dotted, lua_CFunction fn) {
  const int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, kGwRealKey);  // the current real node
  std::size_t pos = 0;
  for (std::size_t dot; (dot = dotted.find('.', pos)) != std::string_view::npos; pos = dot + 1) {
    const std::string_view part = dotted.substr(pos, dot - pos);
    lua_pushlstring(L, part.data(), part.size());
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_newtable(L);            // node child
      lua_pushvalue(L, -1);
      to_proxy(L);                // node child proxy
      lua_pushlstring(L, part.data(), part.size());
      lua_insert(L, -2);
      lua_rawset(L, -4);          // node child
    } else if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
      lua_getfield(L, -1, "__index");  // node proxy mt child
      lua_replace(L, -3);
      lua_pop(L, 1);              // node child
    } else {
      lua_settop(L, top);
      return false;
    }
    lua_remove(L, -2);
  }
  const std::string_view last = dotted.substr(pos);
  lua_pushlstring(L, last.data(), last.size());
  lua_pushcfunction(L, fn);
  lua_rawset(L, -3);
  lua_settop(L, top);
  return true;
}

}  // namespace lg::lua::detail
