// Internal to the router: the segment trie of one host group.
//
// A path is split on '/' after its leading slash, so "/" is one empty segment and "/a/" is
// {"a", ""} ("/a" and "/a/" are different exact paths). Each node has static children (a short
// linear list, or a shared hash table when the fan-out is large), at most one ":param" child,
// and two terminal lists in config order: routes whose pattern ends here, and routes whose
// pattern ends here with "/*" (prefix routes).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lg {

namespace route_detail {

inline std::uint64_t load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline std::uint32_t load32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Keys are short: fixed-size (overlapping) loads instead of a memcmp call.
inline bool same_bytes(const char* a, const char* b, std::size_t n) {
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
  }
  if (n >= 4) return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

inline std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 29);
}

// Word-at-a-time hash of a short key; never 0 (0 marks an empty table slot).
inline std::uint32_t hash_bytes(const char* p, std::size_t len, std::uint64_t seed) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull) ^ seed;
  if (len > 8) {
    const char* last = p + len - 8;
    for (; p < last; p += 8) h = mix(h, load64(p));
    h = mix(h, load64(last));
  } else if (len >= 4) {
    h = mix(h, (static_cast<std::uint64_t>(load32(p)) << 32) | load32(p + len - 4));
  } else if (len > 0) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    h = mix(h, (std::uint64_t{u[0]} << 16) | (std::uint64_t{u[len / 2]} << 8) | u[len - 1]);
  }
  h *= 0x94d049bb133111ebull;
  h ^= h >> 32;
  return static_cast<std::uint32_t>(h) | 1u;
}

static_assert(std::endian::native == std::endian::little, "word-at-a-time scans");

// Index of the first '/' in p[pos, n), or n; eight bytes at a time.
inline std::size_t find_slash(const char* p, std::size_t pos, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  for (; pos + 8 <= n; pos += 8) {
    const std::uint64_t x = load64(p + pos) ^ (kOnes * '/');
    const std::uint64_t zero = (x - kOnes) & ~x & kHigh;  // lowest set bit marks the first '/'
    if (zero != 0) return pos + static_cast<std::size_t>(__builtin_ctzll(zero)) / 8;
  }
  while (pos < n && p[pos] != '/') ++pos;
  return pos;
}

}  // namespace route_detail

// State of one match() call, shared across the host groups it visits. No heap memory.
struct TrieMatch {
  static constexpr int kMaxParams = 8;
  static constexpr std::uint32_t kNone = 0xffffffffu;

  // Input.
  std::string_view path;  // normalized, starts with '/'
  std::uint16_t method = 0;

  // Result when found.
  bool found = false;
  std::uint32_t route = 0;
  const std::string_view* names = nullptr;  // param names of the matched pattern
  int param_count = 0;
  std::uint32_t value_off[kMaxParams];
  std::uint32_t value_len[kMaxParams];
  std::uint32_t rest_off = kNone;  // prefix routes: where the rest of the path begins

  // When nothing allows the method: what the path matched with other methods.
  bool path_matched = false;
  std::uint32_t best_route = 0;  // first route of the most preferred path match
  std::uint16_t allow = 0;       // union over every route whose pattern matched the path
};

class RouteTrie {
 public:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  RouteTrie();

  // Adds one path pattern of route `route`. On a bad pattern returns the message; when a route
  // with the same pattern and an overlapping method set exists, returns "" and sets *conflict to
  // it. Success: "" with *conflict == kNone. Call freeze() after the last insert.
  std::string insert(std::string_view pattern, std::uint32_t route, std::uint16_t methods,
                     std::uint32_t* conflict);

  // Builds the lookup structures; no insert() afterwards.
  void freeze();

  // Looks the path up: on success sets m.found and the result fields; otherwise accumulates the
  // path-match information. Never allocates.
  void match(TrieMatch& m) const;

  // Parses a pattern without inserting: the ":param" names in order and whether it ends in "/*".
  // Returns "" or the error message.
  static std::string parse(std::string_view pattern, std::vector<std::string>* params,
                           bool* is_prefix);

 private:
  struct Entry {
    std::uint32_t route;
    std::uint16_t methods;  // as configured
    std::uint16_t allowed;  // methods, plus HEAD when GET is set
    std::uint32_t names;    // index of the first param name in names_
  };
  // 32 bytes; short segments compare against `head` without touching segs_.
  struct Edge {
    std::uint32_t hash;  // 0 only for an empty table slot
    std::uint32_t parent;
    std::uint32_t child;
    std::uint32_t seg_len;
    std::uint32_t seg_off;  // into segs_
    char head[12];          // the first bytes of the segment, zero-padded
  };
  struct Node {
    std::uint32_t edge_begin = 0, edge_count = 0;  // into edges_ (after freeze)
    std::uint32_t param_child = kNone;
    std::uint32_t exact_begin = 0, exact_count = 0;    // into entries_ (after freeze)
    std::uint32_t prefix_begin = 0, prefix_count = 0;  // into entries_ (after freeze)
  };
  // Build-time per-node lists, flattened by freeze().
  struct BuildNode {
    std::map<std::string, std::uint32_t, std::less<>> children;  // segment -> index in edges_
    std::vector<Entry> exact, prefix;
  };
  struct Prefix;  // best prefix candidate of one match() call

  static constexpr std::uint32_t kLinearMax = 8;  // larger fan-outs use the hash table

  std::uint32_t find_static(const Node& node, std::uint32_t node_index, const char* seg,
                            std::uint32_t len) const;
  bool edge_is(const Edge& e, const char* seg, std::uint32_t len) const;
  void note_prefix(const Node& node, std::uint32_t rest, TrieMatch& m, Prefix& best) const;
  bool try_exact(const Node& node, TrieMatch& m, Prefix& best) const;
  bool walk(std::uint32_t node_index, std::size_t pos, TrieMatch& m, Prefix& best) const;
  static const Entry* pick(const Entry* begin, std::uint32_t count, std::uint16_t method);

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<Entry> entries_;
  std::string segs_;                     // static segment bytes
  std::vector<std::string> name_store_;  // param names; each entry's names are contiguous
  // Views into name_store_ (made by freeze()). The strings live in the vector's heap block,
  // so the views survive moves of the trie and of the Router.
  std::vector<std::string_view> names_;
  std::vector<Edge> table_;  // open addressing, for the edges of nodes with a large fan-out
  std::uint64_t table_mask_ = 0;
  std::vector<BuildNode> build_;
};

}  // namespace lg
