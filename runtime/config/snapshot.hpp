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
#include "policy/policy.hpp"
#include "router/router.hpp"
#include "upstream/balancer.hpp"

namespace lg {

class TlsContext;
class TlsClientContext;
namespace auth {
class JwksProvider;
}

struct UpstreamGroup {
  const UpstreamConfig* config = nullptr;  // points into Snapshot::config
  HashRing ring;                           // consistent_hash only
};

// A script file as read when the snapshot was built (compiled per worker at install).
struct ScriptSource {
  std::string name;    // scripts/<name>.lua
  std::string path;    // as opened, for messages: "scripts/tenant-header.lua"
  std::string source;
  std::string sha256;
};

// One script attached to a route: which source, and the attachment's config and budget.
struct ScriptAttachment {
  std::uint32_t script = 0;            // index into Snapshot::scripts
  const ScriptRef* ref = nullptr;      // points into Snapshot::config
  std::int64_t cpu_ms = 0;
  std::uint64_t memory = 0;
};

struct Snapshot {
  Config config;
  Router router;
  std::vector<UpstreamGroup> upstreams;    // same order as config.upstreams
  std::vector<std::uint32_t> route_upstream;  // route index -> upstream index
  std::vector<ScriptSource> scripts;          // every script a route or scripts.global names
  std::string scripts_dir;                    // scripts.dir resolved against the config's folder
  std::vector<std::vector<ScriptAttachment>> route_scripts;  // route index -> global, then own
  std::unique_ptr<policy::CompiledPolicies> policies;       // consumers, and each route's chain
  // Per listener (config.listen order): its TLS context, null for plain ones. Certificate files
  // are read with the snapshot, so a reload picks up new ones (net/tls_context.hpp).
  std::vector<std::shared_ptr<const TlsContext>> listen_tls;
  // Per upstream group (config.upstreams order): its TLS client context, null for plain ones.
  std::vector<std::shared_ptr<const TlsClientContext>> upstream_tls;
  std::string hash;                        // sha256 of the config file's bytes, hex
  std::chrono::system_clock::time_point loaded_at;
  std::uint64_t version = 0;               // 1 for the first snapshot, +1 per successful reload

  // `jwks`: the fetcher jwt policies' jwks_url sources come from (null: nothing is fetched).
  Snapshot(Config cfg, std::string file_text, std::uint64_t version, auth::JwksProvider* jwks = nullptr);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

 private:
  void load_scripts();  // reads every script a route names; throws ConfigError with file:line
};

// Reads, validates and compiles a config file into a snapshot. Throws ConfigError with
// "file:line: key: message" lines. With `jwks`, a jwks_url not fetched yet is fetched now
// (bounded by its jwks_timeout; a failure is logged and the snapshot still builds).
std::shared_ptr<const Snapshot> build_snapshot(const std::string& path, std::uint64_t version,
                                               auth::JwksProvider* jwks = nullptr);

}  // namespace lg
