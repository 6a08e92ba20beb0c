#include "lua/response.hpp"

#include <cmath>
#include <cstring>
#include <lua.hpp>

namespace lg::lua {
namespace {

bool is_tchar(unsigned char c) {
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// A string or a number at idx, as text (numbers formatted without touching the stack slot).
bool scalar_text(lua_State* L, int idx, std::string& out) {
  const int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) return false;
  lua_pushvalue(L, idx);
  std::size_t n;
  const char* s = lua_tolstring(L, -1, &n);
  out.assign(s, n);
  lua_pop(L, 1);
  return true;
}

bool add_header(std::string_view name, std::string value,
                std::vector<std::pair<std::string, std::string>>& out, std::string& err) {
  if (!valid_header_value(value)) {
    err = "invalid value for response header '" + std::string(name) + "'";
    return false;
  }
  if (out.size() >= kMaxScriptHeaders) {
    err = "too many response headers";
    return false;
  }
  out.emplace_back(std::string(name), std::move(value));
  return true;
}

}  // namespace

bool valid_status(double status) {
  return std::isfinite(status) && status == std::floor(status) && status >= 100 && status <= 599;
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!is_tchar(c)) return false;
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

bool read_status(lua_State* L, int idx, int& out, std::string& err) {
  if (lua_type(L, idx) != LUA_TNUMBER || !valid_status(lua_tonumber(L, idx))) {
    err = "response status must be an integer in 100..599";
    return false;
  }
  out = static_cast<int>(lua_tonumber(L, idx));
  return true;
}

bool read_headers(lua_State* L, int idx, std::vector<std::pair<std::string, std::string>>& out,
                  std::string& err) {
  idx = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  if (lua_isnoneornil(L, idx)) return true;
  if (!lua_istable(L, idx)) {
    err = "response headers must be a table";
    return false;
  }
  lua_checkstack(L, 4);
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {  // raw traversal
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      err = "response header names must be strings";
      return false;
    }
    std::size_t nl;
    const char* np = lua_tolstring(L, -2, &nl);
    const std::string_view name(np, nl);
    if (!valid_header_name(name)) {
      lua_pop(L, 2);
      err = "invalid response header name";
      return false;
    }
    std::string value;
    bool ok = true;
    if (scalar_text(L, -1, value)) {
      ok = add_header(name, std::move(value), out, err);
    } else if (lua_istable(L, -1)) {
      const int n = static_cast<int>(lua_objlen(L, -1));
      for (int i = 1; ok && i <= n; ++i) {
        lua_rawgeti(L, -1, i);
        ok = scalar_text(L, -1, value) ? add_header(name, std::move(value), out, err)
                                       : (err = "response header values must be strings", false);
        lua_pop(L, 1);
      }
    } else {
      ok = false;
      err = "response header values must be strings";
    }
    if (!ok) {
      lua_pop(L, 2);
      return false;
    }
  }
  return true;
}

bool read_body(lua_State* L, int idx, std::string& out, std::string& err) {
  if (lua_isnoneornil(L, idx)) {
    out.clear();
    return true;
  }
  if (lua_type(L, idx) != LUA_TSTRING) {
    err = "response body must be a string";
    return false;
  }
  std::size_t n;
  const char* s = lua_tolstring(L, idx, &n);
  if (n > kMaxScriptBody) {
    err = "response body larger than " + std::to_string(kMaxScriptBody) + " bytes";
    return false;
  }
  out.assign(s, n);
  return true;
}

bool read_response(lua_State* L, int idx, ScriptResponse& out, std::string& err) {
  idx = idx > 0 ? idx : lua_gettop(L) + idx + 1;
  if (!lua_istable(L, idx)) {
    err = "the script did not return a response table";
    return false;
  }
  lua_checkstack(L, 2);
  const auto field = [&](const char* k) {
    lua_pushstring(L, k);
    lua_rawget(L, idx);
  };
  field("status");
  bool ok = read_status(L, -1, out.status, err);
  lua_pop(L, 1);
  if (!ok) return false;
  field("headers");
  ok = read_headers(L, -1, out.headers, err);
  lua_pop(L, 1);
  if (!ok) return false;
  field("body");
  ok = read_body(L, -1, out.body, err);
  lua_pop(L, 1);
  return ok;
}

}  // namespace lg::lua
