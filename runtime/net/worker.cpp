#include "net/worker.hpp"

#include "proxy/log_task.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "core/clock.hpp"
#include "net/listener.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/exchange.hpp"
#include "redis/remote_limits.hpp"
#include "redis/revocations.hpp"

namespace lg {

namespace {
constexpr std::int64_t kTickMs = 50;

// A read block holds a whole request head plus room to stream bodies through.
std::size_t block_size_for(const LimitsConfig& l) {
  std::size_t want = std::max<std::size_t>(16 * 1024, l.max_header_bytes + 4096);
  want = std::max<std::size_t>(want, l.max_response_header_bytes + 4096);
  return (want + 4095) & ~std::size_t{4095};
}

std::uint64_t seed_for(unsigned id) {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ (static_cast<std::uint64_t>(id) << 48);
}
}  // namespace

Worker::Worker(unsigned id, const Config& initial, int access_log_fd, SharedState* shared)
    : id_(id),
      buffers_(block_size_for(initial.limits), 256),  // blocks kept for reuse after a burst
      exchanges_(std::make_unique<ExchangePool>()),
      pool_(*this),
      access_log_(access_log_fd, id),
      ids_(seed_for(id)),
      engine_(std::make_unique<lua::Engine>()),
      shared_(shared) {
  headers_.reserve(initial.limits.max_headers + 1);
  const char* results[] = {"ok", "failed", "timeout"};
  for (int i = 0; i < 3; ++i)
    tls_slots_[i] = metrics_.series("gateway_tls_handshakes_total", "TLS handshakes on client listeners by result.",
                                    std::string("result=\"") + results[i] + "\"");
  if (const auto& rc = initial.redis) {
    redis_ = std::make_unique<redis::RedisClient>(
        reactor_, redis::RedisClient::Options{rc->address.host, rc->address.port, rc->timeout.count(), rc->max_pending,
                                              rc->reconnect_min.count(), rc->reconnect_max.count()});
    remote_ = std::make_unique<redis::RemoteLimiter>(reactor_, *redis_, *rc, initial.workers);
    revocations_ = std::make_unique<redis::RevocationLookups>(*redis_, rc->on_failure == RedisConfig::OnFailure::open);
  }
}

Worker::~Worker() {
  if (current_) current_->release();
}

void Worker::start(const std::vector<ListenConfig>& listen, std::shared_ptr<const Snapshot> first) {
  install(std::move(first));
  for (std::size_t i = 0; i < listen.size(); ++i) listeners_.push_back(std::make_unique<Listener>(*this, listen[i], i));
  reactor_.set_tick(kTickMs, [](void* self) { static_cast<Worker*>(self)->on_tick(); }, this);
  if (redis_) redis_->start();  // connects; the thread below drives it
  thread_ = std::thread([this] {
    for (;;) {
      try {
        reactor_.run();
        return;
      } catch (const std::exception& e) {
        // Handlers do not throw by design; if one does, log it and keep the worker serving.
        spdlog::critical("worker {}: unexpected exception: {}", id_, e.what());
      }
    }
  });
}

void Worker::on_tick() {
  timers_.tick();
  if (redis_) {
    redis_->tick(monotonic_ms());
    remote_->tick();
  }
  for (auto& l : listeners_) l->retry_if_paused();
  access_log_.flush();
}

policy::RemoteLimits* Worker::remote_limits() { return remote_.get(); }
policy::RemoteRevocations* Worker::remote_revocations() { return revocations_.get(); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::publish(std::shared_ptr<const Snapshot> s) {
  reactor_.post([this, s = std::move(s)]() mutable { install(std::move(s)); });
}

void Worker::install(std::shared_ptr<const Snapshot> s) {
  auto* p = new PinnedSnapshot;
  p->snap = std::move(s);
  const Snapshot& snap = *p->snap;
  p->groups.resize(snap.upstreams.size());
  for (std::size_t g = 0; g < snap.upstreams.size(); ++g) {
    const UpstreamConfig& cfg = *snap.upstreams[g].config;
    WorkerGroup& wg = p->groups[g];
    const auto tls = g < snap.upstream_tls.size() ? snap.upstream_tls[g] : nullptr;
    for (const TargetConfig& t : cfg.targets) wg.targets.push_back(pool_.target_for(t, cfg, tls));
    wg.view.resize(wg.targets.size());
    // Stagger the cursors: worker k starts k picks in, so N workers do not all send their first
    // requests to the same target.
    if (cfg.balance != BalanceKind::consistent_hash)
      for (unsigned k = 0; k < id_ % std::max<std::size_t>(1, cfg.targets.size()); ++k)
        pick_target(cfg, snap.upstreams[g].ring, wg.view, wg.rr, {}, 0);
    wg.metrics_slot = metrics_.upstream_slot(cfg.name);
    wg.retries_slot = metrics_.series("gateway_upstream_retries_total",
                                      "Requests resent on a fresh connection after a pooled one turned out closed.",
                                      "upstream=\"" + cfg.name + "\"");
  }
  p->engine = engine_.get();
  p->scripts = engine_->compile(snap);
  for (std::size_t i = 0; i < p->scripts->errors.size(); ++i)
    if (!p->scripts->errors[i].empty())
      spdlog::error("worker {}: script {} did not load: {}", id_, snap.scripts[i].name, p->scripts->errors[i]);
  p->route_metrics.reserve(snap.config.routes.size());
  for (const RouteConfig& r : snap.config.routes) p->route_metrics.push_back(metrics_.route_slot(r.name, r.upstream));
  p->policy_slots.resize(snap.config.routes.size());
  PinnedSnapshot* old = current_;
  current_ = p;
  if (old) old->release();  // requests in flight keep their own reference
}

void Worker::begin_drain(std::function<void()> on_idle) {
  reactor_.post([this, on_idle = std::move(on_idle)]() mutable {
    draining_ = true;
    on_drained_ = std::move(on_idle);
    for (auto& l : listeners_) l->close();
    // Copy: closing an idle connection removes it from the set.
    std::vector<ClientConnection*> conns(connections_.begin(), connections_.end());
    for (ClientConnection* c : conns) c->drain();
    check_drained();
  });
}

void Worker::stop() {
  reactor_.post([this] {
    for (auto& l : listeners_) l->close();
    std::vector<ClientConnection*> conns(connections_.begin(), connections_.end());
    for (ClientConnection* c : conns) c->abort();
    std::vector<LogTask*> tasks(log_tasks_.begin(), log_tasks_.end());
    for (LogTask* t : tasks) t->abort();
    pool_.close_all_idle();
    access_log_.flush();
    reactor_.stop();
  });
}

void Worker::collect_metrics(std::function<void(MetricsData)> done) {
  reactor_.post([this, done = std::move(done)] { done(metrics_.data()); });
}

void Worker::connection_opened(ClientConnection* c) {
  connections_.insert(c);
  metrics_.connection_opened();
}

void Worker::connection_closed(ClientConnection* c) {
  if (connections_.erase(c)) metrics_.connection_closed();
  if (draining_) check_drained();
}

bool Worker::accepting_more() const {
  return !draining_ && connections_.size() < current_->snap->config.limits.max_connections;
}

void Worker::log_task_ended(LogTask* t) {
  log_tasks_.erase(t);
  if (draining_) check_drained();
}

void Worker::check_drained() {
  if (connections_.empty() && log_tasks_.empty() && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

}  // namespace lg
