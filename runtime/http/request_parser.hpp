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
  // Where the scan resumes (offsets into the caller's buffer, so the buffer may move between
  // calls as long as its bytes stay the same).
  std::size_t line_start = 0;      // first byte of the line being received
  std::size_t start_line_end = 0;  // offset of the CR ending the start line; 0 = not yet seen
  std::size_t head_end = 0;        // offset just past the empty line; 0 = head not complete
  std::uint32_t lines = 0;         // complete non-empty lines (start line + field lines)
  std::uint8_t leading_empty = 0;  // empty lines skipped before the start line
  void reset() { *this = HeadScan{}; }
};

// `buf` holds everything received so far for this request (starting at its first byte).
// Returns incomplete until the empty line arrives; enforces limits on partial input too
// (a 70 KiB header line fails with 431 before its end arrives; a bare LF fails at once).
ParseResult parse_request_head(std::string_view buf, const RequestLimits& limits, HeadScan& scan,
                               RequestHead& out);

namespace detail {
// Incremental line scanner shared by the request and response parsers. Searches only bytes not
// scanned before (and never past `max_bytes`), checks that every LF follows a CR, counts lines.
// Returns start_line once when the start line has just been completed (call again to go on).
enum class ScanStatus : std::uint8_t {
  incomplete, start_line, complete, bare_lf, too_many_lines, too_many_leading_empty
};
ScanStatus scan_head(std::string_view buf, std::size_t max_bytes, std::size_t max_lines,
                     std::size_t max_leading_empty, HeadScan& scan);
}  // namespace detail

}  // namespace lg::http
