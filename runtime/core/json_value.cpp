#include "core/json_value.hpp"

#include "core/query_string.hpp"
#include "core/utf8.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <algorithm>
#include <cstring>

namespace lg::json {

std::string_view error_text(Error e) {
  static constexpr std::string_view kText[] = {
      "ok", "JSON syntax error", "invalid JSON string", "invalid JSON number", "duplicate JSON member name",
      "JSON nested too deeply", "JSON has too many values", "trailing characters after JSON value"};
  const auto i = static_cast<std::size_t>(e);
  return i < std::size(kText) ? kText[i] : "JSON error";
}

namespace {



// Names up to 7 bytes are packed with their length: equal fingerprints mean equal names. Longer
// names get a 64-bit FNV-1a hash with the top bit set (never equal to a packed one).
std::uint64_t fingerprint(std::string_view s, bool& exact) {
  std::uint64_t f = 0;
  exact = s.size() <= 7;
  if (exact) {
    for (unsigned char c : s) f = f << 8 | c;
    return f | static_cast<std::uint64_t>(s.size()) << 56;
  }
  f = 14695981039346656037ull;
  for (unsigned char c : s) f = (f ^ c) * 1099511628211ull;
  return f | 1ull << 63;
}

// Bytes a string can hold as they are: printable ASCII other than '"' and '\\'.
constexpr std::array<bool, 256> make_plain() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}
constexpr auto kPlain = make_plain();

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

struct Parser {
  Document& d;
  const char* begin;
  const char* p;
  const char* end;
  Limits lim;
  std::uint32_t depth = 0;
  Error err = Error::none;

  bool fail(Error e) {
    if (err == Error::none) {
      err = e;
      d.error_offset_ = static_cast<std::size_t>(p - begin);
    }
    return false;
  }
  void ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  bool add(Type t, std::uint32_t& idx) {
    if (d.count_ == d.nodes_.size()) {
      if (d.count_ >= lim.max_nodes) return fail(Error::too_many_nodes);
      d.nodes_.resize(std::min<std::size_t>(lim.max_nodes, d.nodes_.size() * 2 + 32));
    } else if (d.count_ >= lim.max_nodes) {
      return fail(Error::too_many_nodes);
    }
    idx = d.count_++;
    d.nodes_[idx] = Document::Node{t, false, false, 0, 0, {}};
    return true;
  }
  bool literal(std::string_view word, Type t, bool truth) {
    if (static_cast<std::size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0)
      return fail(Error::syntax);
    std::uint32_t idx;
    if (!add(t, idx)) return false;
    d.nodes_[idx].is_int = truth;  // booleans keep their value in is_int
    p += word.size();
    return true;
  }

  bool value() {
    ws();
    if (p == end) return fail(Error::syntax);
    switch (*p) {
      case '{': return object();
      case '[': return array();
      case '"': {
        std::uint32_t idx;
        return add(Type::string, idx) && string(idx);
      }
      case 't': return literal("true", Type::boolean, true);
      case 'f': return literal("false", Type::boolean, false);
      case 'n': return literal("null", Type::null, false);
      default:
        if (*p == '-' || is_digit(*p)) return number();
        return fail(Error::syntax);
    }
  }

  // p at the opening quote. Strings without escapes stay slices of the text.
  bool string(std::uint32_t idx) {
    ++p;
    const char* start = p;
    bool scratch = false;
    std::size_t scratch_at = 0;
    while (true) {
      const char* run = p;
      while (p < end && kPlain[static_cast<unsigned char>(*p)]) ++p;
      if (scratch) d.strings_.append(run, static_cast<std::size_t>(p - run));
      if (p == end) return fail(Error::bad_string);
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"') break;
      if (c < 0x20) return fail(Error::bad_string);
      if (c >= 0x80) {
        const std::size_t n =
            utf8::sequence_length(reinterpret_cast<const unsigned char*>(p), static_cast<std::size_t>(end - p));
        if (n == 0) return fail(Error::bad_string);
        if (scratch) d.strings_.append(p, n);
        p += n;
        continue;
      }
      // An escape: from here on the string is built in strings_.
      if (!scratch) {
        scratch = true;
        scratch_at = d.strings_.size();
        d.strings_.append(start, static_cast<std::size_t>(p - start));
      }
      if (end - p < 2) return fail(Error::bad_string);
      const char e = p[1];
      p += 2;
      switch (e) {
        case '"': d.strings_.push_back('"'); break;
        case '\\': d.strings_.push_back('\\'); break;
        case '/': d.strings_.push_back('/'); break;
        case 'b': d.strings_.push_back('\b'); break;
        case 'f': d.strings_.push_back('\f'); break;
        case 'n': d.strings_.push_back('\n'); break;
        case 'r': d.strings_.push_back('\r'); break;
        case 't': d.strings_.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp;
          if (!hex4(cp)) return fail(Error::bad_string);
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(Error::bad_string);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t lo;
            if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return fail(Error::bad_string);
            p += 2;
            if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return fail(Error::bad_string);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8::append(d.strings_, cp);
          break;
        }
        default: --p; return fail(Error::bad_string);
      }
    }
    Document::Node& n = d.nodes_[idx];
    if (scratch) {
      n.in_scratch = true;
      n.a = static_cast<std::uint32_t>(scratch_at);
      n.b = static_cast<std::uint32_t>(d.strings_.size() - scratch_at);
    } else {
      n.a = static_cast<std::uint32_t>(start - begin);
      n.b = static_cast<std::uint32_t>(p - start);
    }
    ++p;  // closing quote
    return true;
  }
  bool hex4(std::uint32_t& cp) {
    if (end - p < 4) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_digit(p[k]);
      if (h < 0) return false;
      cp = cp << 4 | static_cast<std::uint32_t>(h);
    }
    p += 4;
    return true;
  }

  bool number() {
    const char* s = p;
    if (*p == '-') ++p;
    if (p == end) return fail(Error::bad_number);
    if (*p == '0') {
      ++p;
      if (p < end && is_digit(*p)) return fail(Error::bad_number);
    } else if (is_digit(*p)) {
      while (p < end && is_digit(*p)) ++p;
    } else {
      return fail(Error::bad_number);
    }
    bool integral = true;
    if (p < end && *p == '.') {
      ++p;
      if (p == end || !is_digit(*p)) return fail(Error::bad_number);
      while (p < end && is_digit(*p)) ++p;
      integral = false;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (p == end || !is_digit(*p)) return fail(Error::bad_number);
      while (p < end && is_digit(*p)) ++p;
      integral = false;
    }
    std::uint32_t idx;
    if (!add(Type::number, idx)) return false;
    Document::Node& n = d.nodes_[idx];
    if (integral) {
      // Accumulate negatively so that INT64_MIN fits; overflow falls back to a double.
      const bool neg = *s == '-';
      std::int64_t v = 0;
      bool overflow = false;
      for (const char* q = neg ? s + 1 : s; q < p && !overflow; ++q)
        overflow = __builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, *q - '0', &v);
      if (!overflow && !neg) overflow = __builtin_mul_overflow(v, -1, &v);
      if (!overflow) {
        n.is_int = true;
        n.num.i = v;
        return true;
      }
    }
    double v = 0;
    const auto r = std::from_chars(s, p, v);
    if (r.ec != std::errc() || r.ptr != p || !std::isfinite(v)) {
      p = s;
      return fail(Error::bad_number);
    }
    n.num.d = v;
    return true;
  }

  bool enter() {
    if (++depth > lim.max_depth) return fail(Error::too_deep);
    return true;
  }

  // After an array element or object member: ',' -> 1 (more follow), `close` -> 0, else -1.
  int after_member(char close) {
    ws();
    if (p < end && *p == ',') {
      ++p;
      return 1;
    }
    if (p < end && *p == close) {
      ++p;
      return 0;
    }
    return -1;
  }

  bool array() {
    std::uint32_t idx;
    if (!enter() || !add(Type::array, idx)) return false;
    ++p;
    ws();
    std::uint32_t count = 0;
    if (p < end && *p == ']') {
      ++p;
    } else {
      while (true) {
        if (!value()) return false;
        ++count;
        const int more = after_member(']');
        if (more < 0) return fail(Error::syntax);
        if (more == 0) break;
      }
    }
    d.nodes_[idx].a = count;
    d.nodes_[idx].b = d.count_;
    --depth;
    return true;
  }

  bool object() {
    std::uint32_t idx;
    if (!enter() || !add(Type::object, idx)) return false;
    ++p;
    ws();
    const std::size_t base = d.keys_.size();
    std::uint32_t count = 0;
    if (p < end && *p == '}') {
      ++p;
    } else {
      while (true) {
        ws();
        if (p == end || *p != '"') return fail(Error::syntax);
        const char* key_at = p;
        std::uint32_t key;
        if (!add(Type::string, key) || !string(key)) return false;
        const std::string_view name = d.string_at(key);
        bool exact;
        const std::uint64_t f = fingerprint(name, exact);
        for (std::size_t k = base; k < d.keys_.size(); ++k) {
          if (d.keys_[k].fingerprint == f && (exact || d.string_at(d.keys_[k].node) == name)) {
            p = key_at;
            return fail(Error::duplicate_key);
          }
        }
        d.keys_.push_back({f, key});
        ws();
        if (p == end || *p != ':') return fail(Error::syntax);
        ++p;
        if (!value()) return false;
        ++count;
        const int more = after_member('}');
        if (more < 0) return fail(Error::syntax);
        if (more == 0) break;
      }
    }
    d.keys_.resize(base);
    d.nodes_[idx].a = count;
    d.nodes_[idx].b = d.count_;
    --depth;
    return true;
  }
};

Error Document::parse(std::string_view text, const Limits& limits) {
  text_.assign(text.data(), text.size());
  return parse_text(limits);
}

Error Document::parse_text(const Limits& limits) {
  count_ = 0;
  strings_.clear();
  keys_.clear();
  failed_ = true;
  error_offset_ = 0;
  if (text_.size() >= 0xFFFFFFFFu) return Error::too_many_nodes;
  Parser ps{*this, text_.data(), text_.data(), text_.data() + text_.size(), limits};
  if (ps.value()) {
    ps.ws();
    if (ps.p != ps.end) ps.fail(Error::trailing);
  }
  failed_ = ps.err != Error::none;
  return ps.err;
}

}  // namespace lg::json
