#include "core/json_escape.hpp"

#include "core/utf8.hpp"

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

std::size_t utf8_len(std::string_view s, std::size_t i) {
  return utf8::sequence_length(reinterpret_cast<const unsigned char*>(s.data() + i), s.size() - i);
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
