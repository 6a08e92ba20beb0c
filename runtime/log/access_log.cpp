#include "log/access_log.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "core/json_escape.hpp"

namespace lg {

class BatchedFdSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit BatchedFdSink(int fd) : fd_(fd) {
    struct stat st {};
    // Pipes and terminals interleave writes larger than PIPE_BUF from several workers; files
    // opened O_APPEND do not. Split batches at line boundaries accordingly.
    max_write_ = (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? (1u << 20) : PIPE_BUF;
    buf_.reserve(kBatch + 4096);
  }
  ~BatchedFdSink() override { flush_(); }
  std::uint64_t failed_lines() const { return failed_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buf_.append(msg.payload.data(), msg.payload.size());
    buf_.push_back('\n');
    ++pending_lines_;
    if (buf_.size() >= kBatch) flush_();
  }

  void flush_() override {
    std::size_t off = 0;
    while (off < buf_.size()) {
      std::size_t len = buf_.size() - off;
      if (len > max_write_) {
        // Cut after the last newline that fits; a single longer line is written alone.
        std::size_t cut = buf_.rfind('\n', off + max_write_ - 1);
        len = (cut == std::string::npos || cut < off) ? buf_.find('\n', off) + 1 - off : cut + 1 - off;
      }
      if (!write_all(buf_.data() + off, len)) {
        failed_ += count_lines(off, len);
        report_failure();
      }
      off += len;
    }
    buf_.clear();
    pending_lines_ = 0;
  }

 private:
  static constexpr std::size_t kBatch = 32 * 1024;

  bool write_all(const char* p, std::size_t n) {
    for (int attempts = 0; n > 0 && attempts < 100; ++attempts) {
      ssize_t w = ::write(fd_, p, n);
      if (w > 0) {
        p += w;
        n -= static_cast<std::size_t>(w);
        attempts = 0;
      } else if (w < 0 && errno != EINTR && errno != EAGAIN) {
        return false;
      } else if (w < 0 && errno == EAGAIN) {
        ::usleep(1000);  // a non-blocking stdout that is full: wait rather than drop
      }
    }
    return n == 0;
  }
  std::uint64_t count_lines(std::size_t off, std::size_t len) const {
    std::uint64_t n = 0;
    for (std::size_t i = off; i < off + len; ++i) n += buf_[i] == '\n';
    return n;
  }
  void report_failure() {
    spdlog::error("access log: write failed ({}); {} lines lost so far", std::strerror(errno), failed_);
  }

  int fd_;
  std::size_t max_write_;
  std::string buf_;
  std::size_t pending_lines_ = 0;
  std::uint64_t failed_ = 0;
};

AccessLog::AccessLog(int fd, unsigned worker_id) {
  if (fd < 0) return;
  sink_ = std::make_shared<BatchedFdSink>(fd);
  logger_ = std::make_shared<spdlog::logger>(fmt::format("access-{}", worker_id), sink_);
  logger_->set_level(spdlog::level::info);
  logger_->flush_on(spdlog::level::off);  // flushed by size and on the worker's tick
  line_.reserve(512);
}

AccessLog::~AccessLog() { flush(); }

void AccessLog::flush() {
  if (logger_) logger_->flush();
}

std::uint64_t AccessLog::failed_lines() const { return sink_ ? sink_->failed_lines() : 0; }

namespace {
void append_str(std::string& out, const char* key, std::string_view v) {
  out.append(key);
  if (v.empty()) {
    out.append("null");
    return;
  }
  out.push_back('"');
  json_escape_append(out, v);
  out.push_back('"');
}
}  // namespace

void AccessLog::write(const AccessRecord& r) {
  if (!logger_) return;
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(r.time.time_since_epoch()).count();
  const std::int64_t sec = ms / 1000;
  if (sec != cached_second_) {
    std::time_t t = static_cast<std::time_t>(sec);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached_time_, sizeof cached_time_, "%Y-%m-%dT%H:%M:%S.", &tm);
    cached_second_ = sec;
  }
  line_.clear();
  line_.append("{\"time\":\"");
  line_.append(cached_time_);
  fmt::format_to(std::back_inserter(line_), "{:03d}Z\"", static_cast<int>(ms % 1000));
  append_str(line_, ",\"request_id\":", r.request_id);
  append_str(line_, ",\"method\":", r.method);
  append_str(line_, ",\"path\":", r.path);
  append_str(line_, ",\"route\":", r.route);
  fmt::format_to(std::back_inserter(line_), ",\"status\":{},\"latency_ms\":{:.3f}", r.status, r.latency_s * 1e3);
  append_str(line_, ",\"upstream\":", r.upstream);
  append_str(line_, ",\"upstream_addr\":", r.upstream_addr);
  if (r.upstream_latency_s >= 0)
    fmt::format_to(std::back_inserter(line_), ",\"upstream_latency_ms\":{:.3f}", r.upstream_latency_s * 1e3);
  else
    line_.append(",\"upstream_latency_ms\":null");
  append_str(line_, ",\"consumer\":", r.consumer);
  append_str(line_, ",\"client_ip\":", r.client_ip);
  fmt::format_to(std::back_inserter(line_), ",\"bytes_in\":{},\"bytes_out\":{}", r.bytes_in, r.bytes_out);
  if (r.ratelimit_remaining >= 0)
    fmt::format_to(std::back_inserter(line_), ",\"ratelimit_remaining\":{}}}", r.ratelimit_remaining);
  else
    line_.append(",\"ratelimit_remaining\":null}");
  logger_->log(spdlog::level::info, std::string_view(line_));
}

}  // namespace lg
