// Strict, error-collecting reading of yaml-cpp nodes for the config loader. Nothing here throws:
// every problem is recorded as "file:line: key.path: message" and reading goes on, so one run
// reports all of them. Header-only; included by config_loader.cpp only.
#pragma once
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/units.hpp"

namespace lg::yaml_reader {

// 1-based line of a node, or `fallback` when yaml-cpp has no position (empty document).
inline int line_of(const YAML::Node& n, int fallback = 1) {
  const YAML::Mark m = n.Mark();
  return m.line >= 0 ? m.line + 1 : fallback;
}

// User text made safe for a one-line message: control characters escaped, long values cut.
inline std::string printable(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

inline std::string quoted(std::string_view s) { return "'" + printable(s) + "'"; }

// "a map", "a list", "null", or the scalar quoted: used in "expected X, got Y".
inline std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return quoted(n.Scalar());
    case YAML::NodeType::Null: return "null";
    default: return "nothing";
  }
}

class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}

  void add(int line, std::string_view path, std::string_view message) {
    items_.push_back({line, fmt::format("{}:{}: {}: {}", file_, line,
                                        path.empty() ? std::string_view("(root)") : path, message)});
  }
  bool empty() const { return items_.empty(); }

  // All problems, ordered by line (stable: same-line problems keep discovery order), '\n'-joined.
  std::string joined() const {
    auto items = items_;
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& a, const Item& b) { return a.line < b.line; });
    std::string out;
    for (const auto& it : items) {
      if (!out.empty()) out += '\n';
      out += it.text;
    }
    return out;
  }

 private:
  struct Item {
    int line;
    std::string text;
  };
  std::string file_;
  std::vector<Item> items_;
};

// A node to read, with its key path and the line where problems about it are reported
// (a map value: the line of its key; a list item: its own line).
struct Value {
  YAML::Node node;
  std::string path;
  int line = 1;
};

inline std::string join_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? printable(key) : fmt::format("{}.{}", parent, printable(key));
}
inline std::string index_path(std::string_view parent, std::size_t i) {
  return fmt::format("{}[{}]", parent, i);
}

// Items of a list value (null reads as an empty list). false + a problem if it is not a list.
inline bool list_items(Problems& p, const Value& v, std::vector<Value>& out) {
  if (v.node.IsNull()) return true;
  if (!v.node.IsSequence()) {
    p.add(v.line, v.path, "expected a list, got " + describe(v.node));
    return false;
  }
  std::size_t i = 0;
  for (const auto& item : v.node) {
    out.push_back({item, index_path(v.path, i), line_of(item, v.line)});
    ++i;
  }
  return true;
}

// The keys of one YAML map. Reports keys that are not strings and duplicate keys (yaml-cpp keeps
// both; the first one wins here). Keys read through get()/required()/all() are known; finish()
// reports the rest as unknown.
class MapReader {
 public:
  // A null value (a key with nothing under it, e.g. everything commented out) reads as an empty
  // map. Anything else that is not a map is reported and reads as empty: ok() is false.
  MapReader(Problems& p, const Value& v) : p_(p), self_(v) {
    if (v.node.IsNull()) return;
    if (!v.node.IsMap()) {
      p_.add(v.line, v.path, "expected a map, got " + describe(v.node));
      ok_ = false;
      return;
    }
    for (auto it = v.node.begin(); it != v.node.end(); ++it) {
      const YAML::Node& key = it->first;
      const int line = line_of(key, v.line);
      if (!key.IsScalar()) {
        p_.add(line, v.path, "map keys must be strings, got " + describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      auto first = std::find_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.key == name; });
      if (first != entries_.end()) {
        p_.add(line, join_path(v.path, name),
               fmt::format("duplicate key (first at line {})", first->value.line));
        continue;
      }
      entries_.push_back({name, {it->second, join_path(v.path, name), line}, false});
    }
  }

  bool ok() const { return ok_; }
  const Value& self() const { return self_; }

  std::optional<Value> get(std::string_view key) {
    for (auto& e : entries_) {
      if (e.key == key) {
        e.used = true;
        return e.value;
      }
    }
    return std::nullopt;
  }

  // Like get(); a missing key is reported at the map's line (only if the map itself was valid).
  std::optional<Value> required(std::string_view key) {
    auto v = get(key);
    if (!v && ok_) p_.add(self_.line, join_path(self_.path, key), "missing required key");
    return v;
  }

  // Every entry in document order, all marked as known (maps keyed by user-chosen names).
  std::vector<std::pair<std::string, Value>> all() {
    std::vector<std::pair<std::string, Value>> out;
    for (auto& e : entries_) {
      e.used = true;
      out.emplace_back(e.key, e.value);
    }
    return out;
  }

  // Keys reserved for features this version does not have: present -> a clear error.
  void unsupported(std::string_view key, std::string_view shown) {
    if (auto v = get(key)) p_.add(v->line, v->path, fmt::format("{} is not supported by this version of lunagate", shown));
  }
  void unsupported(std::string_view key) { unsupported(key, key); }

  void finish() {
    for (const auto& e : entries_) {
      if (e.used) continue;
      p_.add(e.value.line, e.value.path,
             e.key == "<<" ? "merge keys (<<) are not supported" : "unknown key");
    }
    entries_.clear();
  }

 private:
  struct Entry {
    std::string key;
    Value value;
    bool used;
  };
  Problems& p_;
  Value self_;
  bool ok_ = true;
  std::vector<Entry> entries_;
};

// ---- scalars -------------------------------------------------------------------------------

inline bool read_string(Problems& p, const Value& v, std::string& out, bool allow_empty = false) {
  if (!v.node.IsScalar()) {
    p.add(v.line, v.path, "expected a string, got " + describe(v.node));
    return false;
  }
  if (!allow_empty && v.node.Scalar().empty()) {
    p.add(v.line, v.path, "must not be empty");
    return false;
  }
  out = v.node.Scalar();
  return true;
}

// Optional '-' then decimal digits; anything else (hex, '1e3', '1_000', ' 5') is not an integer.
inline bool read_int(Problems& p, const Value& v, std::int64_t min, std::int64_t max,
                     std::int64_t& out) {
  if (!v.node.IsScalar()) {
    p.add(v.line, v.path, "expected an integer, got " + describe(v.node));
    return false;
  }
  const std::string& s = v.node.Scalar();
  const bool neg = !s.empty() && s[0] == '-';
  const std::string_view digits = std::string_view(s).substr(neg ? 1 : 0);
  const bool numeric = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (!numeric) {
    p.add(v.line, v.path, "expected an integer, got " + describe(v.node));
    return false;
  }
  // Magnitudes beyond 18 digits are out of any range used here.
  std::int64_t n = 0;
  bool overflow = digits.size() > 18;
  if (!overflow) {
    for (char c : digits) n = n * 10 + (c - '0');
    if (neg) n = -n;
  }
  if (overflow || n < min || n > max) {
    p.add(v.line, v.path, fmt::format("must be between {} and {}, got {}", min, max, printable(s)));
    return false;
  }
  out = n;
  return true;
}

template <class T>
bool read_uint(Problems& p, const Value& v, std::int64_t min, T& out,
               std::int64_t max = static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
  std::int64_t n = 0;
  if (!read_int(p, v, min, max, n)) return false;
  out = static_cast<T>(n);
  return true;
}

// YAML 1.2 booleans only: true/false (also True/TRUE/False/FALSE). yes/no/on/off are rejected.
inline bool read_bool(Problems& p, const Value& v, bool& out) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
    if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  }
  p.add(v.line, v.path, "expected a boolean (true or false), got " + describe(v.node));
  return false;
}

// A duration that must be > 0 (every duration in the config is a timeout or a period).
inline bool read_duration(Problems& p, const Value& v, Millis& out) {
  if (!v.node.IsScalar()) {
    p.add(v.line, v.path, "expected a duration (e.g. 250ms, 5s, 1m), got " + describe(v.node));
    return false;
  }
  const auto d = parse_duration(v.node.Scalar());
  if (!d) {
    p.add(v.line, v.path,
          fmt::format("invalid duration {} (use e.g. 250ms, 5s, 1m)", quoted(v.node.Scalar())));
    return false;
  }
  if (d->count() == 0) {
    p.add(v.line, v.path, fmt::format("must be greater than 0, got {}", quoted(v.node.Scalar())));
    return false;
  }
  out = *d;
  return true;
}

inline bool read_size(Problems& p, const Value& v, std::uint64_t min, std::uint64_t& out) {
  if (!v.node.IsScalar()) {
    p.add(v.line, v.path, "expected a size (e.g. 512, 64k, 10m, 1g), got " + describe(v.node));
    return false;
  }
  const auto n = parse_size(v.node.Scalar());
  if (!n) {
    p.add(v.line, v.path,
          fmt::format("invalid size {} (use e.g. 512, 64k, 10m, 1g)", quoted(v.node.Scalar())));
    return false;
  }
  if (*n < min) {
    p.add(v.line, v.path, fmt::format("must be at least {}, got {}", min, quoted(v.node.Scalar())));
    return false;
  }
  out = *n;
  return true;
}

// One of a fixed set of words; returns its index or -1 (reported).
inline int read_choice(Problems& p, const Value& v, std::initializer_list<std::string_view> words) {
  std::string expected;
  std::size_t i = 0;
  for (auto w : words) {
    if (i > 0) expected += i + 1 == words.size() ? " or " : ", ";
    expected += w;
    ++i;
  }
  if (!v.node.IsScalar()) {
    p.add(v.line, v.path, fmt::format("expected one of {}, got {}", expected, describe(v.node)));
    return -1;
  }
  i = 0;
  for (auto w : words) {
    if (v.node.Scalar() == w) return static_cast<int>(i);
    ++i;
  }
  p.add(v.line, v.path, fmt::format("invalid value {} (expected {})", quoted(v.node.Scalar()), expected));
  return -1;
}

// A string or a list of strings (each non-empty); `out` gets them with the value each came from.
inline bool read_string_or_list(Problems& p, const Value& v, std::vector<Value>& out) {
  if (v.node.IsScalar()) {
    if (v.node.Scalar().empty()) {
      p.add(v.line, v.path, "must not be empty");
      return false;
    }
    out.push_back(v);
    return true;
  }
  if (!v.node.IsSequence()) {
    p.add(v.line, v.path, "expected a string or a list of strings, got " + describe(v.node));
    return false;
  }
  if (v.node.size() == 0) {
    p.add(v.line, v.path, "must not be an empty list");
    return false;
  }
  std::vector<Value> items;
  list_items(p, v, items);
  bool ok = true;
  for (auto& item : items) {
    std::string ignored;
    if (read_string(p, item, ignored)) out.push_back(item);
    else ok = false;
  }
  return ok;
}

}  // namespace lg::yaml_reader
