// JSON string escaping for lg-backend's /echo: any byte sequence becomes valid JSON.
// Valid UTF-8 sequences pass through; every other byte >= 0x80 is escaped as \u00XX (its
// latin-1 reading), control bytes and '"' '\\' are escaped, so the output always parses.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace lgb {

// Length of the valid UTF-8 sequence starting at s[i] (2..4), or 0 if there is none.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

inline void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); ++i; continue; }
    if (c >= 0x20 && c < 0x7F) { out += static_cast<char>(c); ++i; continue; }
    if (c >= 0x80) {
      if (std::size_t n = utf8_sequence_length(s, i)) { out.append(s.substr(i, n)); i += n; continue; }
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += "\\u00"; out += hex[c >> 4]; out += hex[c & 15];
    }
    ++i;
  }
  out += '"';
}

}  // namespace lgb
