// Strict HTTP/1.1 request-head parser (RFC 9112). Zero-copy: views into the caller's buffer.
// Every ambiguity is an error (400 + close): CL+TE, differing or listed Content-Length, any
// transfer coding but a lone final `chunked`, obs-fold, bare CR or LF, control characters,
// invalid tokens, duplicate or invalid Host, TE in HTTP/1.0.
#pragma once
#include <cstddef>
#include <string_view>

#include "http/message.hpp"

namespace lg::http {

struct RequestLimits {
  std::size_t max_header_bytes = 32 * 1024;  // head larger -> 431
  std::size_t max_uri_bytes = 8 * 1024;      // request-target longer -> 414
  std::size_t max_headers = 100;             // more field lines -> 431
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;  // Content-Length larger -> 413
};

// Incremental scanner state: remembers how far the buffer was already scanned so a head that
// arrives in many small reads is scanned once (no quadratic rescans).
struct HeadScan {
  std::size_t scanned = 0;
  void reset() { scanned = 0; }
};

// `buf` holds everything received so far for this request (starting at its first byte).
// Returns incomplete until the empty line arrives; enforces limits on partial input too
// (a 70 KiB header line fails with 431 before its end arrives; a bare LF fails at once).
ParseResult parse_request_head(std::string_view buf, const RequestLimits& limits, HeadScan& scan,
                               RequestHead& out);

}  // namespace lg::http
