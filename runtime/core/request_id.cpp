#include "core/request_id.hpp"

#include <cstring>

namespace lg {
namespace {
constexpr char kHex[] = "0123456789abcdef";

void put_hex(char* out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHex[v & 15];
    v >>= 4;
  }
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool all_zero(std::string_view s) {
  for (char c : s)
    if (c != '0') return false;
  return true;
}
}  // namespace

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '=' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_traceparent(std::string_view tp) {
  if (tp.size() != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return false;
  std::string_view version = tp.substr(0, 2), trace = tp.substr(3, 32), parent = tp.substr(36, 16),
                   flags = tp.substr(53, 2);
  if (!is_lower_hex(version) || version == "ff" || !is_lower_hex(trace) || !is_lower_hex(parent) ||
      !is_lower_hex(flags))
    return false;
  return !all_zero(trace) && !all_zero(parent);
}

IdGenerator::IdGenerator(std::uint64_t seed) {
  // splitmix64 to spread the seed over the xorshift128+ state
  auto mix = [&seed]() {
    std::uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  s_[0] = mix();
  s_[1] = mix() | 1;
}

std::uint64_t IdGenerator::next() {
  std::uint64_t s1 = s_[0];
  const std::uint64_t s0 = s_[1];
  s_[0] = s0;
  s1 ^= s1 << 23;
  s_[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return s_[1] + s0;
}

void IdGenerator::request_id(char* out) {
  const std::uint64_t a = next(), b = next();
  // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
  put_hex(out, a >> 32, 8);
  out[8] = '-';
  put_hex(out + 9, (a >> 16) & 0xffff, 4);
  out[13] = '-';
  put_hex(out + 14, 0x4000 | (a & 0x0fff), 4);
  out[18] = '-';
  put_hex(out + 19, 0x8000 | ((b >> 48) & 0x3fff), 4);
  out[23] = '-';
  put_hex(out + 24, b & 0xffffffffffffull, 12);
}

void IdGenerator::traceparent(char* out, std::string_view trace_id) {
  std::memcpy(out, "00-", 3);
  if (trace_id.size() == 32) {
    std::memcpy(out + 3, trace_id.data(), 32);
  } else {
    put_hex(out + 3, next() | 1, 16);
    put_hex(out + 19, next(), 16);
  }
  out[35] = '-';
  put_hex(out + 36, next() | 1, 16);
  std::memcpy(out + 52, "-01", 3);
}

}  // namespace lg
