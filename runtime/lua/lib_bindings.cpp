// Pure gw utilities: gw.json, gw.base64, gw.crypto, gw.time. None of them touches the request
// (they work with Vm::current_request == nullptr) or does I/O, so every phase may call them.
// Misuse (wrong argument type, an argument out of range) raises an error; input that comes from
// outside and is malformed (base64, JSON) returns nil, err.
#include "lua/lib_bindings.hpp"

#include "core/clock.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "lua/sandbox.hpp"
#include "lua/vm.hpp"

namespace lg::lua {
namespace {

// A string argument; numbers are not coerced (a number where bytes are expected is a misuse).
std::string_view check_bytes(lua_State* L, int i) {
  if (lua_type(L, i) != LUA_TSTRING) luaL_typerror(L, i, "string");
  std::size_t n = 0;
  const char* s = lua_tolstring(L, i, &n);
  return {s, n};
}

void push(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }

int nil_err(lua_State* L, const char* msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

// ---- gw.base64 ----------------------------------------------------------------------------

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table(const char* alphabet) {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kStdDecode = make_decode_table(kStd);
constexpr auto kUrlDecode = make_decode_table(kUrl);

std::string b64_encode(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const std::size_t rest = in.size() - i;
  if (rest > 0) {
    const std::uint32_t v = (s[i] << 16) | (rest == 2 ? s[i + 1] << 8 : 0);
    out.push_back(alphabet[v >> 18]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

// Strict decoding: only the alphabet, '=' only as the final padding, zero unused bits.
// Returns nullptr on success, else the reason.
const char* b64_decode(std::string_view in, const std::array<std::int8_t, 256>& table, bool pad_required,
                       std::string& out) {
  std::size_t len = in.size(), pad = 0;
  while (len > 0 && pad < 2 && in[len - 1] == '=') --len, ++pad;
  if (pad_required && in.size() % 4 != 0) return "invalid base64: length is not a multiple of 4";
  if (pad > 0 && in.size() % 4 != 0) return "invalid base64: bad padding";
  if (len % 4 == 1) return "invalid base64: truncated input";
  out.clear();
  out.reserve(len / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < len; ++i) {
    const int d = table[static_cast<unsigned char>(in[i])];
    if (d < 0) return "invalid base64: unexpected character";
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (acc & ((1u << bits) - 1)) return "invalid base64: non-zero trailing bits";
  return nullptr;
}

int b64_encode_std(lua_State* L) { push(L, b64_encode(check_bytes(L, 1), kStd, true)); return 1; }
int b64_encode_url(lua_State* L) { push(L, b64_encode(check_bytes(L, 1), kUrl, false)); return 1; }

int b64_decode_with(lua_State* L, const std::array<std::int8_t, 256>& table, bool pad_required) {
  std::string out;
  if (const char* err = b64_decode(check_bytes(L, 1), table, pad_required, out)) return nil_err(L, err);
  push(L, out);
  return 1;
}
int b64_decode_std(lua_State* L) { return b64_decode_with(L, kStdDecode, true); }
int b64_decode_url(lua_State* L) { return b64_decode_with(L, kUrlDecode, false); }

// ---- gw.crypto ----------------------------------------------------------------------------

int crypto_sha256(lua_State* L) {
  const std::string_view s = check_bytes(L, 1);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) != 1) return nil_err(L, "sha256 failed");
  lua_pushlstring(L, reinterpret_cast<const char*>(md), len);
  return 1;
}

int crypto_hmac_sha256(lua_State* L) {
  const std::string_view key = check_bytes(L, 1);
  const std::string_view msg = check_bytes(L, 2);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
            msg.size(), md, &len))
    return nil_err(L, "hmac_sha256 failed");
  lua_pushlstring(L, reinterpret_cast<const char*>(md), len);
  return 1;
}

int crypto_hex(lua_State* L) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string_view s = check_bytes(L, 1);
  std::string out(s.size() * 2, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out[2 * i] = kHex[c >> 4];
    out[2 * i + 1] = kHex[c & 15];
  }
  push(L, out);
  return 1;
}

int crypto_random_bytes(lua_State* L) {
  const lua_Number n = luaL_checknumber(L, 1);
  if (!(n >= 1 && n <= 1024 && n == std::floor(n)))
    return luaL_error(L, "gw.crypto.random_bytes: n must be an integer in 1..1024");
  unsigned char buf[1024];
  if (RAND_bytes(buf, static_cast<int>(n)) != 1) return nil_err(L, "random generator failure");
  lua_pushlstring(L, reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
  return 1;
}

// Constant time for strings of the same length (a length mismatch returns false at once).
int crypto_equals(lua_State* L) {
  const std::string_view a = check_bytes(L, 1);
  const std::string_view b = check_bytes(L, 2);
  lua_pushboolean(L, a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
  return 1;
}

// ---- gw.time ------------------------------------------------------------------------------

int time_now(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(wall_ms()) / 1000.0);
  return 1;
}

int time_monotonic_ms(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(monotonic_ms()));
  return 1;
}

// gw.json.null = a NULL lightuserdata, stored in the real (not proxy) gw.json table.
void install_json_null(lua_State* L) {
  const int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, detail::kGwRealKey);
  lua_pushliteral(L, "json");
  lua_rawget(L, -2);  // the read-only proxy of gw.json
  if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
    lua_getfield(L, -1, "__index");  // the real gw.json
    if (lua_istable(L, -1)) {
      lua_pushliteral(L, "null");
      lua_pushlightuserdata(L, nullptr);
      lua_rawset(L, -3);
    }
  }
  lua_settop(L, top);
}

}  // namespace

void register_lib_bindings(Vm& vm) {
  const struct {
    const char* name;
    lua_CFunction fn;
  } fns[] = {
      {"json.encode", detail::json_encode},     {"json.decode", detail::json_decode},
      {"base64.encode", b64_encode_std},        {"base64.decode", b64_decode_std},
      {"base64.encode_url", b64_encode_url},    {"base64.decode_url", b64_decode_url},
      {"crypto.sha256", crypto_sha256},         {"crypto.hmac_sha256", crypto_hmac_sha256},
      {"crypto.hex", crypto_hex},               {"crypto.random_bytes", crypto_random_bytes},
      {"crypto.equals", crypto_equals},         {"time.now", time_now},
      {"time.monotonic_ms", time_monotonic_ms},
  };
  for (const auto& f : fns) vm.register_function(f.name, f.fn);
  install_json_null(vm.state());
}

}  // namespace lg::lua
