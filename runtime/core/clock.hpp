// The monotonic clock deadlines and TTLs are measured on (milliseconds; vDSO, no syscall).
#pragma once
#include <chrono>
#include <cstdint>

namespace lg {

inline std::int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Wall-clock milliseconds since the epoch: rate-limit windows line up across processes and
// instances on it.
inline std::int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace lg
