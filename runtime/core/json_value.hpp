// A small strict JSON parser (RFC 8259) for native code: JWT headers and claims, JWKS files.
// The document is a flat tape of nodes over its own copy of the text, so a parse allocates
// nothing once the document's buffers have grown (keep one Document and reuse it).
//
// Strict: no trailing commas, comments, BOM, NaN/Infinity, leading zeros or '+'; strings must be
// valid UTF-8 without raw control characters or lone surrogates; duplicate object member names
// are an error (parsers disagree about which one wins). Depth and node count are bounded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lg::json {

enum class Type : std::uint8_t { null, boolean, number, string, array, object };

enum class Error : std::uint8_t {
  none,
  syntax,          // unexpected character or end of text
  bad_string,      // bad escape, raw control character, invalid UTF-8, lone surrogate
  bad_number,      // RFC 8259 grammar violation or a magnitude a double cannot hold
  duplicate_key,   // an object names the same member twice
  too_deep,        // nesting deeper than Limits::max_depth
  too_many_nodes,  // more values than Limits::max_nodes
  trailing,        // non-whitespace after the root value
};
std::string_view error_text(Error e);

struct Limits {
  std::uint32_t max_depth = 32;
  std::uint32_t max_nodes = 4096;
};

class Document;

// A view of one value inside a Document; valid while the document is neither re-parsed nor
// destroyed. A default (or not-found) Value is invalid: every accessor then returns a neutral
// result (type null, empty string, size 0).
class Value {
 public:
  Value() = default;
  explicit operator bool() const { return doc_ != nullptr; }
  Type type() const;
  bool is_null() const { return doc_ && type() == Type::null; }
  bool is_bool() const { return doc_ && type() == Type::boolean; }
  bool is_number() const { return doc_ && type() == Type::number; }
  bool is_string() const { return doc_ && type() == Type::string; }
  bool is_array() const { return doc_ && type() == Type::array; }
  bool is_object() const { return doc_ && type() == Type::object; }

  bool as_bool() const;               // false unless `true`
  double as_double() const;           // 0 unless a number
  // True for a number written as an integer (no fraction or exponent) that fits in int64.
  bool as_int64(std::int64_t& out) const;
  std::string_view str() const;       // unescaped string; empty unless a string

  std::size_t size() const;           // elements of an array, members of an object, else 0
  Value find(std::string_view key) const;  // object member by name, or invalid

  // Iteration over an array's elements, or an object's members (key() names the member).
  Value first() const;                // first element / member value, or invalid
  Value next() const;                 // the following sibling in the same container, or invalid
  std::string_view key() const;       // name of this member when reached through an object

 private:
  friend class Document;
  Value(const Document* d, std::uint32_t i, std::uint32_t parent_end, bool in_object)
      : doc_(d), idx_(i), end_(parent_end), in_object_(in_object) {}
  const Document* doc_ = nullptr;
  std::uint32_t idx_ = 0;
  std::uint32_t end_ = 0;    // end of the parent container's tape range (for next())
  bool in_object_ = false;   // reached as an object member: the key node precedes it
};

class Document {
 public:
  // Copies `text` and parses it. On error, root() is invalid and error_offset() says where.
  Error parse(std::string_view text, const Limits& limits = {});
  // Parses what the caller wrote into text() (saves the copy when decoding into it).
  std::string& text() { return text_; }
  Error parse_text(const Limits& limits = {});

  Value root() const { return count_ == 0 || failed_ ? Value() : Value(this, 0, 1, false); }
  std::size_t error_offset() const { return error_offset_; }

 private:
  friend class Value;
  friend struct Parser;
  struct Node {
    Type type;
    bool in_scratch;      // string: unescaped copy lives in strings_ (else a slice of text_)
    bool is_int;          // number: written as an integer that fits int64
    std::uint32_t a = 0;  // string: offset; container: element/member count
    std::uint32_t b = 0;  // string: length; container: tape index just past its subtree
    union {
      double d;
      std::int64_t i;
    } num{};
  };
  std::uint32_t end_of(std::uint32_t i) const {
    const Node& n = nodes_[i];
    return n.type == Type::array || n.type == Type::object ? n.b : i + 1;
  }
  std::string_view string_at(std::uint32_t i) const {
    const Node& n = nodes_[i];
    const std::string& s = n.in_scratch ? strings_ : text_;
    return std::string_view(s.data() + n.a, n.b);
  }

  std::string text_;
  std::string strings_;             // unescaped strings
  std::vector<Node> nodes_;          // grown, never shrunk: the first count_ are this parse's
  std::uint32_t count_ = 0;
  struct Key {
    std::uint64_t fingerprint;  // short names: the bytes themselves (exact); long: a hash
    std::uint32_t node;
  };
  std::vector<Key> keys_;           // parse scratch: the keys of the objects being parsed
  std::size_t error_offset_ = 0;
  bool failed_ = true;
};

// ---- Value: small and hot, so inline ----

inline Type Value::type() const { return doc_ ? doc_->nodes_[idx_].type : Type::null; }

inline bool Value::as_bool() const { return is_bool() && doc_->nodes_[idx_].is_int; }

inline double Value::as_double() const {
  if (!is_number()) return 0;
  const auto& n = doc_->nodes_[idx_];
  return n.is_int ? static_cast<double>(n.num.i) : n.num.d;
}

inline bool Value::as_int64(std::int64_t& out) const {
  if (!is_number() || !doc_->nodes_[idx_].is_int) return false;
  out = doc_->nodes_[idx_].num.i;
  return true;
}

inline std::string_view Value::str() const { return is_string() ? doc_->string_at(idx_) : std::string_view(); }

inline std::size_t Value::size() const {
  return is_array() || is_object() ? doc_->nodes_[idx_].a : 0;
}

inline Value Value::find(std::string_view key) const {
  if (!is_object()) return {};
  const std::uint32_t end = doc_->nodes_[idx_].b;
  for (std::uint32_t i = idx_ + 1; i < end; i = doc_->end_of(i + 1))
    if (doc_->string_at(i) == key) return Value(doc_, i + 1, end, true);
  return {};
}

inline Value Value::first() const {
  if (size() == 0) return {};
  const std::uint32_t end = doc_->nodes_[idx_].b;
  return is_object() ? Value(doc_, idx_ + 2, end, true) : Value(doc_, idx_ + 1, end, false);
}

inline Value Value::next() const {
  if (!doc_) return {};
  const std::uint32_t j = doc_->end_of(idx_);
  if (j >= end_) return {};
  return Value(doc_, in_object_ ? j + 1 : j, end_, in_object_);
}

inline std::string_view Value::key() const { return doc_ && in_object_ ? doc_->string_at(idx_ - 1) : std::string_view(); }

}  // namespace lg::json
