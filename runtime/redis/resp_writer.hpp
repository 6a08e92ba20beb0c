// RESP2 requests encoded into the caller's reused buffer, sent with redisAsyncFormattedCommand.
// hiredis's own formatting (redisAsyncCommandArgv: redisFormatSdsCommandArgv, sdscatfmt, sds
// growth) cost ~5,000 instructions and several allocations per EVALSHA; this is appends.
#pragma once
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lg::redis {

// A decimal integer as text, on the stack.
struct Decimal {
  char buf[24];
  std::size_t len;
  explicit Decimal(std::int64_t v) : len(static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf)) {}
  std::string_view view() const { return {buf, len}; }
};

// Appends one command to `out`: array(n), then n arguments.
class RespWriter {
 public:
  explicit RespWriter(std::string& out) : out_(out) {}
  void array(std::size_t n) { header('*', n); }
  void arg(std::string_view s) {
    header('$', s.size());
    out_.append(s).append("\r\n");
  }
  void arg(std::int64_t v) { arg(Decimal(v).view()); }
  // One argument written as the concatenation of `parts` (a key: prefix, base, window, ...).
  void arg_parts(std::initializer_list<std::string_view> parts) {
    std::size_t len = 0;
    for (std::string_view p : parts) len += p.size();
    header('$', len);
    for (std::string_view p : parts) out_.append(p);
    out_.append("\r\n");
  }

 private:
  void header(char kind, std::size_t n) {
    out_.push_back(kind);
    out_.append(Decimal(static_cast<std::int64_t>(n)).view()).append("\r\n");
  }
  std::string& out_;
};

}  // namespace lg::redis
