// Request identity: X-Request-ID and W3C traceparent, generated per worker without locks.
#pragma once
#include <cstdint>
#include <string_view>

namespace lg {

// A client's X-Request-ID is kept when it is 1..128 bytes of [A-Za-z0-9._:+/=-]; anything
// else (empty, spaces, quotes, control bytes) is replaced so logs and headers stay clean.
bool valid_request_id(std::string_view id);

// W3C trace-context: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>", lower-case,
// ids not all zero.
bool valid_traceparent(std::string_view tp);

class IdGenerator {
 public:
  explicit IdGenerator(std::uint64_t seed);
  // Writes a UUIDv4-formatted id (36 chars) into out[36].
  void request_id(char* out);
  // Writes a new traceparent (55 chars) into out[55]; keeps `trace_id` (32 hex) when given,
  // so the gateway continues a trace as a new span.
  void traceparent(char* out, std::string_view trace_id = {});

 private:
  std::uint64_t next();
  std::uint64_t s_[2];
};

}  // namespace lg
