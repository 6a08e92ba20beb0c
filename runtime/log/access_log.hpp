// One JSON line per request, through a per-worker spdlog logger whose sink batches lines and
// writes them with write(2) on a shared O_APPEND fd: no lock between workers, a few syscalls per
// thousand requests, and no silent drops (a failed write is retried, then counted and reported).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace lg {

struct AccessRecord {
  std::chrono::system_clock::time_point time;
  std::string_view request_id, method, path, route, upstream, upstream_addr, consumer, client_ip;
  std::uint16_t status = 0;
  double latency_s = 0;
  double upstream_latency_s = -1;  // < 0: no upstream exchange
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::int64_t ratelimit_remaining = -1;  // < 0: no limit applied
};

class BatchedFdSink;

class AccessLog {
 public:
  AccessLog(int fd, unsigned worker_id);  // fd < 0: off
  ~AccessLog();
  bool enabled() const { return logger_ != nullptr; }
  void write(const AccessRecord& r);
  void flush();
  std::uint64_t failed_lines() const;

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<BatchedFdSink> sink_;
  std::string line_;
  std::int64_t cached_second_ = -1;
  char cached_time_[24] = {};  // "2026-11-24T03:33:24." prefix
};

}  // namespace lg
