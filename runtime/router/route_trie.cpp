#include "router/route_trie.hpp"

#include <algorithm>
#include <cstring>

#include "config/config.hpp"
#include "router/path_normalize.hpp"

namespace lg {
namespace {

using route_detail::same_bytes;

enum class SegKind { fixed, param, star };
struct Seg {
  SegKind kind;
  std::string text;  // fixed: the normalized segment; param: the name
};

// Splits and checks a pattern. Fixed segments are normalized like request paths, so
// "/caf%c3%a9" and "/%61dmin" match what normalize_path() produces.
std::string parse_segments(std::string_view pattern, std::vector<Seg>& out) {
  out.clear();
  if (pattern.empty() || pattern[0] != '/') return "path must start with '/'";
  std::string_view rest = pattern.substr(1);
  int params = 0;
  std::string norm;
  for (;;) {
    const std::size_t slash = rest.find('/');
    const bool last = slash == std::string_view::npos;
    const std::string_view seg = last ? rest : rest.substr(0, slash);
    if (seg == "*") {
      if (!last) return "'*' must be the last segment";
      out.push_back({SegKind::star, {}});
      break;
    }
    if (seg.find('*') != std::string_view::npos) return "'*' must be a whole segment";
    if (!seg.empty() && seg[0] == ':') {
      const std::string_view name = seg.substr(1);
      if (name.empty()) return "empty parameter name";
      for (const Seg& s : out) {
        if (s.kind == SegKind::param && s.text == name) {
          return "parameter ':" + std::string(name) + "' repeated";
        }
      }
      if (++params > TrieMatch::kMaxParams) {
        return "more than " + std::to_string(TrieMatch::kMaxParams) + " parameters";
      }
      out.push_back({SegKind::param, std::string(name)});
    } else {
      if (seg.empty() && !last) return "empty segment (\"//\")";
      if (!seg.empty()) {
        std::string raw = "/";
        raw.append(seg);
        if (const char* why = normalize_path(raw, norm)) return std::string("invalid path: ") + why;
        // Dot segments (also "%2e") would vanish: reject them instead of guessing.
        if (norm == "/") return "'.' and '..' segments are not allowed";
        out.push_back({SegKind::fixed, norm.substr(1)});
      } else {
        out.push_back({SegKind::fixed, {}});  // trailing slash
      }
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  return {};
}

std::uint32_t hash_segment(std::uint32_t parent, const char* p, std::size_t len) {
  return route_detail::hash_bytes(p, len, parent);
}

}  // namespace

struct RouteTrie::Prefix {
  const Entry* entry = nullptr;  // deepest prefix terminal allowing the method
  std::uint32_t rest_off = 0;
  int param_count = 0;
  std::uint32_t value_off[TrieMatch::kMaxParams];
  std::uint32_t value_len[TrieMatch::kMaxParams];
  bool any = false;  // some prefix terminal matched (any method)
  std::uint32_t any_rest_off = 0;
  std::uint32_t any_route = 0;
  bool complete_any = false;  // some exact terminal matched (any method)
  std::uint32_t complete_route = 0;
};

RouteTrie::RouteTrie() {
  nodes_.emplace_back();
  build_.emplace_back();
}

std::string RouteTrie::parse(std::string_view pattern, std::vector<std::string>* params,
                             bool* is_prefix) {
  std::vector<Seg> segs;
  std::string err = parse_segments(pattern, segs);
  if (!err.empty()) return err;
  if (params) {
    params->clear();
    for (const Seg& s : segs) {
      if (s.kind == SegKind::param) params->push_back(s.text);
    }
  }
  if (is_prefix) *is_prefix = !segs.empty() && segs.back().kind == SegKind::star;
  return {};
}

std::string RouteTrie::insert(std::string_view pattern, std::uint32_t route,
                              std::uint16_t methods, std::uint32_t* conflict) {
  *conflict = kNone;
  std::vector<Seg> segs;
  std::string err = parse_segments(pattern, segs);
  if (!err.empty()) return err;

  std::uint32_t node = 0;
  bool prefix = false;
  std::vector<std::string> names;
  for (Seg& s : segs) {
    if (s.kind == SegKind::star) {
      prefix = true;
      break;
    }
    if (s.kind == SegKind::param) {
      names.push_back(std::move(s.text));
      if (nodes_[node].param_child == kNone) {
        const auto child = static_cast<std::uint32_t>(nodes_.size());
        nodes_.emplace_back();
        build_.emplace_back();
        nodes_[node].param_child = child;
      }
      node = nodes_[node].param_child;
      continue;
    }
    std::uint32_t found = kNone;
    if (auto it = build_[node].children.find(s.text); it != build_[node].children.end()) {
      found = edges_[it->second].child;
    } else {
      found = static_cast<std::uint32_t>(nodes_.size());
      nodes_.emplace_back();
      build_.emplace_back();
      Edge edge{hash_segment(node, s.text.data(), s.text.size()), node, found,
                static_cast<std::uint32_t>(s.text.size()), static_cast<std::uint32_t>(segs_.size()),
                {}};
      std::memcpy(edge.head, s.text.data(), std::min(s.text.size(), sizeof edge.head));
      segs_.append(s.text);
      build_[node].children.emplace(std::move(s.text), static_cast<std::uint32_t>(edges_.size()));
      edges_.push_back(edge);
    }
    node = found;
  }

  std::vector<Entry>& list = prefix ? build_[node].prefix : build_[node].exact;
  for (const Entry& e : list) {
    if (e.methods & methods) {
      *conflict = e.route;
      return {};
    }
  }
  const std::uint16_t allowed =
      static_cast<std::uint16_t>(methods | ((methods & M_GET) ? M_HEAD : 0));
  list.push_back({route, methods, allowed, static_cast<std::uint32_t>(name_store_.size())});
  for (std::string& n : names) name_store_.push_back(std::move(n));
  return {};
}

void RouteTrie::freeze() {
  std::vector<Edge> edges;
  edges.reserve(edges_.size());
  entries_.clear();
  std::size_t large_edges = 0;
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    Node& node = nodes_[i];
    BuildNode& b = build_[i];
    node.edge_begin = static_cast<std::uint32_t>(edges.size());
    node.edge_count = static_cast<std::uint32_t>(b.children.size());
    for (const auto& [seg, e] : b.children) edges.push_back(edges_[e]);
    if (node.edge_count > kLinearMax) large_edges += node.edge_count;
    node.exact_begin = static_cast<std::uint32_t>(entries_.size());
    node.exact_count = static_cast<std::uint32_t>(b.exact.size());
    entries_.insert(entries_.end(), b.exact.begin(), b.exact.end());
    node.prefix_begin = static_cast<std::uint32_t>(entries_.size());
    node.prefix_count = static_cast<std::uint32_t>(b.prefix.size());
    entries_.insert(entries_.end(), b.prefix.begin(), b.prefix.end());
  }
  edges_ = std::move(edges);
  build_.clear();
  build_.shrink_to_fit();

  table_.clear();
  table_mask_ = 0;
  if (large_edges > 0) {
    std::size_t cap = 16;
    while (cap < large_edges * 2) cap <<= 1;
    table_.assign(cap, Edge{});
    table_mask_ = cap - 1;
    for (const Edge& e : edges_) {
      if (nodes_[e.parent].edge_count <= kLinearMax) continue;
      std::uint64_t slot = e.hash & table_mask_;
      while (table_[slot].hash != 0) slot = (slot + 1) & table_mask_;
      table_[slot] = e;
    }
  }

  names_.clear();
  names_.reserve(name_store_.size());
  for (const std::string& n : name_store_) names_.emplace_back(n);
}

[[gnu::always_inline]] inline bool RouteTrie::edge_is(const Edge& e, const char* seg, std::uint32_t len) const {
  if (e.seg_len != len) return false;
  if (len <= sizeof e.head) return same_bytes(e.head, seg, len);
  return same_bytes(segs_.data() + e.seg_off, seg, len);
}

[[gnu::always_inline]] inline std::uint32_t RouteTrie::find_static(const Node& node, std::uint32_t node_index, const char* seg,
                                     std::uint32_t len) const {
  if (node.edge_count <= kLinearMax) {
    const Edge* e = edges_.data() + node.edge_begin;
    for (std::uint32_t k = 0; k < node.edge_count; ++k) {
      if (edge_is(e[k], seg, len)) return e[k].child;
    }
    return kNone;
  }
  const std::uint32_t h = hash_segment(node_index, seg, len);
  for (std::uint64_t slot = h & table_mask_;; slot = (slot + 1) & table_mask_) {
    const Edge& e = table_[slot];
    if (e.hash == 0) return kNone;
    if (e.hash == h && e.parent == node_index && edge_is(e, seg, len)) return e.child;
  }
}

[[gnu::always_inline]] inline const RouteTrie::Entry* RouteTrie::pick(const Entry* begin, std::uint32_t count,
                                        std::uint16_t method) {
  for (std::uint32_t k = 0; k < count; ++k) {
    if (begin[k].methods & method) return begin + k;
  }
  if (method == M_HEAD) {  // an explicit HEAD route is preferred over HEAD-via-GET
    for (std::uint32_t k = 0; k < count; ++k) {
      if (begin[k].methods & M_GET) return begin + k;
    }
  }
  return nullptr;
}

void RouteTrie::note_prefix(const Node& node, std::uint32_t rest, TrieMatch& m,
                            Prefix& best) const {
  const Entry* list = entries_.data() + node.prefix_begin;
  for (std::uint32_t k = 0; k < node.prefix_count; ++k) m.allow |= list[k].allowed;
  if (!best.any || rest > best.any_rest_off) {
    best.any = true;
    best.any_rest_off = rest;
    best.any_route = list[0].route;
  }
  if (best.entry != nullptr && rest <= best.rest_off) return;  // not deeper than the one we have
  if (const Entry* e = pick(list, node.prefix_count, m.method)) {
    best.entry = e;
    best.rest_off = rest;
    best.param_count = m.param_count;
    for (int k = 0; k < m.param_count; ++k) {
      best.value_off[k] = m.value_off[k];
      best.value_len[k] = m.value_len[k];
    }
  }
}

[[gnu::always_inline]] inline bool RouteTrie::try_exact(const Node& node, TrieMatch& m, Prefix& best) const {
  const Entry* list = entries_.data() + node.exact_begin;
  if (const Entry* e = pick(list, node.exact_count, m.method)) {
    m.found = true;
    m.route = e->route;
    m.names = names_.data() + e->names;
    m.rest_off = TrieMatch::kNone;
    return true;
  }
  for (std::uint32_t k = 0; k < node.exact_count; ++k) m.allow |= list[k].allowed;
  if (!best.complete_any) {
    best.complete_any = true;
    best.complete_route = list[0].route;
  }
  return false;
}

// Depth-first, static child before param child. pos: where the next segment starts (just past
// a '/'); pos == path.size() + 1 once the whole path is consumed. Returns true when a complete
// match allowing the method was found, or when a prefix match below a static child settled the
// lookup (m.found stays false; the caller takes `best`); otherwise restores m.param_count. Recurses only where
// both a static and a param child could match; a single choice just moves down in the loop.
bool RouteTrie::walk(std::uint32_t node_index, std::size_t pos, TrieMatch& m,
                     Prefix& best) const {
  const int saved_params = m.param_count;
  const std::size_t n = m.path.size();
  const char* p = m.path.data();
  for (;;) {
    const Node& node = nodes_[node_index];
    if (node.prefix_count != 0) note_prefix(node, static_cast<std::uint32_t>(pos - 1), m, best);
    if (pos > n) {  // the whole path is consumed
      if (node.exact_count != 0 && try_exact(node, m, best)) return true;
      break;
    }
    const std::size_t end = route_detail::find_slash(p, pos, n);
    const auto len = static_cast<std::uint32_t>(end - pos);
    const bool param_ok = node.param_child != kNone && len != 0 &&
                          m.param_count < TrieMatch::kMaxParams;
    const std::uint32_t child =
        node.edge_count != 0 ? find_static(node, node_index, p + pos, len) : kNone;
    if (child != kNone) {
      if (!param_ok) {
        node_index = child;
        pos = end + 1;
        continue;
      }
      const Entry* before = best.entry;
      if (walk(child, end + 1, m, best)) return true;
      // Per segment an exact segment beats a parameter: a prefix route found below the static
      // child settles the match before the parameter branch is tried.
      if (best.entry != before) {
        m.param_count = saved_params;
        return true;
      }
    } else if (!param_ok) {
      break;
    }
    const int k = m.param_count++;
    m.value_off[k] = static_cast<std::uint32_t>(pos);
    m.value_len[k] = len;
    node_index = node.param_child;
    pos = end + 1;
  }
  m.param_count = saved_params;
  return false;
}

void RouteTrie::match(TrieMatch& m) const {
  Prefix best;
  m.param_count = 0;
  if (walk(0, 1, m, best) && m.found) return;
  if (best.entry != nullptr) {
    m.found = true;
    m.route = best.entry->route;
    m.names = names_.data() + best.entry->names;
    m.rest_off = best.rest_off;
    m.param_count = best.param_count;
    for (int k = 0; k < best.param_count; ++k) {
      m.value_off[k] = best.value_off[k];
      m.value_len[k] = best.value_len[k];
    }
    return;
  }
  m.param_count = 0;
  if (!m.path_matched && (best.complete_any || best.any)) {
    m.path_matched = true;
    m.best_route = best.complete_any ? best.complete_route : best.any_route;
  }
}

}  // namespace lg
