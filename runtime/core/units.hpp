// Durations ("250ms", "5s", "1m", "1h") and sizes ("512", "64k", "10m", "1g") as written in config.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lg {

using Millis = std::chrono::milliseconds;

// Accepts an integer followed by one of ms, s, m, h, d. No unit, negatives, or overflow -> nullopt.
std::optional<Millis> parse_duration(std::string_view text);

// Accepts an integer optionally followed by k, m, g (powers of 1024, case-insensitive). Overflow -> nullopt.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace lg
