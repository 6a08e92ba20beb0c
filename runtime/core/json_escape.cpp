#include "core/json_escape.hpp"

#include <array>
#include <cstdint>

namespace lg {
namespace {

// 0: copied as is (printable ASCII), 1: needs an escape (control, '"', '\\'), 2: byte >= 0x80.
constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = c < 0x20 ? 1 : c >= 0x80 ? 2 : 0;
  t['"'] = 1;
  t['\\'] = 1;
  return t;
}
constexpr auto kClass = make_classes();

// Length of the well-formed UTF-8 sequence starting at s[i] (lead byte >= 0x80), or 0 when it
// is not one (stray continuation byte, overlong form, surrogate, > U+10FFFF, truncated).
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return (b(k) & 0xC0) == 0x80; };
  const std::size_t left = s.size() - i;
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;  // 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF
}

void append_u00(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
  out.append(esc, sizeof esc);
}

}  // namespace

void json_escape_append(std::string& out, std::string_view s) {
  std::size_t run = 0;  // start of the pending run of bytes copied unchanged
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::uint8_t cls = kClass[c];
    if (cls == 0) {
      ++i;
      continue;
    }
    if (cls == 2) {
      if (const std::size_t n = utf8_len(s, i)) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: append_u00(out, c); break;
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace lg
