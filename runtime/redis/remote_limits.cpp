#include "redis/remote_limits.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "core/clock.hpp"

namespace lg::redis {

RemoteLimiter::RemoteLimiter(Reactor& r, RedisClient& client, const RedisConfig& cfg, unsigned workers)
    : client_(client),
      fail_open_(cfg.on_failure == RedisConfig::OnFailure::open),
      workers_(workers),
      sw_script_(client_.register_script(kSlidingWindowScript)),
      tb_script_(client_.register_script(kTokenBucketScript)),
      exact_(r, client_, sw_script_, tb_script_) {}

RemoteLimiter::~RemoteLimiter() = default;

void RemoteLimiter::tick() {
  const std::int64_t mono = monotonic_ms();
  if (mono < next_sweep_) return;
  next_sweep_ = mono + 10'000;
  sweep(wall_ms());
}

void RemoteLimiter::sweep(std::int64_t now) {
  for (auto it = reserves_.begin(); it != reserves_.end();) {
    const KeyReserve& k = *it->second;
    if (k.waiters.empty() && !k.redis_id && now >= k.r.expires_at) it = reserves_.erase(it);
    else ++it;
  }
}

void RemoteLimiter::take(policy::RemoteTake& t) {
  using S = policy::RemoteTake::Status;
  t.status = S::failed;
  t.reserve = nullptr;
  t.group = nullptr;
  const std::int64_t now = wall_ms();
  if (!t.batch) {
    exact_.take(t, now);
    return;
  }
  // batch: the reserve of this policy, key and set of limits, named in a reused buffer
  name_.assign(t.token_bucket ? "tb|" : "sw|").append(t.base);
  for (const RemoteLimit& l : t.limits) {
    char num[24];
    name_.push_back('|');
    name_.append(num, std::to_chars(num, num + sizeof num, static_cast<std::int64_t>(l.limit)).ptr);
    name_.push_back('/');
    name_.append(num, std::to_chars(num, num + sizeof num, l.window_ms).ptr);
  }
  auto it = reserves_.find(std::string_view(name_));
  if (it == reserves_.end()) {
    // Reserves are per key, and keys can be chosen by clients (by: header, IPv6 addresses): past
    // kMaxReserves live ones a new key is served exactly (one round trip) instead of getting one.
    if (reserves_.size() >= kMaxReserves) {
      sweep(now);
      if (reserves_.size() >= kMaxReserves) {
        exact_.take(t, now);
        return;
      }
    }
    auto slot = std::make_unique<KeyReserve>();
    slot->name = name_;
    slot->base = t.base;
    it = reserves_.emplace(name_, std::move(slot)).first;
  }
  KeyReserve& k = *it->second;
  if (k.r.take(now)) {
    serve_from(k, t);
    return;
  }
  if (client_.health() != RedisClient::Health::up) return;
  k.token_bucket = t.token_bucket;
  k.limits = t.limits;
  k.want = std::max<std::uint32_t>(1, t.batch_size);
  k.waiters.push_back(&t);
  t.reserve = &k;
  t.status = S::waiting;
  if (!k.redis_id) {
    ask_batch(k, now);
    if (!k.redis_id) {  // could not be sent: fail this one at once (it is the only waiter)
      k.waiters.clear();
      t.reserve = nullptr;
      t.status = S::failed;
    }
  }
}

void RemoteLimiter::serve_from(KeyReserve& k, policy::RemoteTake& t) {
  t.status = policy::RemoteTake::Status::allowed;
  t.results = k.last;
  for (RateResult& r : t.results) {
    r.allowed = true;
    r.remaining = std::min(r.limit, r.remaining + k.r.left);  // Redis's room plus this reserve
  }
}

void RemoteLimiter::ask_batch(KeyReserve& k, std::int64_t now) {
  call_.clear();
  const std::size_t argc = encode_call(call_, k.token_bucket, k.base, k.limits, now, k.want);
  k.asked_expiry = reserve_expiry(k.token_bucket, k.limits, now);
  k.redis_id = client_.eval(k.token_bucket ? tb_script_ : sw_script_, call_, argc, this,
                            reinterpret_cast<std::uint64_t>(&k));
}

void RemoteLimiter::cancel(policy::RemoteTake& t) {
  if (t.status != policy::RemoteTake::Status::waiting) return;
  if (t.group) {
    exact_.cancel(t);
    return;
  }
  if (t.reserve) {
    auto& w = static_cast<KeyReserve*>(t.reserve)->waiters;
    w.erase(std::remove(w.begin(), w.end(), &t), w.end());
  }
  t.reserve = nullptr;
  t.status = policy::RemoteTake::Status::idle;
}

void RemoteLimiter::fail_waiters(KeyReserve& k) {
  std::vector<policy::RemoteTake*> w;
  w.swap(k.waiters);
  for (policy::RemoteTake* t : w) {
    t->status = policy::RemoteTake::Status::failed;
    t->reserve = nullptr;
  }
  for (policy::RemoteTake* t : w) t->owner->on_policy_wake();
}

// A batch for a reserve (exact mode's calls answer to ExactCalls).
void RemoteLimiter::on_reply(std::uint64_t tag, const redisReply* reply, const char*) {
  using S = policy::RemoteTake::Status;
  ScriptReply& sr = reply_;
  auto& k = *reinterpret_cast<KeyReserve*>(tag);
  k.redis_id = 0;
  if (!read_script_reply(reply, k.limits, k.token_bucket, ints_, sr)) {
    fail_waiters(k);
    return;
  }
  const std::int64_t now = wall_ms();
  k.r.add(sr.grant, k.asked_expiry, now);
  k.last = sr.results;
  const bool more = sr.grant >= k.want;  // Redis had room for the whole batch: it may have more
  std::vector<policy::RemoteTake*> w, done;
  w.swap(k.waiters);
  for (policy::RemoteTake* t : w) {
    if (k.r.take(now)) {
      serve_from(k, *t);
    } else if (more) {
      k.waiters.push_back(t);  // another batch
      continue;
    } else {
      t->status = S::refused;
      t->results = sr.results;
      for (RateResult& r : t->results) {
        r.allowed = false;
        r.retry_after_ms = std::max(r.retry_after_ms, r.reset_ms);
      }
    }
    t->reserve = nullptr;
    done.push_back(t);
  }
  if (!k.waiters.empty()) {
    ask_batch(k, now);
    if (!k.redis_id) {
      for (policy::RemoteTake* t : k.waiters) t->status = S::failed, t->reserve = nullptr;
      done.insert(done.end(), k.waiters.begin(), k.waiters.end());
      k.waiters.clear();
    }
  }
  for (policy::RemoteTake* t : done) t->owner->on_policy_wake();
}

}  // namespace lg::redis
