#include "core/shared_state.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace lg {

namespace {
std::size_t shard_index(std::string_view key, std::size_t n) { return std::hash<std::string_view>{}(key) % n; }
}  // namespace

SharedDict::SharedDict(std::size_t max_entries, unsigned shards)
    : shards_(shards), max_per_shard_(std::max<std::size_t>(1, max_entries / shards)) {}

SharedDict::Shard& SharedDict::shard_for(std::string_view key) { return shards_[shard_index(key, shards_.size())]; }

bool SharedDict::make_room(Shard& s, std::int64_t now_ms) {
  if (s.map.size() < max_per_shard_) return true;
  // Full: drop what has expired. Entries without a TTL are never evicted silently.
  std::erase_if(s.map, [now_ms](const auto& kv) { return kv.second.expires_ms && kv.second.expires_ms <= now_ms; });
  return s.map.size() < max_per_shard_;
}

SharedDict::Status SharedDict::get(std::string_view key, std::int64_t now_ms, Value& out) {
  Shard& s = shard_for(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return Status::not_found;
  if (it->second.expires_ms && it->second.expires_ms <= now_ms) {
    s.map.erase(it);
    return Status::not_found;
  }
  out = it->second.value;
  return Status::ok;
}

SharedDict::Status SharedDict::set(std::string_view key, const Value& v, std::int64_t ttl_ms, std::int64_t now_ms,
                                   bool at_least) {
  Shard& s = shard_for(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  const std::int64_t expires = ttl_ms > 0 ? now_ms + ttl_ms : 0;
  if (it == s.map.end()) {
    if (!make_room(s, now_ms)) return Status::full;
    it = s.map.emplace(std::string(key), Entry{}).first;
  } else if (at_least && (it->second.expires_ms == 0 || it->second.expires_ms > now_ms)) {  // alive
    if (it->second.expires_ms == 0 || (expires != 0 && it->second.expires_ms >= expires)) return Status::ok;
  }
  it->second.value = v;
  it->second.expires_ms = expires;
  return Status::ok;
}

SharedDict::Status SharedDict::incr(std::string_view key, double delta, double init, std::int64_t ttl_ms,
                                    std::int64_t now_ms, double& out) {
  Shard& s = shard_for(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end() && it->second.expires_ms && it->second.expires_ms <= now_ms) {
    s.map.erase(it);
    it = s.map.end();
  }
  if (it == s.map.end()) {
    if (!make_room(s, now_ms)) return Status::full;
    Entry e;
    e.value.is_number = true;
    e.value.number = init;
    e.expires_ms = ttl_ms > 0 ? now_ms + ttl_ms : 0;  // the TTL starts with the key, like Redis INCR+EXPIRE NX
    it = s.map.emplace(std::string(key), std::move(e)).first;
  } else if (!it->second.value.is_number) {
    return Status::not_a_number;
  }
  it->second.value.number += delta;
  out = it->second.value.number;
  return Status::ok;
}

bool SharedDict::erase(std::string_view key) {
  Shard& s = shard_for(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  s.map.erase(it);
  return true;
}

std::size_t SharedDict::size() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace lg
