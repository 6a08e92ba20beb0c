#include "router/path_normalize.hpp"

#include <cstdint>

namespace lg {
namespace {

// Per-byte class of a raw (not percent-decoded) path byte.
enum : std::uint8_t { kOk = 0, kBad = 1, kSlash = 2, kPct = 3 };

constexpr auto make_raw_class() {
  struct Table { std::uint8_t v[256]; } t{};
  for (int c = 0; c < 256; ++c) {
    if (c < 0x21 || c >= 0x7f) t.v[c] = kBad;  // CTL, SP, DEL, bytes >= 0x80
  }
  t.v[static_cast<unsigned char>('#')] = kBad;
  t.v[static_cast<unsigned char>('\\')] = kBad;
  t.v[static_cast<unsigned char>('?')] = kBad;  // the query must be split off by the caller
  t.v[static_cast<unsigned char>('/')] = kSlash;
  t.v[static_cast<unsigned char>('%')] = kPct;
  return t;
}
constexpr auto kRawClass = make_raw_class();

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool is_unreserved(unsigned v) {
  return (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
         v == '-' || v == '.' || v == '_' || v == '~';
}

constexpr char kHexUpper[] = "0123456789ABCDEF";

}  // namespace

const char* normalize_path(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size() + 1);  // the result is never longer than raw plus a leading '/'
  out.push_back('/');

  const std::size_t n = raw.size();
  std::size_t i = 0;
  // Value of the escape that ended at i (for the overlong UTF-8 checks), or -1.
  int prev_escape = -1;

  while (i < n && raw[i] == '/') ++i;
  while (i < n) {
    // One segment: decode it into out, then resolve "." / "..".
    const std::size_t seg_begin = out.size();
    while (i < n) {
      const char c = raw[i];
      const std::uint8_t cls = kRawClass.v[static_cast<unsigned char>(c)];
      if (cls == kOk) {
        out.push_back(c);
        ++i;
        prev_escape = -1;
        continue;
      }
      if (cls == kSlash) break;
      if (cls == kBad) {
        if (c == '#') return "'#' in path";
        if (c == '\\') return "'\\' in path";
        if (c == '?') return "'?' in path";
        return "invalid byte in path";
      }
      // '%'
      if (n - i < 3) return "malformed percent-escape";
      const int hi = hex_value(raw[i + 1]);
      const int lo = hex_value(raw[i + 2]);
      if (hi < 0 || lo < 0) return "malformed percent-escape";
      const unsigned v = static_cast<unsigned>(hi * 16 + lo);
      if (v == 0) return "encoded NUL in path";
      if (v == '/' || v == '\\') return "encoded slash in path";
      if (v == 0xC0 || v == 0xC1 || v >= 0xF5) return "invalid UTF-8 in path";
      if (prev_escape == 0xE0 && v >= 0x80 && v <= 0x9F) return "overlong UTF-8 in path";
      if (prev_escape == 0xF0 && v >= 0x80 && v <= 0x8F) return "overlong UTF-8 in path";
      if (is_unreserved(v)) {
        out.push_back(static_cast<char>(v));
      } else {
        out.push_back('%');
        out.push_back(kHexUpper[hi]);
        out.push_back(kHexUpper[lo]);
      }
      prev_escape = static_cast<int>(v);
      i += 3;
    }

    const std::size_t seg_len = out.size() - seg_begin;
    const char* seg = out.data() + seg_begin;
    if (seg_len == 1 && seg[0] == '.') {
      out.resize(seg_begin);  // out still ends with '/'
    } else if (seg_len == 2 && seg[0] == '.' && seg[1] == '.') {
      out.resize(seg_begin);
      if (seg_begin > 1) {  // drop the previous segment; never climb above the root
        const std::size_t slash = out.rfind('/', seg_begin - 2);
        out.resize(slash + 1);
      }
    } else if (i < n) {
      out.push_back('/');  // the segment is followed by at least one '/'
    }
    while (i < n && raw[i] == '/') ++i;
    prev_escape = -1;
  }
  return nullptr;
}

}  // namespace lg
