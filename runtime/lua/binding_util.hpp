// Helpers shared by the gw binding files (internal to runtime/lua/): the running request, checked
// arguments, phase checks. Misuse raises a Lua error.
#pragma once
extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <string_view>

#include "http/message.hpp"
#include "lua/script_host.hpp"

namespace lg::lua {

// The running request. At a script's top level (while it loads) there is none: an error.
inline ScriptHost& host(lua_State* L) {
  auto* h = static_cast<ScriptHost*>(Vm::current_request(L));
  if (!h) luaL_error(L, "this gw function needs a request: call it inside a phase handler, not at load time");
  return *h;
}

inline std::string_view arg_string(lua_State* L, int i) {
  std::size_t n = 0;
  const char* s = luaL_checklstring(L, i, &n);
  return {s, n};
}

inline void push(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }

// Raises unless the running phase is one of `allowed` (bits of Phase).
inline void require_phase(lua_State* L, const char* fn, unsigned allowed) {
  const Phase p = host(L).phase();
  if (!(allowed & (1u << static_cast<unsigned>(p))))
    luaL_error(L, "%s: not allowed in the %s phase", fn, phase_name(p));
}
constexpr unsigned kBeforeUpstream = phase_bit(Phase::rewrite) | phase_bit(Phase::access);

inline bool valid_name(std::string_view n) { return n.size() <= 256 && http::detail::is_token(n); }

inline bool valid_value(std::string_view v) {
  return v.size() <= 8192 && http::detail::valid_field_value(v.data(), v.data() + v.size());
}

inline std::string_view checked_name(lua_State* L, int i, const char* fn) {
  std::string_view n = arg_string(L, i);
  if (!valid_name(n)) luaL_error(L, "%s: invalid header name", fn);
  return n;
}

inline std::string_view checked_value(lua_State* L, int i, const char* fn) {
  // Numbers are accepted like strings; anything else is a misuse.
  if (!lua_isstring(L, i)) luaL_error(L, "%s: header value must be a string", fn);
  std::string_view v = arg_string(L, i);
  if (!valid_value(v)) luaL_error(L, "%s: header value contains control characters or is too long", fn);
  return v;
}

}  // namespace lg::lua
