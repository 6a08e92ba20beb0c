#include "core/base64url.hpp"

#include <array>
#include <cstdint>

namespace lg {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xFF;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::uint8_t>(i);
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

bool base64url_decode(std::string_view in, unsigned char* out) {
  const std::size_t n = in.size();
  if (n % 4 == 1) return false;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4, out += 3) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]], c = kTable[s[i + 2]], d = kTable[s[i + 3]];
    if ((a | b | c | d) & 0xC0) return false;
    const std::uint32_t v = a << 18 | b << 12 | c << 6 | d;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
    out[2] = static_cast<unsigned char>(v);
  }
  const std::size_t rest = n - i;
  if (rest == 2) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]];
    if (((a | b) & 0xC0) || (b & 0x0F)) return false;
    out[0] = static_cast<unsigned char>(a << 2 | b >> 4);
  } else if (rest == 3) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]], c = kTable[s[i + 2]];
    if (((a | b | c) & 0xC0) || (c & 0x03)) return false;
    const std::uint32_t v = a << 10 | b << 4 | c >> 2;
    out[0] = static_cast<unsigned char>(v >> 8);
    out[1] = static_cast<unsigned char>(v);
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
