// UTF-8 (RFC 3629) for the JSON encoders and parsers: one definition of a well-formed sequence.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lg::utf8 {

// Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80) with `left` bytes
// available, or 0 when it is not one: a stray continuation byte, an overlong form, a UTF-16
// surrogate, a code point above U+10FFFF, or a truncated sequence.
inline std::size_t sequence_length(const unsigned char* p, std::size_t left) {
  const auto cont = [&](std::size_t k) { return (p[k] & 0xC0) == 0x80; };
  const unsigned char c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) return 0;  // overlong, surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) return 0;  // overlong, > U+10FFFF
    return 4;
  }
  return 0;  // 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF
}

// Appends code point `cp` (<= U+10FFFF, not a surrogate) as UTF-8.
inline void append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace lg::utf8
