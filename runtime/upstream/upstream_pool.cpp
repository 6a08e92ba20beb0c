#include "upstream/upstream_pool.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "net/timer_wheel.hpp"
#include "net/tls_context.hpp"
#include "net/worker.hpp"
#include "upstream/upstream_connection.hpp"

namespace lg {

UpstreamPool::~UpstreamPool() { close_all_idle(); }

namespace {
// "name:port" / "[v6]:port" as written -> the host part.
std::string_view written_host(std::string_view text) {
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    return close == std::string_view::npos ? text : text.substr(1, close - 1);
  }
  const std::size_t colon = text.rfind(':');
  return colon == std::string_view::npos ? text : text.substr(0, colon);
}

std::string_view without_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') return written_host(host);
  const std::size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(':') == colon) host = host.substr(0, colon);
  return host;
}
}  // namespace

std::string_view TargetState::tls_name(std::string_view client_host) const {
  if (!tls) return {};
  switch (tls->sni_mode()) {
    case UpstreamTlsConfig::SniMode::name: return tls->sni();
    case UpstreamTlsConfig::SniMode::host:
      if (!client_host.empty()) return without_port(client_host);
      return host_name;
    default: return host_name;
  }
}

TargetState* UpstreamPool::target_for(const TargetConfig& t, const UpstreamConfig& group,
                                      std::shared_ptr<const TlsClientContext> tls) {
  auto& slot = targets_[tls ? "tls/" + group.name + "/" + t.address.text : t.address.text];
  if (!slot) {
    slot = std::make_unique<TargetState>();
    slot->key = t.address.text;
    slot->host_ip = t.address.host;
    const std::string_view written = written_host(t.address.text);
    if (!is_ip_literal(written)) slot->host_name = std::string(written);
    // The loader resolved the host to a numeric literal; parse it once per worker.
    auto* v4 = reinterpret_cast<sockaddr_in*>(&slot->addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&slot->addr);
    if (inet_pton(AF_INET, t.address.host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(t.address.port);
      slot->addr_len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, t.address.host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(t.address.port);
      slot->addr_len = sizeof(sockaddr_in6);
    }
  }
  slot->max_idle = group.keepalive_max_idle;
  slot->idle_timeout_ms = group.keepalive_idle_timeout.count();
  slot->max_requests = group.keepalive_max_requests;
  slot->failure_threshold = group.passive_failures;
  slot->down_for_ms = group.passive_down_for.count();
  slot->tls = std::move(tls);
  return slot.get();
}

UpstreamConnection* UpstreamPool::take_idle(TargetState& t, std::string_view tls_name) {
  for (std::size_t i = t.idle.size(); i-- > 0;) {
    UpstreamConnection* c = t.idle[i];
    const bool stale = c->state != UpstreamConnection::State::idle || c->tls != t.tls;
    if (!stale && c->tls_name != tls_name) continue;  // made for another SNI: stays pooled
    t.idle.erase(t.idle.begin() + static_cast<std::ptrdiff_t>(i));
    worker_.timers().remove(c);
    if (stale) {  // closed meanwhile, or made with a TLS context a reload replaced
      c->close();
      c->release();
      continue;
    }
    c->state = UpstreamConnection::State::busy;
    c->reused = true;
    c->deadline_ms = 0;
    return c;
  }
  return nullptr;
}

bool UpstreamPool::put_idle(UpstreamConnection* c) {
  TargetState& t = c->target;
  if (t.idle.size() >= t.max_idle || c->requests >= t.max_requests || t.max_idle == 0) return false;
  c->add_ref();
  c->owner = nullptr;
  c->state = UpstreamConnection::State::idle;
  c->buf.begin = c->buf.end = 0;
  c->deadline_ms = monotonic_ms() + t.idle_timeout_ms;
  worker_.timers().add(c);
  t.idle.push_back(c);
  c->start_read();  // notices a close by the target while idle
  return true;
}

void UpstreamPool::release_busy(UpstreamConnection* c, bool reusable) {
  if (c->target.active) c->target.active--;
  c->owner = nullptr;
  if (!(reusable && c->state == UpstreamConnection::State::busy && put_idle(c))) c->close();
  c->release();
}

void UpstreamPool::forget(UpstreamConnection* c) {
  auto& idle = c->target.idle;
  auto it = std::find(idle.begin(), idle.end(), c);
  if (it == idle.end()) return;
  idle.erase(it);
  worker_.timers().remove(c);
  c->release();
}

void UpstreamPool::record_failure(TargetState& t, std::int64_t now_ms) {
  if (++t.failures >= t.failure_threshold) {
    t.down_until_ms = now_ms + t.down_for_ms;
    t.failures = 0;
  }
}

void UpstreamPool::close_all_idle() {
  for (auto& [key, t] : targets_) {
    std::vector<UpstreamConnection*> idle;
    idle.swap(t->idle);
    for (UpstreamConnection* c : idle) {
      worker_.timers().remove(c);
      c->close();
      c->release();
    }
  }
}

}  // namespace lg
