// The trusted stdlib inside the sandbox (internal to runtime/lua/): the JIT engine switch,
// require(name), and the modules' own environments. See sandbox.hpp for the policy.
#include <lua.hpp>
#include <string>
#include <string_view>

#include "lua/sandbox.hpp"
#include "lua/stdlib.hpp"

namespace lg::lua::detail {
namespace {

constexpr const char* kLoadedKey = "lg.stdlib";  // registry: module name -> its read-only proxy
constexpr std::size_t kMaxNameShown = 64;

// luaopen_jit sets the compiler's parameters (hotloop, maxtrace, ...) and turns it on; without
// it luaJIT_setmode(ENGINE | ON) is refused on x64 (no CPU features detected) and nothing is
// ever compiled. The library stays in the registry's _LOADED only: no global, and nothing a
// script or a stdlib module can reach.
int open_jit(lua_State* L) {
  lua_pushcfunction(L, luaopen_jit);
  lua_pushliteral(L, LUA_JITLIBNAME);
  lua_call(L, 1, 0);
  lua_pushnil(L);
  lua_setfield(L, LUA_GLOBALSINDEX, LUA_JITLIBNAME);
  return 0;
}

const std::string& module_list() {
  static const std::string list = [] {
    std::string s;
    for (const StdlibModule& m : stdlib_modules()) {
      if (!s.empty()) s += ", ";
      s += m.name;
    }
    return s.empty() ? std::string("none") : s;
  }();
  return list;
}

const StdlibModule* find_module(std::string_view name) {
  for (const StdlibModule& m : stdlib_modules())
    if (m.name == name) return &m;
  return nullptr;
}

int module_env_newindex(lua_State* L) {
  const char* k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
  return luaL_error(L, "assignment to global '%s' in a stdlib module (stdlib code keeps its state in locals)", k);
}

// Runs module `m` once and leaves its read-only proxy on the stack, also stored as
// loaded[name] (`loaded` is the index of the registry's table).
void load_module(lua_State* L, int loaded, const StdlibModule& m) {
  lua_pushlstring(L, m.name.data(), m.name.size());
  lua_pushboolean(L, 0);  // "being loaded": a require cycle between modules is an error
  lua_rawset(L, loaded);
  const std::string chunk = "@" + std::string(m.chunkname);
  if (luaL_loadbufferx(L, m.source.data(), m.source.size(), chunk.c_str(), "t") != 0) lua_error(L);
  // Not marked LUAJIT_MODE_OFF (user chunks are, in Vm::load): stdlib functions keep the JIT.
  // Its environment: empty, reads fall through to the safe globals (never to a script's
  // environment), writes are refused, so the module can hold no global state scripts share.
  lua_newtable(L);
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, kBaseKey);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, module_env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setfenv(L, -2);
  lua_pushlstring(L, m.name.data(), m.name.size());
  lua_call(L, 1, 1);
  const int t = lua_gettop(L);
  if (!lua_istable(L, t))
    luaL_error(L, "%s: a stdlib module must return a table (got %s)", chunk.c_str() + 1, luaL_typename(L, t));
  // One level of read-only proxy covers the whole module only if no field is itself mutable.
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    const int kt = lua_type(L, -2), vt = lua_type(L, -1);
    if (kt != LUA_TSTRING || (vt != LUA_TFUNCTION && vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN))
      luaL_error(L, "%s: exported fields must be string keys holding functions, strings, numbers or booleans",
                 chunk.c_str() + 1);
  }
  to_proxy(L);
  lua_pushlstring(L, m.name.data(), m.name.size());
  lua_pushvalue(L, -2);
  lua_rawset(L, loaded);
}

// require(name): the stdlib module's proxy (the same table for every script), or an error.
int require_fn(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typerror(L, 1, "string");
  lua_settop(L, 1);
  std::size_t n = 0;
  const char* s = lua_tolstring(L, 1, &n);
  lua_getfield(L, LUA_REGISTRYINDEX, kLoadedKey);
  lua_pushvalue(L, 1);
  lua_rawget(L, 2);
  if (lua_istable(L, 3)) return 1;
  const bool loading = lua_isboolean(L, 3);
  lua_settop(L, 2);
  const std::string_view name(s, n);
  if (const StdlibModule* m = find_module(name)) {
    // Only while the modules are opened (one requiring another): they are all loaded before
    // any script runs.
    if (loading) return luaL_error(L, "loop requiring stdlib module '%s'", s);
    load_module(L, 2, *m);
    return 1;
  }
  {
    std::string msg = "module '" + std::string(name.substr(0, kMaxNameShown)) + (n > kMaxNameShown ? "..." : "") +
                      "' not found (only the stdlib is available: " + module_list() + ")";
    luaL_where(L, 1);
    lua_pushlstring(L, msg.data(), msg.size());
  }
  lua_concat(L, 2);
  return lua_error(L);
}

}  // namespace

void set_jit_engine(lua_State* L, bool on) {
  if (on) {
    if (lua_cpcall(L, open_jit, nullptr) == 0) return;  // luaopen_jit turned the engine on
    lua_pop(L, 1);  // out of memory: the engine stays off, which is always safe
  }
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
}

void open_stdlib(lua_State* L) {
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, kLoadedKey);
  lua_getfield(L, LUA_REGISTRYINDEX, kBaseKey);
  lua_pushcfunction(L, require_fn);
  lua_setfield(L, -2, "require");
  lua_pop(L, 1);
  // Every module now, outside any budget: ~130 µs and ~19 KB per Vm for the three modules
  // (bench/RESULTS.md), and a script's require is then a table lookup that cannot fail or run
  // module code under the script's budget.
  lua_getfield(L, LUA_REGISTRYINDEX, kLoadedKey);
  const int loaded = lua_gettop(L);
  for (const StdlibModule& m : stdlib_modules()) {
    lua_pushlstring(L, m.name.data(), m.name.size());
    lua_rawget(L, loaded);
    const bool done = lua_istable(L, -1);
    lua_pop(L, 1);
    if (!done) {
      load_module(L, loaded, m);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

}  // namespace lg::lua::detail
