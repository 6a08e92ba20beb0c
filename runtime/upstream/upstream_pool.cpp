#include "upstream/upstream_pool.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "net/timer_wheel.hpp"
#include "net/worker.hpp"
#include "upstream/upstream_connection.hpp"

namespace lg {

UpstreamPool::~UpstreamPool() { close_all_idle(); }

TargetState* UpstreamPool::target_for(const TargetConfig& t, const UpstreamConfig& group) {
  auto& slot = targets_[t.address.text];
  if (!slot) {
    slot = std::make_unique<TargetState>();
    slot->key = t.address.text;
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
  return slot.get();
}

UpstreamConnection* UpstreamPool::take_idle(TargetState& t) {
  while (!t.idle.empty()) {
    UpstreamConnection* c = t.idle.back();
    t.idle.pop_back();
    worker_.timers().remove(c);
    if (c->state != UpstreamConnection::State::idle) {  // closed meanwhile
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
