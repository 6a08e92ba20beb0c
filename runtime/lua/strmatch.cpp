// string.find, match, gmatch and gsub for the sandbox, on the bounded matcher of pattern.cpp.
// gsub builds its result on the heap (LuaJIT's luaL_Buffer puts 8 KiB on the C stack per nested
// gsub) and bounds it by the run's memory budget; callbacks (function or table replacements) are
// counted by CallbackDepth.
#include <cstring>
#include <lua.hpp>
#include <string>

#include "lua/budget.hpp"
#include "lua/pattern.hpp"
#include "lua/safe_lib.hpp"

namespace lg::lua::detail {
namespace {

using pattern::MatchState;

constexpr char kEsc = '%';

int find_aux(lua_State* L, bool find) {
  std::size_t ls, lp;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  lua_Integer start = luaL_optinteger(L, 3, 1);
  if (start < 0) start += static_cast<lua_Integer>(ls);
  else start--;
  if (start < 0) start = 0;
  if (static_cast<std::size_t>(start) > ls) start = static_cast<lua_Integer>(ls);  // LuaJIT (5.1)
  const auto st = static_cast<std::size_t>(start);
  if (find && (lua_toboolean(L, 4) || !pattern::has_specials(p, lp))) {  // plain search
    const void* q = memmem(s + st, ls - st, p, lp);
    if (ls - st > kClockCheckAlloc) check_deadline(L);
    if (q) {
      const auto pos = static_cast<const char*>(q) - s;
      lua_pushinteger(L, pos + 1);
      lua_pushinteger(L, pos + static_cast<lua_Integer>(lp));
      return 2;
    }
  } else {
    MatchState ms;
    const char* src = s + st;
    const bool anchor = lp > 0 && *p == '^';
    if (anchor) {
      p++;
      lp--;
    }
    pattern::init(ms, L, s, ls, p, lp);
    do {
      pattern::reset(ms);
      if (const char* e = pattern::match(&ms, src, p)) {
        if (find) {
          lua_pushinteger(L, src - s + 1);
          lua_pushinteger(L, e - s);
          return pattern::push_captures(&ms, nullptr, nullptr) + 2;
        }
        return pattern::push_captures(&ms, src, e);
      }
    } while (src++ < ms.src_end && !anchor);
  }
  lua_pushnil(L);
  return 1;
}

int gmatch_aux(lua_State* L) {
  std::size_t ls, lp;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  MatchState ms;
  pattern::init(ms, L, s, ls, p, lp);
  for (const char* src = s + static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(3)));
       src <= ms.src_end; src++) {
    pattern::reset(ms);
    if (const char* e = pattern::match(&ms, src, p)) {
      lua_Integer newstart = e - s;
      if (e == src) newstart++;  // empty match: go at least one position
      lua_pushinteger(L, newstart);
      lua_replace(L, lua_upvalueindex(3));
      return pattern::push_captures(&ms, src, e);
    }
  }
  return 0;
}

void add_s(MatchState* ms, std::string& b, const char* s, const char* e) {
  std::size_t l;
  const char* news = lua_tolstring(ms->L, 3, &l);
  for (std::size_t i = 0; i < l; i++) {
    if (news[i] != kEsc) {
      b.push_back(news[i]);
      continue;
    }
    i++;  // skip the escape; news[l] is the string's terminating NUL (as LuaJIT)
    pattern::step(ms);
    if (!pattern::is_digit(static_cast<unsigned char>(news[i]))) {
      b.push_back(news[i]);
    } else if (news[i] == '0') {
      b.append(s, static_cast<std::size_t>(e - s));
      check_buffer(ms->L, b.size());
    } else {
      pattern::push_onecapture(ms, news[i] - '1', s, e);
      std::size_t cl;
      const char* c = lua_tolstring(ms->L, -1, &cl);
      b.append(c, cl);
      lua_pop(ms->L, 1);
      check_buffer(ms->L, b.size());
    }
  }
}

void add_value(MatchState* ms, std::string& b, const char* s, const char* e) {
  lua_State* L = ms->L;
  switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
      add_s(ms, b, s, e);
      return;
    case LUA_TFUNCTION: {
      CallbackDepth depth(L);
      lua_pushvalue(L, 3);
      const int n = pattern::push_captures(ms, s, e);
      lua_call(L, n, 1);
      break;
    }
    case LUA_TTABLE: {
      CallbackDepth depth(L);  // __index may be a Lua function
      pattern::push_onecapture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
    }
    default:
      break;
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
    lua_pop(L, 1);
    b.append(s, static_cast<std::size_t>(e - s));
    return;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  std::size_t rl;
  const char* r = lua_tolstring(L, -1, &rl);
  b.append(r, rl);
  lua_pop(L, 1);
}

}  // namespace

int str_find(lua_State* L) { return find_aux(L, true); }
int str_match(lua_State* L) { return find_aux(L, false); }

int str_gmatch(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, gmatch_aux, 3);
  return 1;
}

int str_gsub(lua_State* L) {
  std::size_t srcl, lp;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  const int tr = lua_type(L, 3);
  const lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                "string/function/table expected");
  const bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  MatchState ms;
  pattern::init(ms, L, src, srcl, p, lp);
  std::string b;  // on the heap: LuaJIT's luaL_Buffer puts 8 KiB on the C stack per nested gsub
  lua_Integer n = 0;
  while (n < max_s) {
    pattern::reset(ms);
    const char* e = pattern::match(&ms, src, p);
    if (e) {
      n++;
      add_value(&ms, b, src, e);
      check_buffer(L, b.size());
    }
    if (e && e > src) src = e;
    else if (src < ms.src_end) b.push_back(*src++);
    else break;
    if (anchor) break;
    pattern::step(&ms);
  }
  b.append(src, static_cast<std::size_t>(ms.src_end - src));
  check_buffer(L, b.size());
  lua_pushlstring(L, b.data(), b.size());
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace lg::lua::detail
