// Incremental, strict decoder for the chunked transfer coding (RFC 9112 §7.1).
// Chunk sizes are 1*HEXDIG without overflow; extensions are syntax-checked and bounded;
// every line ends in CRLF; trailer fields are syntax-checked, bounded and dropped.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/message.hpp"

namespace lg::http {

// Defined outside ChunkedDecoder: g++ 12 rejects `Limits limits = {}` as a default argument
// when the nested struct has default member initializers (GCC bug 88165).
struct ChunkedLimits {
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;  // sum of chunk data -> 413 when exceeded
  std::size_t max_ext_bytes = 4096;                 // one chunk line's extensions -> 400
  std::size_t max_trailer_bytes = 8192;             // whole trailer section -> 400
};

class ChunkedDecoder {
 public:
  using Limits = ChunkedLimits;
  explicit ChunkedDecoder(Limits limits = {}) : limits_(limits) {}
  void reset() { *this = ChunkedDecoder(limits_); }
  void set_limits(Limits l) { limits_ = l; }

  // Consumes bytes from `in`. Sets `consumed` to how many were used and `data` to the chunk
  // data found (a view into `in`; may be empty). Call repeatedly: one call returns at most one
  // contiguous data span. Returns complete once the last chunk and trailers are consumed
  // (bytes after that belong to the next message), incomplete when more input is needed,
  // or error with status 400/413.
  ParseResult feed(std::string_view in, std::size_t& consumed, std::string_view& data);

  bool done() const { return state_ == State::done; }
  std::uint64_t body_bytes() const { return total_; }

 private:
  enum class State : std::uint8_t { size, ext, size_lf, data, data_cr, data_lf, trailer, done };
  Limits limits_;
  State state_ = State::size;
  std::uint64_t remaining_ = 0;  // bytes of data left in the current chunk
  std::uint64_t total_ = 0;
  std::size_t size_digits_ = 0;
  std::size_t ext_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_line_ = 0;  // bytes of the current trailer line (0 = at a line start)
  bool trailer_cr_ = false;       // saw CR, expecting LF
  bool last_chunk_ = false;
  std::uint8_t sub_ = 0;  // position inside a chunk-ext (state ext) or a trailer line (trailer)
};

// Writes the chunk-size line for `n` bytes ("1a\r\n") into `out` (>= 20 bytes); returns its length.
std::size_t write_chunk_header(char* out, std::size_t n);

}  // namespace lg::http
