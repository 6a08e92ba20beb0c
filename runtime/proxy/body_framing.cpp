// Body framing between the two sides of a ClientConnection: Content-Length bodies pass through
// as views; chunked bodies are decoded strictly and re-framed (extensions and trailers never
// cross); bodies of unknown length are chunk-encoded for HTTP/1.1 clients.
#include "proxy/client_connection.hpp"
#include "net/worker.hpp"

namespace lg {

namespace {
constexpr char kCrlf[] = "\r\n";
constexpr char kLastChunk[] = "0\r\n\r\n";
}  // namespace

std::size_t ClientConnection::frame_request_body(std::size_t& n, http::ParseResult& err) {
  if (request_body_done_ || rbuf_.empty()) return 0;
  if (req_body_ == http::BodyKind::content_length) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(req_remaining_, rbuf_.size()));
    x_->iov[n++] = make_iov(rbuf_.read_ptr(), k);
    return k;
  }
  // chunked: decode and re-frame, so extensions, trailers and odd spellings never reach the upstream
  const std::string_view in(rbuf_.read_ptr(), rbuf_.size());
  std::size_t consumed = 0;
  for (std::size_t spans = 0; spans < Exchange::kMaxSpans && consumed < in.size();) {
    std::size_t used = 0;
    std::string_view data;
    http::ParseResult r = req_chunks_.feed(in.substr(consumed), used, data);
    consumed += used;
    if (r.kind == http::ParseResult::error) {
      err = r;
      return 0;
    }
    if (!data.empty()) {
      const std::size_t h = http::write_chunk_header(x_->chunk_hdr[spans], data.size());
      x_->iov[n++] = make_iov(x_->chunk_hdr[spans], h);
      x_->iov[n++] = make_iov(data.data(), data.size());
      x_->iov[n++] = make_iov(kCrlf, 2);
      ++spans;
    }
    if (r.kind == http::ParseResult::complete) {
      x_->iov[n++] = make_iov(kLastChunk, 5);
      break;
    }
    if (used == 0) break;
  }
  return consumed;
}

std::size_t ClientConnection::frame_response_body(std::size_t& n, bool& finished, http::ParseResult& err) {
  Buffer& b = up_->buf;
  switch (resp_body_) {
    case http::BodyKind::none: finished = true; return 0;
    case http::BodyKind::content_length: {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(resp_remaining_, b.size()));
      if (k) x_->iov[n++] = make_iov(b.read_ptr(), k);
      resp_remaining_ -= k;
      finished = resp_remaining_ == 0;
      return k;
    }
    case http::BodyKind::until_close: {
      const std::size_t k = b.size();
      if (k && resp_chunked_out_) {
        const std::size_t h = http::write_chunk_header(x_->chunk_hdr[0], k);
        x_->iov[n++] = make_iov(x_->chunk_hdr[0], h);
        x_->iov[n++] = make_iov(b.read_ptr(), k);
        x_->iov[n++] = make_iov(kCrlf, 2);
      } else if (k) {
        x_->iov[n++] = make_iov(b.read_ptr(), k);
      }
      if (upstream_eof_) {
        finished = true;
        if (resp_chunked_out_) x_->iov[n++] = make_iov(kLastChunk, 5);
      }
      return k;
    }
    case http::BodyKind::chunked: {
      const std::string_view in(b.read_ptr(), b.size());
      std::size_t consumed = 0;
      for (std::size_t spans = 0; spans < Exchange::kMaxSpans && consumed < in.size();) {
        std::size_t used = 0;
        std::string_view data;
        const http::ParseResult r = resp_chunks_.feed(in.substr(consumed), used, data);
        consumed += used;
        if (r.kind == http::ParseResult::error) {
          err = r;
          return 0;
        }
        if (!data.empty()) {
          if (resp_chunked_out_) {
            const std::size_t h = http::write_chunk_header(x_->chunk_hdr[spans], data.size());
            x_->iov[n++] = make_iov(x_->chunk_hdr[spans], h);
            x_->iov[n++] = make_iov(data.data(), data.size());
            x_->iov[n++] = make_iov(kCrlf, 2);
          } else {
            x_->iov[n++] = make_iov(data.data(), data.size());
          }
          ++spans;
        }
        if (r.kind == http::ParseResult::complete) {
          finished = true;
          if (resp_chunked_out_) x_->iov[n++] = make_iov(kLastChunk, 5);
          break;
        }
        if (used == 0) break;
      }
      return consumed;
    }
  }
  return 0;
}

}  // namespace lg
