#include "http/response_reader.hpp"

#include <algorithm>

#include "http/response_parser.hpp"

namespace lg::http {

namespace {
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxHeaders = 100;
constexpr std::size_t kMaxInterim = 8;  // 1xx heads before the final one
}  // namespace

ResponseReader::ResponseReader(std::size_t max_body) : max_body_(max_body) {
  ChunkedLimits limits;
  limits.max_body_bytes = max_body;
  chunks_.set_limits(limits);
  head_.headers = &headers_;
}

ParseResult ResponseReader::update(std::string_view buf, bool eof) {
  for (; !have_head_; ++interim_) {  // counted across calls: one 1xx head per read still adds up
    const ParseResult r = parse_response_head(buf.substr(start_), kMaxHeadBytes, kMaxHeaders, false, scan_, head_);
    if (r.kind == ParseResult::error) return r;
    if (r.kind == ParseResult::incomplete)
      return eof ? ParseResult::fail(502, "connection closed before the response head") : r;
    if (head_.status >= 200) {
      have_head_ = true;
      break;
    }
    if (head_.status == 101 || interim_ == kMaxInterim) return ParseResult::fail(502, "unexpected 1xx response");
    start_ += head_.head_bytes;
    scan_.reset();
  }
  if (pos_ == 0) {  // the head was just parsed: its views are valid for this call only
    for (const Header& h : headers_)
      if (iequals(h.name, "content-encoding") && !iequals(h.value, "identity"))
        return ParseResult::fail(502, "content-encoding not supported");
    status_ = head_.status;
    pos_ = start_ + head_.head_bytes;
    if (head_.body == BodyKind::content_length && head_.content_length > max_body_)
      return ParseResult::fail(502, "response body too large");
  }
  return read_body(buf, eof);
}

ParseResult ResponseReader::read_body(std::string_view buf, bool eof) {
  switch (head_.body) {
    case BodyKind::none: return ParseResult::ok();
    case BodyKind::content_length: {
      const std::size_t take = std::min<std::uint64_t>(buf.size() - pos_, head_.content_length - body_.size());
      body_.append(buf.substr(pos_, take));
      pos_ += take;
      if (body_.size() == head_.content_length) return ParseResult::ok();
      return eof ? ParseResult::fail(502, "connection closed before the end of the body") : ParseResult::more();
    }
    case BodyKind::chunked:
      while (pos_ < buf.size()) {
        std::size_t used = 0;
        std::string_view data;
        const ParseResult r = chunks_.feed(buf.substr(pos_), used, data);
        pos_ += used;
        body_.append(data);
        if (r.kind == ParseResult::error)
          return ParseResult::fail(502, r.status == 413 ? "response body too large" : r.reason);
        if (r.kind == ParseResult::complete) return r;
        if (used == 0) break;
      }
      return eof ? ParseResult::fail(502, "connection closed before the last chunk") : ParseResult::more();
    case BodyKind::until_close:
      body_.append(buf.substr(pos_));
      pos_ = buf.size();
      if (body_.size() > max_body_) return ParseResult::fail(502, "response body too large");
      return eof ? ParseResult::ok() : ParseResult::more();
  }
  return ParseResult::fail(502, "unknown body framing");
}

}  // namespace lg::http
