// One whole HTTP/1.x response, for a client that wants all of it at once (the JWKS fetcher): the
// head (strict, as for upstreams), interim 1xx heads skipped, then a body delimited by
// Content-Length, the chunked coding or the connection's close, kept whole up to a cap. Only
// identity content is accepted (the request asks for it). Incremental and pure: the caller reads
// and calls update() with everything received so far.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.hpp"
#include "http/message.hpp"
#include "http/request_parser.hpp"

namespace lg::http {

class ResponseReader {
 public:
  explicit ResponseReader(std::size_t max_body);

  // `buf`: every byte received so far, starting with the response (the caller only appends);
  // `eof`: the peer closed the connection. complete: status() and body() are final; incomplete:
  // read more; error: `reason` says why (a head that does not parse, a body over the cap, a
  // connection closed before the body's end).
  ParseResult update(std::string_view buf, bool eof);

  bool has_head() const { return have_head_; }
  std::uint16_t status() const { return status_; }
  const std::string& body() const { return body_; }

 private:
  ParseResult read_body(std::string_view buf, bool eof);
  std::size_t max_body_;
  std::size_t start_ = 0;  // where the final (non-1xx) head begins
  std::size_t pos_ = 0;    // the next body byte to consume
  std::size_t interim_ = 0;  // 1xx heads skipped so far
  HeadScan scan_;
  std::vector<Header> headers_;
  ResponseHead head_;
  bool have_head_ = false;
  std::uint16_t status_ = 0;
  ChunkedDecoder chunks_;
  std::string body_;
};

}  // namespace lg::http
