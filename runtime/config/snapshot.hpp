// One immutable, validated version of the configuration: routes, their trie, upstream groups.
// Built off the data plane (exceptions allowed), then published to every worker; a request pins
// the snapshot it started with, so a swap never changes a request mid-flight.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "router/router.hpp"
#include "upstream/balancer.hpp"

namespace lg {

struct UpstreamGroup {
  const UpstreamConfig* config = nullptr;  // points into Snapshot::config
  HashRing ring;                           // consistent_hash only
};

struct Snapshot {
  Config config;
  Router router;
  std::vector<UpstreamGroup> upstreams;    // same order as config.upstreams
  std::vector<std::uint32_t> route_upstream;  // route index -> upstream index
  std::string hash;                        // sha256 of the config file's bytes, hex
  std::chrono::system_clock::time_point loaded_at;
  std::uint64_t version = 0;               // 1 for the first snapshot, +1 per successful reload

  Snapshot(Config cfg, std::string file_text, std::uint64_t version);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
};

// Reads, validates and compiles a config file into a snapshot. Throws ConfigError with
// "file:line: key: message" lines.
std::shared_ptr<const Snapshot> build_snapshot(const std::string& path, std::uint64_t version);

}  // namespace lg
