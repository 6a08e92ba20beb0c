// Target selection: smooth weighted round robin, least connections, consistent hashing.
#include "upstream/balancer.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

using namespace lg;

namespace {

UpstreamConfig make_group(BalanceKind kind, std::vector<std::uint32_t> weights,
                          std::vector<std::string> addresses = {}) {
  UpstreamConfig cfg;
  cfg.name = "g";
  cfg.balance = kind;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    TargetConfig t;
    t.address.host = "10.0.0." + std::to_string(i + 1);
    t.address.port = 8080;
    t.address.text = i < addresses.size() ? addresses[i] : t.address.host + ":8080";
    t.weight = weights[i];
    cfg.targets.push_back(t);
  }
  return cfg;
}

// Picks `n` times with the same view and mask; returns the sequence as letters ('-' for -1).
std::string sequence(const UpstreamConfig& cfg, const std::vector<TargetView>& view, RoundRobinState& rr,
                     int n, std::uint64_t skip = 0) {
  HashRing ring;
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int t = pick_target(cfg, ring, view, rr, {}, skip);
    s.push_back(t < 0 ? '-' : static_cast<char>('a' + t));
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// round robin

TEST_CASE("round robin: smooth weighted sequence 5,1,1 is nginx's a a b a c a a", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::round_robin, {5, 1, 1});
  std::vector<TargetView> view(3);
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 7) == "aabacaa");
  // The state returns to zero after one full period, so the sequence repeats exactly.
  CHECK(rr.current == std::vector<std::int64_t>{0, 0, 0});
  CHECK(sequence(cfg, view, rr, 14) == "aabacaaaabacaa");
}

TEST_CASE("round robin: equal weights rotate, weights proportional over a period", "[balancer]") {
  SECTION("1,1,1") {
    UpstreamConfig cfg = make_group(BalanceKind::round_robin, {1, 1, 1});
    std::vector<TargetView> view(3);
    RoundRobinState rr;
    CHECK(sequence(cfg, view, rr, 6) == "abcabc");
  }
  SECTION("3,2 interleaved") {
    UpstreamConfig cfg = make_group(BalanceKind::round_robin, {3, 2});
    std::vector<TargetView> view(2);
    RoundRobinState rr;
    CHECK(sequence(cfg, view, rr, 5) == "ababa");
  }
  SECTION("single target") {
    UpstreamConfig cfg = make_group(BalanceKind::round_robin, {7});
    std::vector<TargetView> view(1);
    RoundRobinState rr;
    CHECK(sequence(cfg, view, rr, 3) == "aaa");
  }
}

TEST_CASE("round robin: skip mask excludes targets already tried", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::round_robin, {1, 1, 1});
  std::vector<TargetView> view(3);
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 4, 0b001) == "bcbc");
  RoundRobinState rr2;
  CHECK(sequence(cfg, view, rr2, 3, 0b101) == "bbb");
  RoundRobinState rr3;
  CHECK(sequence(cfg, view, rr3, 2, 0b111) == "--");
}

TEST_CASE("round robin: unusable targets are skipped; all unusable gives -1", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::round_robin, {1, 1, 1});
  std::vector<TargetView> view(3);
  view[1].usable = false;
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 4) == "acac");
  view[0].usable = view[2].usable = false;
  CHECK(sequence(cfg, view, rr, 2) == "--");
}

TEST_CASE("round robin: weights with a down target share among the rest", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::round_robin, {5, 1, 1});
  std::vector<TargetView> view(3);
  view[0].usable = false;
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 4) == "bcbc");
}

TEST_CASE("round robin: a view shorter than the group never picks the missing targets", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::round_robin, {1, 1, 1});
  std::vector<TargetView> view(1);
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 3) == "aaa");
}

TEST_CASE("no targets: -1 for every policy", "[balancer]") {
  std::vector<TargetView> view;
  for (BalanceKind k : {BalanceKind::round_robin, BalanceKind::least_conn, BalanceKind::consistent_hash}) {
    UpstreamConfig cfg = make_group(k, {});
    HashRing ring(cfg.targets);
    CHECK(ring.empty());
    RoundRobinState rr;
    CHECK(pick_target(cfg, ring, view, rr, "key", 0) == -1);
  }
}

// ---------------------------------------------------------------------------------------------
// least connections

TEST_CASE("least_conn: fewest active requests wins", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::least_conn, {1, 1, 1});
  std::vector<TargetView> view(3);
  view[0].active = 4;
  view[1].active = 2;
  view[2].active = 3;
  RoundRobinState rr;
  HashRing ring;
  for (int i = 0; i < 5; ++i) CHECK(pick_target(cfg, ring, view, rr, {}, 0) == 1);
}

TEST_CASE("least_conn: load is relative to weight", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::least_conn, {4, 1});
  std::vector<TargetView> view(2);
  HashRing ring;
  RoundRobinState rr;
  view[0].active = 3;  // 0.75
  view[1].active = 1;  // 1.0
  CHECK(pick_target(cfg, ring, view, rr, {}, 0) == 0);
  view[0].active = 5;  // 1.25
  CHECK(pick_target(cfg, ring, view, rr, {}, 0) == 1);
  view[1].active = 0;
  view[0].active = 0;
  // Tie at 0: the cursor (advanced by the two picks above) decides, both get picked.
  std::string s;
  for (int i = 0; i < 4; ++i) s += std::to_string(pick_target(cfg, ring, view, rr, {}, 0));
  CHECK(s == "0101");
}

TEST_CASE("least_conn: ties rotate over all tied targets", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::least_conn, {1, 1, 1});
  std::vector<TargetView> view(3);
  RoundRobinState rr;
  CHECK(sequence(cfg, view, rr, 6) == "abcabc");
  SECTION("ties among a subset") {
    view[1].active = 1;
    RoundRobinState rr2;
    CHECK(sequence(cfg, view, rr2, 4) == "acca");
  }
}

TEST_CASE("least_conn: skip mask and unusable targets", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::least_conn, {1, 1, 1});
  std::vector<TargetView> view(3);
  view[0].active = 0;
  view[1].active = 5;
  view[2].active = 9;
  RoundRobinState rr;
  HashRing ring;
  CHECK(pick_target(cfg, ring, view, rr, {}, 0b001) == 1);
  view[1].usable = false;
  CHECK(pick_target(cfg, ring, view, rr, {}, 0b001) == 2);
  CHECK(pick_target(cfg, ring, view, rr, {}, 0b101) == -1);
  view[0].usable = view[2].usable = false;
  CHECK(pick_target(cfg, ring, view, rr, {}, 0) == -1);
}

// ---------------------------------------------------------------------------------------------
// consistent hash

TEST_CASE("hash32: deterministic and spreads nearby keys", "[balancer]") {
  CHECK(hash32("abc") == hash32("abc"));
  CHECK(hash32("abc") != hash32("abd"));
  CHECK(hash32("") == hash32(""));
  // FNV-1a offset basis through the murmur3 finalizer.
  std::uint32_t h = 2166136261u;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  CHECK(hash32("") == h);
}

TEST_CASE("consistent hash: same key, same target; keys spread over all targets", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::consistent_hash, {1, 1, 1, 1});
  HashRing ring(cfg.targets);
  REQUIRE_FALSE(ring.empty());
  std::vector<TargetView> view(4);
  RoundRobinState rr;
  std::vector<int> counts(4, 0);
  for (int k = 0; k < 10000; ++k) {
    const std::string key = "user-" + std::to_string(k);
    const int t = pick_target(cfg, ring, view, rr, key, 0);
    REQUIRE(t >= 0);
    REQUIRE(t < 4);
    ++counts[static_cast<std::size_t>(t)];
    REQUIRE(pick_target(cfg, ring, view, rr, key, 0) == t);
  }
  // A second ring built from the same config agrees.
  HashRing ring2(cfg.targets);
  for (int k = 0; k < 1000; ++k) {
    const std::string key = "k" + std::to_string(k);
    CHECK(ring.pick(key, [](std::uint32_t) { return true; }) == ring2.pick(key, [](std::uint32_t) { return true; }));
  }
  for (int c : counts) {
    CHECK(c > 1500);  // ideal 2500
    CHECK(c < 3500);
  }
}

TEST_CASE("consistent hash: removing one of 4 targets moves about a quarter of the keys", "[balancer]") {
  const std::vector<std::string> addrs = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"};
  UpstreamConfig full = make_group(BalanceKind::consistent_hash, {1, 1, 1, 1}, addrs);
  UpstreamConfig less = make_group(BalanceKind::consistent_hash, {1, 1, 1}, {addrs[0], addrs[1], addrs[3]});
  HashRing ring_full(full.targets), ring_less(less.targets);
  auto all = [](std::uint32_t) { return true; };
  int moved = 0, moved_from_kept = 0;
  const int kKeys = 10000;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "session-" + std::to_string(k);
    const int a = ring_full.pick(key, all);
    const int b = ring_less.pick(key, all);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    const std::string& before = full.targets[static_cast<std::size_t>(a)].address.text;
    const std::string& after = less.targets[static_cast<std::size_t>(b)].address.text;
    if (before != after) {
      ++moved;
      if (before != addrs[2]) ++moved_from_kept;
    }
  }
  const double share = static_cast<double>(moved) / kKeys;
  INFO("moved " << moved << " of " << kKeys);
  CHECK(share > 0.15);
  CHECK(share < 0.35);
  // Only keys of the removed target move.
  CHECK(moved_from_kept == 0);
}

TEST_CASE("consistent hash: an unusable target's keys go to the next target on the ring", "[balancer]") {
  const std::vector<std::string> addrs = {"a:1", "b:2", "c:3", "d:4"};
  UpstreamConfig cfg = make_group(BalanceKind::consistent_hash, {1, 1, 1, 1}, addrs);
  HashRing ring(cfg.targets);
  // Skipping target 2's points on the full ring is the same walk as a ring without them.
  UpstreamConfig without = make_group(BalanceKind::consistent_hash, {1, 1, 1}, {addrs[0], addrs[1], addrs[3]});
  HashRing ring_without(without.targets);
  const int map_without[3] = {0, 1, 3};

  std::vector<TargetView> view(4);
  RoundRobinState rr;
  std::vector<int> healthy(2000);
  for (int k = 0; k < 2000; ++k) healthy[k] = pick_target(cfg, ring, view, rr, "k" + std::to_string(k), 0);

  view[2].usable = false;
  int rerouted = 0;
  for (int k = 0; k < 2000; ++k) {
    const std::string key = "k" + std::to_string(k);
    const int t = pick_target(cfg, ring, view, rr, key, 0);
    REQUIRE(t != 2);
    const int expected = map_without[ring_without.pick(key, [](std::uint32_t) { return true; })];
    CHECK(t == expected);
    if (healthy[k] == 2) ++rerouted;
    else CHECK(t == healthy[k]);  // other keys stay put
  }
  CHECK(rerouted > 0);

  SECTION("skip mask behaves like unusable") {
    view[2].usable = true;
    for (int k = 0; k < 500; ++k) {
      const std::string key = "k" + std::to_string(k);
      const int t = pick_target(cfg, ring, view, rr, key, std::uint64_t{1} << 2);
      CHECK(t == map_without[ring_without.pick(key, [](std::uint32_t) { return true; })]);
    }
  }
  SECTION("all unusable gives -1") {
    for (auto& v : view) v.usable = false;
    CHECK(pick_target(cfg, ring, view, rr, "any", 0) == -1);
    CHECK(ring.pick("any", [](std::uint32_t) { return false; }) == -1);
  }
}

TEST_CASE("consistent hash: weight scales the share of keys", "[balancer]") {
  UpstreamConfig cfg = make_group(BalanceKind::consistent_hash, {3, 1});
  HashRing ring(cfg.targets);
  std::vector<TargetView> view(2);
  RoundRobinState rr;
  int heavy = 0;
  for (int k = 0; k < 10000; ++k) heavy += pick_target(cfg, ring, view, rr, "w" + std::to_string(k), 0) == 0;
  CHECK(heavy > 6500);  // ideal 7500
  CHECK(heavy < 8500);
}
