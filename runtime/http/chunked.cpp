// Strict incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
// Framing bytes (size lines, extensions, CRLFs, trailers) go through a byte-level state machine
// that survives any split of the input; chunk data is never looped over: it is returned as a
// view into the input.
#include "http/chunked.hpp"

namespace lg::http {
namespace {

using detail::has_class;
using detail::kFieldVchar;
using detail::kOws;
using detail::kTchar;

// Leading zeros are legal but the size line must stay bounded; 16 significant digits fill 64 bits.
constexpr std::size_t kMaxSizeDigits = 32;

// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
enum ExtState : std::uint8_t {
  x_pre,           // BWS, then ';'
  x_name_bws,      // BWS, then the name
  x_name,          // in the name
  x_after_name,    // BWS after the name: '=' or ';' must follow
  x_val_bws,       // BWS after '='
  x_token,         // in a token value
  x_quoted,        // in a quoted-string
  x_quoted_escape, // after '\' in a quoted-string
  x_after_quoted,  // after the closing quote
};

enum TrailerState : std::uint8_t { t_name, t_value };

inline std::uint64_t hex_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<std::uint64_t>(c - '0');
  return static_cast<std::uint64_t>((c | 0x20) - 'a' + 10);
}

inline bool is_qdtext(char c) { return has_class(c, kFieldVchar) && c != '"' && c != '\\'; }

}  // namespace

ParseResult ChunkedDecoder::feed(std::string_view in, std::size_t& consumed,
                                 std::string_view& data) {
  data = {};
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;
  bool emitted = false;
  auto fail = [&](std::uint16_t status, const char* why) {
    consumed = static_cast<std::size_t>(p - begin);
    return ParseResult::fail(status, why);
  };

  while (p < end) {
    switch (state_) {
      case State::size: {
        const char c = *p;
        if (has_class(c, detail::kHexDigit)) {
          if ((remaining_ >> 60) != 0) return fail(413, "chunk size too large");
          if (++size_digits_ > kMaxSizeDigits) return fail(400, "chunk size line too long");
          remaining_ = (remaining_ << 4) | hex_value(c);
          ++p;
          break;
        }
        if (size_digits_ == 0) {
          return fail(400, c == '\n' ? "bare LF in chunk line" : "invalid chunk size");
        }
        if (remaining_ > limits_.max_body_bytes - total_) {
          return fail(413, "chunked body too large");
        }
        last_chunk_ = remaining_ == 0;
        if (c == '\r') {
          state_ = State::size_lf;
          ++p;
        } else if (c == ';' || has_class(c, kOws)) {
          state_ = State::ext;  // the byte is examined there
          sub_ = x_pre;
          ext_bytes_ = 0;
        } else {
          return fail(400, c == '\n' ? "bare LF in chunk line" : "invalid chunk size");
        }
        break;
      }

      case State::ext: {
        const char c = *p;
        if (++ext_bytes_ > limits_.max_ext_bytes) return fail(400, "chunk extension too long");
        const bool ows = has_class(c, kOws);
        const bool tchar = has_class(c, kTchar);
        bool line_end = false;
        bool ok = true;
        switch (sub_) {
          case x_pre:
            if (c == ';') sub_ = x_name_bws;
            else ok = ows;
            break;
          case x_name_bws:
            if (tchar) sub_ = x_name;
            else ok = ows;
            break;
          case x_name:
            if (tchar) break;
            if (ows) sub_ = x_after_name;
            else if (c == '=') sub_ = x_val_bws;
            else if (c == ';') sub_ = x_name_bws;
            else if (c == '\r') line_end = true;
            else ok = false;
            break;
          case x_after_name:
            if (c == '=') sub_ = x_val_bws;
            else if (c == ';') sub_ = x_name_bws;
            else ok = ows;
            break;
          case x_val_bws:
            if (tchar) sub_ = x_token;
            else if (c == '"') sub_ = x_quoted;
            else ok = ows;
            break;
          case x_token:
            if (tchar) break;
            if (ows) sub_ = x_pre;
            else if (c == ';') sub_ = x_name_bws;
            else if (c == '\r') line_end = true;
            else ok = false;
            break;
          case x_quoted:
            if (c == '"') sub_ = x_after_quoted;
            else if (c == '\\') sub_ = x_quoted_escape;
            else ok = is_qdtext(c);
            break;
          case x_quoted_escape:
            if (has_class(c, kFieldVchar)) sub_ = x_quoted;
            else ok = false;
            break;
          case x_after_quoted:
            if (ows) sub_ = x_pre;
            else if (c == ';') sub_ = x_name_bws;
            else if (c == '\r') line_end = true;
            else ok = false;
            break;
          default:
            ok = false;
            break;
        }
        if (!ok) return fail(400, c == '\n' ? "bare LF in chunk line" : "invalid chunk extension");
        ++p;
        if (line_end) state_ = State::size_lf;
        break;
      }

      case State::size_lf:
        if (*p != '\n') return fail(400, "CR not followed by LF in chunk line");
        ++p;
        if (last_chunk_) {
          state_ = State::trailer;
          sub_ = t_name;
          trailer_bytes_ = 0;
          trailer_line_ = 0;
          trailer_cr_ = false;
        } else {
          state_ = State::data;
        }
        break;

      case State::data: {
        if (emitted) {  // one data span per call: stop before the next one
          consumed = static_cast<std::size_t>(p - begin);
          return ParseResult::more();
        }
        const auto avail = static_cast<std::uint64_t>(end - p);
        const std::uint64_t n = remaining_ < avail ? remaining_ : avail;
        data = std::string_view(p, static_cast<std::size_t>(n));
        emitted = true;
        p += n;
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) state_ = State::data_cr;
        break;
      }

      case State::data_cr:
        if (*p != '\r') return fail(400, "chunk data not followed by CRLF");
        ++p;
        state_ = State::data_lf;
        break;

      case State::data_lf:
        if (*p != '\n') return fail(400, "chunk data not followed by CRLF");
        ++p;
        state_ = State::size;
        remaining_ = 0;
        size_digits_ = 0;
        break;

      case State::trailer: {
        const char c = *p;
        if (++trailer_bytes_ > limits_.max_trailer_bytes) {
          return fail(400, "trailer section too large");
        }
        if (trailer_cr_) {
          if (c != '\n') return fail(400, "bare CR in trailer section");
          ++p;
          trailer_cr_ = false;
          if (trailer_line_ == 0) {
            state_ = State::done;
            consumed = static_cast<std::size_t>(p - begin);
            return ParseResult::ok();
          }
          trailer_line_ = 0;
          sub_ = t_name;
          break;
        }
        if (c == '\r') {
          if (trailer_line_ != 0 && sub_ == t_name) return fail(400, "trailer field without colon");
          trailer_cr_ = true;
        } else if (c == '\n') {
          return fail(400, "bare LF in trailer section");
        } else if (sub_ == t_name) {
          if (c == ':') {
            if (trailer_line_ == 0) return fail(400, "empty trailer field name");
            sub_ = t_value;
          } else if (!has_class(c, kTchar)) {
            return fail(400, trailer_line_ == 0 && has_class(c, kOws)
                                 ? "obs-fold or whitespace in trailer section"
                                 : "invalid trailer field name");
          }
          ++trailer_line_;
        } else {
          if (!has_class(c, kFieldVchar)) return fail(400, "invalid byte in trailer value");
          ++trailer_line_;
        }
        ++p;
        break;
      }

      case State::done:
        consumed = static_cast<std::size_t>(p - begin);
        return ParseResult::ok();
    }
  }
  consumed = static_cast<std::size_t>(p - begin);
  return state_ == State::done ? ParseResult::ok() : ParseResult::more();
}

std::size_t write_chunk_header(char* out, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[16];
  std::size_t k = 0;
  do {
    tmp[k++] = kHex[n & 15];
    n >>= 4;
  } while (n != 0);
  for (std::size_t i = 0; i < k; ++i) out[i] = tmp[k - 1 - i];
  out[k] = '\r';
  out[k + 1] = '\n';
  return k + 2;
}

}  // namespace lg::http
