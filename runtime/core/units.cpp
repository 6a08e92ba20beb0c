#include "core/units.hpp"

#include <limits>

namespace lg {
namespace {

// Parses the leading run of ASCII digits of `text` (at least one) into `value`; returns the
// number of digits consumed, or 0 when there are none or the value overflows uint64.
std::size_t parse_digits(std::string_view text, std::uint64_t& value) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(text[i] - '0');
    if (v > (kMax - d) / 10) return 0;
    v = v * 10 + d;
  }
  value = v;
  return i;
}

bool mul_fits(std::uint64_t a, std::uint64_t b, std::uint64_t limit, std::uint64_t& out) {
  if (b != 0 && a > limit / b) return false;
  out = a * b;
  return true;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  const std::size_t digits = parse_digits(text, n);
  if (digits == 0) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  std::uint64_t factor = 0;
  if (unit == "ms") factor = 1;
  else if (unit == "s") factor = 1'000;
  else if (unit == "m") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else if (unit == "d") factor = 86'400'000;
  else return std::nullopt;
  constexpr auto kLimit = static_cast<std::uint64_t>(std::numeric_limits<Millis::rep>::max());
  std::uint64_t ms = 0;
  if (!mul_fits(n, factor, kLimit, ms)) return std::nullopt;
  return Millis{static_cast<Millis::rep>(ms)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t n = 0;
  const std::size_t digits = parse_digits(text, n);
  if (digits == 0) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  std::uint64_t factor = 1;
  if (unit.size() > 1) return std::nullopt;
  if (unit.size() == 1) {
    switch (unit[0]) {
      case 'k': case 'K': factor = 1ull << 10; break;
      case 'm': case 'M': factor = 1ull << 20; break;
      case 'g': case 'G': factor = 1ull << 30; break;
      default: return std::nullopt;
    }
  }
  std::uint64_t bytes = 0;
  if (!mul_fits(n, factor, std::numeric_limits<std::uint64_t>::max(), bytes)) return std::nullopt;
  return bytes;
}

}  // namespace lg
