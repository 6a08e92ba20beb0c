// gw.json: an encoder for script values and a strict RFC 8259 decoder (see docs/scripting.md).
// Both are bounded: 4 MiB of text, 64 levels of nesting. The decoder reads only [0, size) of
// its input and reports the first error as "invalid JSON at byte N: reason" (N 1-based).
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "core/json_escape.hpp"
#include "lua/lib_bindings.hpp"
#include "core/utf8.hpp"

namespace lg::lua::detail {
namespace {

constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxText = 4u << 20;
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

// ---- encode -------------------------------------------------------------------------------

struct Encoder {
  lua_State* L;
  std::string out;
  const void* path[kMaxDepth] = {};  // the tables being encoded, outermost first (cycle check)
  int depth = 0;

  [[noreturn]] void fail(const char* what) {
    luaL_error(L, "gw.json.encode: %s", what);
    __builtin_unreachable();
  }

  void number(lua_Number n) {
    if (!std::isfinite(n)) fail("cannot encode NaN or infinity");
    char buf[40];
    std::to_chars_result r;
    if (n == std::floor(n) && std::fabs(n) < kMaxExactInt)
      r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(n));
    else
      r = std::to_chars(buf, buf + sizeof buf, n);  // shortest form that reads back exactly
    out.append(buf, r.ptr);
  }

  void string(int idx) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, idx, &n);
    out.push_back('"');
    json_escape_append(out, {s, n});
    out.push_back('"');
  }

  void value(int idx) {
    if (out.size() > kMaxText) fail("result larger than 4 MiB");
    switch (lua_type(L, idx)) {
      case LUA_TNIL: out += "null"; break;
      case LUA_TBOOLEAN: out += lua_toboolean(L, idx) ? "true" : "false"; break;
      case LUA_TNUMBER: number(lua_tonumber(L, idx)); break;
      case LUA_TSTRING: string(idx); break;
      case LUA_TTABLE: table(idx); break;
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == nullptr) {  // gw.json.null
          out += "null";
          break;
        }
        [[fallthrough]];
      default: luaL_error(L, "gw.json.encode: cannot encode a %s", luaL_typename(L, idx));
    }
  }

  // Keys exactly 1..n: an array; only string keys: an object (also the empty table); else an error.
  void table(int idx) {
    if (depth >= kMaxDepth) fail("nesting deeper than 64 levels");
    const void* self = lua_topointer(L, idx);
    for (int i = 0; i < depth; ++i)
      if (path[i] == self) fail("table contains a cycle");
    path[depth++] = self;
    luaL_checkstack(L, 4, "gw.json.encode: nesting");
    std::size_t count = 0, ints = 0;
    lua_Number max_key = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      ++count;
      if (lua_type(L, -2) == LUA_TNUMBER) {
        const lua_Number k = lua_tonumber(L, -2);
        if (!(k >= 1 && k == std::floor(k) && k <= kMaxExactInt)) fail("table keys must be strings or 1..n");
        ++ints;
        if (k > max_key) max_key = k;
      } else if (lua_type(L, -2) != LUA_TSTRING) {
        fail("table keys must be strings or 1..n");
      }
      lua_pop(L, 1);
    }
    if (ints > 0 && ints != count) fail("table mixes string and integer keys");
    if (ints > 0) {
      if (max_key != static_cast<lua_Number>(count)) fail("sparse array (keys are not exactly 1..n)");
      out.push_back('[');
      for (std::size_t i = 1; i <= count; ++i) {
        if (i > 1) out.push_back(',');
        lua_rawgeti(L, idx, static_cast<int>(i));
        value(lua_gettop(L));
        lua_pop(L, 1);
      }
      out.push_back(']');
    } else {
      out.push_back('{');
      bool first = true;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (!first) out.push_back(',');
        first = false;
        string(-2);
        out.push_back(':');
        value(lua_gettop(L));
        lua_pop(L, 1);
      }
      out.push_back('}');
    }
    --depth;
  }
};

// ---- decode -------------------------------------------------------------------------------


bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct Decoder {
  lua_State* L;
  const char* p;
  std::size_t n;
  std::size_t i = 0;
  int depth = 0;
  const char* err = nullptr;
  std::size_t err_at = 0;
  std::string buf;  // scratch for strings with escapes

  bool fail(const char* what) { return fail_at(i, what); }
  bool fail_at(std::size_t at, const char* what) {
    err = what;
    err_at = at;
    return false;
  }
  void ws() {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) ++i;
  }
  bool literal(std::string_view word) {
    if (n - i < word.size() || std::memcmp(p + i, word.data(), word.size()) != 0) return fail("invalid literal");
    i += word.size();
    return true;
  }

  bool value() {
    ws();
    if (i >= n) return fail("unexpected end of input");
    switch (p[i]) {
      case '{': return object();
      case '[': return array();
      case '"': return string();
      case 't': if (!literal("true")) return false; lua_pushboolean(L, 1); return true;
      case 'f': if (!literal("false")) return false; lua_pushboolean(L, 0); return true;
      case 'n': if (!literal("null")) return false; lua_pushlightuserdata(L, nullptr); return true;
      default:
        if (p[i] == '-' || is_digit(p[i])) return number();
        return fail("unexpected character");
    }
  }

  bool enter() {
    if (++depth > kMaxDepth) return fail("nesting deeper than 64 levels");
    luaL_checkstack(L, 4, "gw.json.decode: nesting");
    ++i;
    lua_newtable(L);
    ws();
    return true;
  }

  bool array() {
    if (!enter()) return false;
    if (i < n && p[i] == ']') return ++i, --depth, true;
    for (int k = 1;; ++k) {
      if (!value()) return false;
      lua_rawseti(L, -2, k);
      ws();
      if (i >= n) return fail("unexpected end of input");
      if (p[i] == ']') return ++i, --depth, true;
      if (p[i] != ',') return fail("expected ',' or ']'");
      ++i;
    }
  }

  bool object() {
    if (!enter()) return false;
    if (i < n && p[i] == '}') return ++i, --depth, true;
    for (;;) {
      ws();
      if (i >= n) return fail("unexpected end of input");
      if (p[i] != '"') return fail("expected a string key");
      const std::size_t key_at = i;
      if (!string()) return false;
      lua_pushvalue(L, -1);
      lua_rawget(L, -3);
      if (!lua_isnil(L, -1)) return fail_at(key_at, "duplicate object key");
      lua_pop(L, 1);
      ws();
      if (i >= n) return fail("unexpected end of input");
      if (p[i] != ':') return fail("expected ':'");
      ++i;
      if (!value()) return false;
      lua_rawset(L, -3);
      ws();
      if (i >= n) return fail("unexpected end of input");
      if (p[i] == '}') return ++i, --depth, true;
      if (p[i] != ',') return fail("expected ',' or '}'");
      ++i;
    }
  }

  // Four hex digits at p[at..at+4) (bounds checked), or -1.
  long hex4(std::size_t at) const {
    if (at > n || n - at < 4) return -1;
    long v = 0;
    for (std::size_t k = at; k < at + 4; ++k) {
      const char c = p[k];
      const int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }

  bool string() {
    ++i;  // the opening quote
    buf.clear();
    for (;;) {
      const std::size_t run = i;  // bytes copied as they are
      while (i < n) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        if (c < 0x80) {
          ++i;
        } else if (const std::size_t len = utf8::sequence_length(reinterpret_cast<const unsigned char*>(p + i), n - i)) {
          i += len;
        } else {
          return fail("invalid UTF-8 in string");
        }
      }
      buf.append(p + run, i - run);
      if (i >= n) return fail("unterminated string");
      const char c = p[i];
      if (c == '"') break;
      if (c != '\\') return fail("control character in string");
      if (i + 1 >= n) return fail("unterminated string");
      const std::size_t esc_at = i;
      switch (p[i + 1]) {
        case '"': buf.push_back('"'); break;
        case '\\': buf.push_back('\\'); break;
        case '/': buf.push_back('/'); break;
        case 'b': buf.push_back('\b'); break;
        case 'f': buf.push_back('\f'); break;
        case 'n': buf.push_back('\n'); break;
        case 'r': buf.push_back('\r'); break;
        case 't': buf.push_back('\t'); break;
        case 'u': {
          long cp = hex4(i + 2);
          if (cp < 0) return fail("invalid \\u escape");
          i += 4;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(esc_at, "unpaired surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            const long lo = (i + 3 < n && p[i + 2] == '\\' && p[i + 3] == 'u') ? hex4(i + 4) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail_at(esc_at, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
          utf8::append(buf, static_cast<std::uint32_t>(cp));
          break;
        }
        default: return fail("invalid escape");
      }
      i += 2;
    }
    ++i;  // the closing quote
    lua_pushlstring(L, buf.data(), buf.size());
    return true;
  }

  bool number() {
    const std::size_t start = i;
    if (p[i] == '-') ++i;
    if (i >= n || !is_digit(p[i])) return fail("invalid number");
    const std::size_t int_at = i;
    if (p[i] == '0') ++i;
    else while (i < n && is_digit(p[i])) ++i;
    const std::size_t int_len = i - int_at;
    std::size_t frac_zeros = 0;
    if (i < n && p[i] == '.') {
      ++i;
      if (i >= n || !is_digit(p[i])) return fail("invalid number");
      const std::size_t frac_at = i;
      while (i < n && is_digit(p[i])) ++i;
      while (frac_at + frac_zeros < i && p[frac_at + frac_zeros] == '0') ++frac_zeros;
    }
    long exp = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
      ++i;
      bool neg = false;
      if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
      if (i >= n || !is_digit(p[i])) return fail("invalid number");
      for (; i < n && is_digit(p[i]); ++i)
        if (exp < 100000) exp = exp * 10 + (p[i] - '0');
      if (neg) exp = -exp;
    }
    double v = 0;
    const auto r = std::from_chars(p + start, p + i, v);
    if (r.ec == std::errc::result_out_of_range) {
      // Decimal magnitude of the first significant digit: too large overflows, too small is 0.
      const bool int_zero = p[int_at] == '0';
      const long mag = int_zero ? exp - static_cast<long>(frac_zeros) : exp + static_cast<long>(int_len);
      if (mag > 0) return fail_at(start, "number out of range");
      v = p[start] == '-' ? -0.0 : 0.0;
    } else if (r.ec != std::errc() || r.ptr != p + i) {
      return fail_at(start, "invalid number");
    }
    lua_pushnumber(L, v);
    return true;
  }
};

}  // namespace

int json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  Encoder e{L, {}};
  e.value(1);
  if (e.out.size() > kMaxText) e.fail("result larger than 4 MiB");
  lua_pushlstring(L, e.out.data(), e.out.size());
  return 1;
}

int json_decode(lua_State* L) {
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typerror(L, 1, "string");
  std::size_t n = 0;
  const char* s = lua_tolstring(L, 1, &n);
  lua_settop(L, 1);
  if (n > kMaxText) {
    lua_pushnil(L);
    lua_pushliteral(L, "JSON text larger than 4 MiB");
    return 2;
  }
  Decoder d{L, s, n, 0, 0, nullptr, 0, {}};
  bool ok = d.value();
  if (ok) {
    d.ws();
    if (d.i != n) ok = d.fail("unexpected data after the value");
  }
  if (!ok) {
    lua_settop(L, 1);
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %d: %s", static_cast<int>(d.err_at + 1), d.err);
    return 2;
  }
  return 1;
}

}  // namespace lg::lua::detail
