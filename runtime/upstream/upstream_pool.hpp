// Per-worker keep-alive pools and passive health, one TargetState per upstream address.
// Owned by one worker thread: no locks.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sys/socket.h>

#include "config/config.hpp"

namespace lg {

class TlsClientContext;
class UpstreamConnection;
class Worker;

struct TargetState {
  std::string key;  // "ip:port"
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::vector<UpstreamConnection*> idle;  // most recently used last
  std::uint32_t active = 0;               // requests in flight from this worker
  std::uint32_t failures = 0;             // consecutive failures
  std::int64_t down_until_ms = 0;         // passive health: skipped until then
  // From the (last published) upstream group that names this address.
  std::uint32_t max_idle = 64;
  std::int64_t idle_timeout_ms = 60'000;
  std::uint32_t max_requests = 10'000;
  std::uint32_t failure_threshold = 3;
  std::int64_t down_for_ms = 10'000;
  // TLS to this target (upstreams.<name>.tls; null: plain), from the last published snapshot.
  // A TLS group's targets are its own (not shared with other groups naming the same address).
  std::shared_ptr<const TlsClientContext> tls;
  std::string host_name;  // the target's host as written when it is a name (default SNI), else empty
  std::string host_ip;    // its numeric address (verified when there is no name)

  // The name a TLS connection to this target sends as SNI and verifies: the configured one,
  // the client's Host for `sni: host` (when given), else the target's host name or none.
  // A view of the configured SNI, the target's host name or part of `client_host`.
  std::string_view tls_name(std::string_view client_host) const;

  bool usable(std::int64_t now_ms) const { return now_ms >= down_until_ms; }
};

class UpstreamPool {
 public:
  explicit UpstreamPool(Worker& w) : worker_(w) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Finds or creates the state for a target and applies the group's pool settings.
  TargetState* target_for(const TargetConfig& t, const UpstreamConfig& group,
                          std::shared_ptr<const TlsClientContext> tls = nullptr);

  // Returns a pooled connection (ownership of the pool's reference passes to the caller) or null.
  // For TLS targets only one made for `tls_name` (the SNI) with the target's current context;
  // pooled ones from an older TLS context are closed.
  UpstreamConnection* take_idle(TargetState& t, std::string_view tls_name = {});
  // Pools a connection after a complete, reusable exchange. The pool takes its own reference.
  // Returns false (and the caller closes it) when the pool is full or the connection is worn out.
  bool put_idle(UpstreamConnection* c);
  // The user of a busy connection is done with it: pooled when `reusable` (and the pool takes
  // it), else closed; either way the user's reference is dropped.
  void release_busy(UpstreamConnection* c, bool reusable);
  // Drops a pooled connection that the target closed or that idled out.
  void forget(UpstreamConnection* c);

  void record_success(TargetState& t) { t.failures = 0; }
  void record_failure(TargetState& t, std::int64_t now_ms);

  void close_all_idle();

 private:
  Worker& worker_;
  std::unordered_map<std::string, std::unique_ptr<TargetState>> targets_;
};

}  // namespace lg
