// Shared helpers of the HTTP/1.x parsers: case-insensitive comparison, list iteration, field-line
// syntax, decimal numbers. Nothing here allocates or throws.
#include "http/message.hpp"

#include <cstring>

namespace lg::http {
namespace {

constexpr std::array<unsigned char, 256> make_lower() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[static_cast<std::size_t>(c)] =
        static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  return t;
}
constexpr std::array<unsigned char, 256> kLower = make_lower();

inline unsigned char lower(char c) { return kLower[static_cast<unsigned char>(c)]; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool list_contains_token(std::string_view list, std::string_view token) {
  detail::ListIter it(list);
  std::string_view element;
  while (it.next(element)) {
    if (iequals(element, token)) return true;
  }
  return false;
}

namespace detail {

bool iequals_lower(std::string_view s, std::string_view lower_literal) {
  if (s.size() != lower_literal.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != static_cast<unsigned char>(lower_literal[i])) return false;
  }
  return true;
}

bool valid_field_value(const char* p, const char* e) {
  // Eight bytes at a time: a word with no byte < 0x20 and no DEL is all valid (obs-text has the
  // high bit set and is never flagged). Words that are flagged (HTAB, or a real error) are
  // checked byte by byte.
  constexpr std::uint64_t k01 = 0x0101010101010101ULL, k80 = 0x8080808080808080ULL;
  while (e - p >= 8) {
    std::uint64_t x;
    std::memcpy(&x, p, 8);
    const std::uint64_t below_20 = (x - 0x20 * k01) & ~x & k80;
    const std::uint64_t del = x ^ (0x7f * k01);
    const std::uint64_t is_del = (del - k01) & ~del & k80;
    if ((below_20 | is_del) != 0) {
      for (int i = 0; i < 8; ++i) {
        if (!has_class(p[i], kFieldVchar)) return false;
      }
    }
    p += 8;
  }
  for (; p < e; ++p) {
    if (!has_class(*p, kFieldVchar)) return false;
  }
  return true;
}

const char* parse_field_line(const char*& p, const char* end, Header& out) {
  const char* q = p;
  if (has_class(*q, kOws)) return "obs-fold or whitespace before a field name";
  while (has_class(*q, kTchar)) ++q;
  if (*q != ':') {
    if (q == p) return "invalid field name";
    if (has_class(*q, kOws)) return "whitespace between field name and colon";
    if (*q == '\r') return "field line without colon";
    return "invalid byte in field name";
  }
  if (q == p) return "empty field name";
  out.name = std::string_view(p, static_cast<std::size_t>(q - p));
  ++q;
  while (has_class(*q, kOws)) ++q;
  const char* v = q;
  // The head ends in CRLF, so a CR is always found; a CR not followed by LF is a bare CR.
  q = static_cast<const char*>(std::memchr(q, '\r', static_cast<std::size_t>(end - q)));
  if (q == nullptr || q + 1 >= end) return "field line without CRLF";
  if (q[1] != '\n') return "bare CR in field line";
  if (!valid_field_value(v, q)) return "invalid byte in field value";
  const char* ve = q;
  while (ve > v && has_class(ve[-1], kOws)) --ve;
  out.value = std::string_view(v, static_cast<std::size_t>(ve - v));
  p = q + 2;
  return nullptr;
}

bool ListIter::next(std::string_view& element) {
  if (done_) return false;
  std::size_t comma = rest_.find(',');
  std::string_view e = rest_.substr(0, comma);
  if (comma == std::string_view::npos) {
    done_ = true;
  } else {
    rest_.remove_prefix(comma + 1);
  }
  while (!e.empty() && has_class(e.front(), kOws)) e.remove_prefix(1);
  while (!e.empty() && has_class(e.back(), kOws)) e.remove_suffix(1);
  element = e;
  return true;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!has_class(c, kTchar)) return false;
  }
  return true;
}

NumParse parse_decimal(std::string_view s, std::uint64_t& value) {
  if (s.empty()) return NumParse::invalid;
  std::uint64_t v = 0;
  bool overflow = false;
  for (char c : s) {
    if (!has_class(c, kDigit)) return NumParse::invalid;  // a later non-digit beats overflow
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) overflow = true;
    if (!overflow) v = v * 10 + d;
  }
  if (overflow) return NumParse::overflow;
  value = v;
  return NumParse::ok;
}

}  // namespace detail
bool idempotent_method(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

}  // namespace lg::http
