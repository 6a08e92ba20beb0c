// A worker: one thread, one Reactor (epoll), its own listeners (SO_REUSEPORT), upstream pools,
// metrics, access log and view of the current snapshot. Nothing here is shared with another
// worker on the request path; other threads talk to a worker only by posting to its reactor.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>


#include "admin/metrics.hpp"
#include "config/snapshot.hpp"
#include "core/request_id.hpp"
#include "core/shared_state.hpp"
#include "http/message.hpp"
#include "log/access_log.hpp"
#include "lua/engine.hpp"
#include "net/buffer.hpp"
#include "net/reactor.hpp"
#include "net/timer_wheel.hpp"
#include "upstream/balancer.hpp"
#include "upstream/upstream_pool.hpp"

namespace lg {

class ClientConnection;
class ExchangePool;
class Listener;
class LogTask;
namespace redis {
class RedisClient;
class RemoteLimiter;
class RevocationLookups;
}
namespace policy {
class RemoteLimits;
class RemoteRevocations;
}

// This worker's view of one upstream group of a snapshot.
struct WorkerGroup {
  std::vector<TargetState*> targets;
  RoundRobinState rr;
  std::vector<TargetView> view;  // scratch filled before each pick
  std::uint32_t metrics_slot = 0;
  std::uint32_t retries_slot = 0;  // gateway_upstream_retries_total{upstream}
  // gateway_script_subrequests_total{upstream,result}: ok, timeout, error (resolved on first use)
  std::uint32_t subrequest_slots[3] = {WorkerMetrics::kUnresolved, WorkerMetrics::kUnresolved,
                                       WorkerMetrics::kUnresolved};
};

// A route's policy counters on this worker, resolved on their first event.
struct RoutePolicySlots {
  std::uint32_t exceeded = WorkerMetrics::kUnresolved;             // gateway_rate_limit_exceeded_total
  std::uint32_t bypassed = WorkerMetrics::kUnresolved;             // gateway_rate_limit_bypassed_total
  std::uint32_t revocation_bypassed = WorkerMetrics::kUnresolved;  // gateway_jwt_revocation_bypassed_total
};

// A snapshot pinned by this worker, with worker-local derived state. Reference counted without
// atomics: only this worker's thread touches it. Requests acquire it when they start.
struct PinnedSnapshot {
  std::shared_ptr<const Snapshot> snap;
  lua::Engine* engine = nullptr;
  std::unique_ptr<lua::CompiledScripts> scripts;  // the snapshot's scripts in this worker's Vm
  std::vector<WorkerGroup> groups;             // per upstream index
  std::vector<std::uint32_t> route_metrics;    // per route index
  std::vector<RoutePolicySlots> policy_slots;  // per route index
  std::uint32_t refs = 1;
  void acquire() { ++refs; }
  void release() {
    if (--refs == 0) delete this;
  }
  ~PinnedSnapshot() {
    if (engine && scripts) engine->release(*scripts);
  }
};

class Worker {
 public:
  Worker(unsigned id, const Config& initial, int access_log_fd, SharedState* shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds this worker's listeners (throws on failure) and starts its thread.
  void start(const std::vector<ListenConfig>& listen, std::shared_ptr<const Snapshot> first);
  void join();

  // Callable from any thread: each posts to the worker.
  void publish(std::shared_ptr<const Snapshot> s);
  void begin_drain(std::function<void()> on_idle);  // on_idle runs on this worker when no connection is left
  void stop();
  void collect_metrics(std::function<void(MetricsData)> done);

  // Worker thread only.
  unsigned id() const { return id_; }
  Reactor& reactor() { return reactor_; }
  // Deletes after the current turn, so no callback still on the stack touches freed memory.
  template <class T>
  void defer_delete(T* obj) {
    reactor_.defer([](void* p) { delete static_cast<T*>(p); }, obj);
  }
  PinnedSnapshot* pin() {
    current_->acquire();
    return current_;
  }
  const LimitsConfig& limits() const { return current_->snap->config.limits; }
  // The current snapshot's TLS context for listener `i` (null: plain).
  const std::shared_ptr<const TlsContext>& listen_tls(std::size_t i) const {
    static const std::shared_ptr<const TlsContext> none;
    const auto& v = current_->snap->listen_tls;
    return i < v.size() ? v[i] : none;
  }
  UpstreamPool& pool() { return pool_; }
  WorkerMetrics& metrics() { return metrics_; }
  // gateway_tls_handshakes_total{result}: ok, failed (protocol, certificate, plain HTTP...), timeout
  enum class TlsResult : std::uint8_t { ok, failed, timeout };
  void tls_handshake_done(TlsResult r) { metrics_.add(tls_slots_[static_cast<int>(r)]); }
  AccessLog& access_log() { return access_log_; }
  TimerWheel& timers() { return timers_; }
  BufferPool& buffers() { return buffers_; }
  ExchangePool& exchanges() { return *exchanges_; }
  IdGenerator& ids() { return ids_; }
  lua::Engine& engine() { return *engine_; }
  SharedState* shared_state() { return shared_; }
  // Redis-backed rate limits and JWT revocation lookups on this worker's own connection (null:
  // no `redis` section).
  policy::RemoteLimits* remote_limits();
  policy::RemoteRevocations* remote_revocations();
  std::vector<http::Header>& scratch_headers() { return headers_; }
  bool draining() const { return draining_; }

  void connection_opened(ClientConnection* c);
  void connection_closed(ClientConnection* c);
  // Log phases still waiting after their connection moved on (a drain waits for them).
  void log_task_started(LogTask* t) { log_tasks_.insert(t); }
  void log_task_ended(LogTask* t);
  std::size_t log_tasks() const { return log_tasks_.size(); }
  bool accepting_more() const;

 private:
  void install(std::shared_ptr<const Snapshot> s);
  void check_drained();
  void on_tick();

  unsigned id_;
  Reactor reactor_;
  std::thread thread_;
  BufferPool buffers_;
  std::unique_ptr<ExchangePool> exchanges_;
  TimerWheel timers_;
  UpstreamPool pool_;
  WorkerMetrics metrics_;
  AccessLog access_log_;
  IdGenerator ids_;
  std::unique_ptr<lua::Engine> engine_;
  SharedState* shared_;  // process-wide, owned by the Gateway
  std::unique_ptr<redis::RedisClient> redis_;  // declared first: its users go before it
  std::unique_ptr<redis::RemoteLimiter> remote_;
  std::unique_ptr<redis::RevocationLookups> revocations_;
  std::vector<http::Header> headers_;
  std::uint32_t tls_slots_[3] = {};
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_set<ClientConnection*> connections_;
  std::unordered_set<LogTask*> log_tasks_;
  PinnedSnapshot* current_ = nullptr;
  bool draining_ = false;
  std::function<void()> on_drained_;
};

}  // namespace lg
