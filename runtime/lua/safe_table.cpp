// Table library pieces for the sandbox: the C functions of LuaJIT's table library run without
// any hook, so each one here either polls the CPU deadline while it works or checks it when it
// returns. table.remove is Lua code in LuaJIT 2.1 (hooks fire) and is used unchanged.
#include <algorithm>
#include <climits>
#include <lua.hpp>

#include "lua/budget.hpp"
#include "lua/safe_lib.hpp"

namespace lg::lua::detail {

void refuse_protected(lua_State* L, int idx, const char* what) {
  idx = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, kProtectedKey);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  const bool prot = lua_toboolean(L, -1);
  lua_pop(L, 2);
  if (prot) luaL_error(L, "%s: attempt to modify a read-only table", what);
}

// LuaJIT's table.insert, but it cannot be pointed at a protected table and it polls the
// deadline while shifting (table.insert(t, -1e9, v) would otherwise loop 1e9 times in C).
int tab_insert(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  refuse_protected(L, 1, "table.insert");
  auto e = static_cast<lua_Integer>(lua_objlen(L, 1)) + 1;
  switch (lua_gettop(L)) {
    case 2:
      break;
    case 3: {
      // LuaJIT converts the position to an int32 and does not check it: same here (clamped).
      const lua_Integer pos = std::clamp<lua_Integer>(luaL_checkinteger(L, 2), INT_MIN, INT_MAX);
      for (; e > pos; --e) {  // move up elements (raw, as LuaJIT)
        lua_rawgeti(L, 1, static_cast<int>(e - 1));
        lua_rawseti(L, 1, static_cast<int>(e));
        poll(L);
      }
      break;
    }
    default:
      return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_rawseti(L, 1, static_cast<int>(e));  // the value is on top
  return 0;
}

namespace {

// Comparator used when sorting big arrays with the default order, or with a C function as the
// comparator: no Lua code runs then, so no hook would fire during a long sort.
int counted_less(lua_State* L) {
  poll(L);
  if (lua_isnil(L, lua_upvalueindex(1))) {
    lua_pushboolean(L, lua_lessthan(L, 1, 2));
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

}  // namespace

int tab_sort(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  if ((lua_isnil(L, 2) && lua_objlen(L, 1) > 1024) || lua_iscfunction(L, 2)) {
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, counted_less, 1);
    lua_replace(L, 2);
  }
  CallbackDepth depth(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 0);
  return 0;
}

int checked_call(lua_State* L) {
  const int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  check_deadline(L);
  return lua_gettop(L);
}

}  // namespace lg::lua::detail
