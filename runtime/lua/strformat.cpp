// string.format for the sandbox.
//
// CVE-2024-25176: LuaJIT's lj_strfmt_wfnum (Debian's luajit2 2.1-20230119 lacks the fix) reads
// past its 64-entry digit buffer while stripping trailing zeros for %g with a width, e.g.
// string.format("%7g", 0x1.144399609d407p+401). Here every float conversion with a finite
// argument is formatted by the C library instead, after checking the spec the way LuaJIT does
// (flags "-+ #0", width and precision of at most two digits), and handed to LuaJIT's format as a
// plain "%s" argument. Other conversions go to LuaJIT's format unchanged (it rejects "%100d",
// "%.999f" and unknown options itself). tostring() and `..` on numbers use a width-less %.14g,
// which does not take the faulty branch.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <lua.hpp>
#include <string>
#include <vector>

#include "lua/budget.hpp"
#include "lua/safe_lib.hpp"

namespace lg::lua::detail {
namespace {

bool is_float_conv(char c) { return c && std::strchr("aAeEfgG", c) != nullptr; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct FloatSpec {
  std::size_t start, end;  // [start, end) in the format string, '%' included
  int arg;                 // stack index of its argument
};

}  // namespace

int str_format(lua_State* L) {
  std::size_t fl;
  const char* fmt = luaL_checklstring(L, 1, &fl);
  const int top = lua_gettop(L);
  std::vector<FloatSpec> floats;
  int arg = 1;
  for (std::size_t i = 0; i < fl;) {
    if (fmt[i] != '%') {
      ++i;
      continue;
    }
    if (i + 1 < fl && fmt[i + 1] == '%') {
      i += 2;
      continue;
    }
    const std::size_t start = i++;
    ++arg;
    std::size_t n = 0;
    while (i < fl && fmt[i] && std::strchr("-+ #0", fmt[i])) ++i, ++n;
    bool too_long = n > 5;
    for (n = 0; i < fl && is_digit(fmt[i]); ++i) too_long |= ++n > 2;
    if (i < fl && fmt[i] == '.') {
      ++i;
      for (n = 0; i < fl && is_digit(fmt[i]); ++i) too_long |= ++n > 2;
    }
    if (i >= fl) break;  // LuaJIT reports the truncated option
    const char conv = fmt[i++];
    if (too_long) {  // LuaJIT refuses it too, but here the message gets the script's position
      return luaL_error(L, "invalid option '%s' to 'format'",
                        std::string(fmt + start, std::min<std::size_t>(i - start, 12)).c_str());
    }
    if (!is_float_conv(conv)) continue;
    const lua_Number v = luaL_checknumber(L, arg);
    if (std::isfinite(v)) floats.push_back({start, i, arg});  // inf/nan: LuaJIT's own branch
  }

  CallbackDepth depth(L);  // "%s" calls __tostring metamethods through lua_call
  if (floats.empty()) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, top, 1);
    return 1;
  }
  std::string nfmt;
  nfmt.reserve(fl);
  std::size_t pos = 0;
  for (const FloatSpec& f : floats) {
    nfmt.append(fmt + pos, f.start - pos);
    nfmt.append("%s");
    pos = f.end;
  }
  nfmt.append(fmt + pos, fl - pos);

  luaL_checkstack(L, top + 2, "too many arguments to format");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushlstring(L, nfmt.data(), nfmt.size());
  std::size_t next = 0;
  for (int a = 2; a <= top; ++a) {
    if (next < floats.size() && floats[next].arg == a) {
      const FloatSpec& f = floats[next++];
      char spec[16];
      const std::size_t len = f.end - f.start;  // <= 1 + 5 + 2 + 1 + 2 + 1
      std::memcpy(spec, fmt + f.start, len);
      spec[len] = '\0';
      char buf[512];  // %.99f of 1e308: 309 + 1 + 99 digits
      const int w = std::snprintf(buf, sizeof buf, spec, lua_tonumber(L, a));
      lua_pushlstring(L, buf, w < 0 ? 0 : static_cast<std::size_t>(w) < sizeof buf ? w : sizeof buf - 1);
    } else {
      lua_pushvalue(L, a);
    }
  }
  lua_call(L, top, 1);
  return 1;
}

}  // namespace lg::lua::detail
