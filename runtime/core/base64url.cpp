#include "core/base64url.hpp"

#include <array>
#include <cstdint>

namespace lg {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::uint32_t kBad = 0x80000000u;

// kShift[k][c]: the 6 bits of character c placed for position k of a 4-character group
// (bits 18, 12, 6, 0), or kBad outside the alphabet: one OR per character, one test per group.
constexpr std::array<std::array<std::uint32_t, 256>, 4> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  for (auto& row : t)
    for (auto& v : row) v = kBad;
  for (std::uint32_t i = 0; i < 64; ++i)
    for (int k = 0; k < 4; ++k) t[k][static_cast<unsigned char>(kAlphabet[i])] = i << (18 - 6 * k);
  return t;
}
constexpr auto kShift = make_tables();

}  // namespace

bool base64url_decode(std::string_view in, unsigned char* out) {
  const std::size_t n = in.size();
  if (n % 4 == 1) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4, out += 3) {
    const std::uint32_t v = kShift[0][s[i]] | kShift[1][s[i + 1]] | kShift[2][s[i + 2]] | kShift[3][s[i + 3]];
    if (v & kBad) return false;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
    out[2] = static_cast<unsigned char>(v);
  }
  const std::size_t rest = n - i;
  if (rest == 2) {
    const std::uint32_t v = kShift[0][s[i]] | kShift[1][s[i + 1]];
    if ((v & kBad) || (v & 0xFFFF)) return false;  // the 4 low bits of the second character must be 0
    out[0] = static_cast<unsigned char>(v >> 16);
  } else if (rest == 3) {
    const std::uint32_t v = kShift[0][s[i]] | kShift[1][s[i + 1]] | kShift[2][s[i + 2]];
    if ((v & kBad) || (v & 0xFF)) return false;  // the 2 low bits of the third character must be 0
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
  }
  return true;
}

bool base64url_decode(std::string_view in, std::string& out) {
  const std::size_t size = base64url_decoded_size(in.size());
  if (size == std::string_view::npos) return false;
  out.resize(size);
  return base64url_decode(in, reinterpret_cast<unsigned char*>(out.data()));
}

void base64url_encode_append(std::string& out, std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = std::uint32_t{s[i]} << 16 | std::uint32_t{s[i + 1]} << 8 | s[i + 2];
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (n - i == 1) {
    const std::uint32_t v = std::uint32_t{s[i]} << 16;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    const std::uint32_t v = std::uint32_t{s[i]} << 16 | std::uint32_t{s[i + 1]} << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
}

}  // namespace lg
