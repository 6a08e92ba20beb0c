#include "redis/exact_calls.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace lg::redis {

bool read_script_reply(const redisReply* reply, std::span<const RemoteLimit> limits, bool token_bucket,
                       std::vector<long long>& ints, ScriptReply& out) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) {
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      static thread_local unsigned logged = 0;
      if (logged++ < 10) spdlog::warn("redis rate limit script: {}", std::string_view(reply->str, reply->len));
    }
    return false;
  }
  ints.clear();
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* e = reply->element[i];
    if (!e || e->type != REDIS_REPLY_INTEGER) return false;
    ints.push_back(e->integer);
  }
  return parse_reply(ints, limits, token_bucket, out);
}

namespace {
bool same_counter(const policy::RemoteTake& t, bool token_bucket, const std::string& base,
                  const std::vector<RemoteLimit>& limits) {
  if (t.token_bucket != token_bucket || t.base != base || t.limits.size() != limits.size()) return false;
  for (std::size_t i = 0; i < limits.size(); ++i)
    if (t.limits[i].limit != limits[i].limit || t.limits[i].window_ms != limits[i].window_ms ||
        t.limits[i].burst != limits[i].burst)
      return false;
  return true;
}
}  // namespace

void ExactCalls::take(policy::RemoteTake& t, std::int64_t now_ms) {
  t.status = policy::RemoteTake::Status::failed;
  t.group = nullptr;
  if (client_.health() != RedisClient::Health::up) return;
  Group& g = group_for(t, now_ms);
  g.waiters.push_back(&t);
  t.group = &g;
  t.status = policy::RemoteTake::Status::waiting;
}

ExactCalls::Group& ExactCalls::group_for(const policy::RemoteTake& t, std::int64_t now_ms) {
  for (std::size_t i = open_.size(), seen = 0; i-- > 0 && seen < kScan; ++seen)
    if (same_counter(t, open_[i]->token_bucket, open_[i]->base, open_[i]->limits)) return *open_[i];
  Group* g = acquire();
  g->token_bucket = t.token_bucket;
  g->base.assign(t.base);
  g->limits.assign(t.limits.begin(), t.limits.end());
  g->now_ms = now_ms;
  open_.push_back(g);
  if (!send_queued_) {
    send_queued_ = true;
    reactor_.defer([](void* self) { static_cast<ExactCalls*>(self)->send_open(); }, this);
  }
  return *g;
}

// End of the turn: one call per group, asking for one unit per waiter.
void ExactCalls::send_open() {
  send_queued_ = false;
  sending_.swap(open_);  // a take while these go out (a failure wakes waiters) opens a new group
  for (Group* gp : sending_) {
    Group& g = *gp;
    if (g.waiters.empty()) {  // every waiter was cancelled
      release(&g);
      continue;
    }
    call_.clear();
    const std::size_t argc = encode_call(call_, g.token_bucket, g.base, g.limits, g.now_ms,
                                         static_cast<std::int64_t>(g.waiters.size()));
    if (!client_.eval(g.token_bucket ? tb_script_ : sw_script_, call_, argc, this, reinterpret_cast<std::uint64_t>(&g)))
      settle(g, nullptr);  // not connected any more, or too much in flight
  }
  sending_.clear();
}

void ExactCalls::cancel(policy::RemoteTake& t) {
  if (t.status != policy::RemoteTake::Status::waiting || !t.group) return;
  auto& w = static_cast<Group*>(t.group)->waiters;
  w.erase(std::remove(w.begin(), w.end(), &t), w.end());
  t.group = nullptr;
  t.status = policy::RemoteTake::Status::idle;
}

void ExactCalls::on_reply(std::uint64_t tag, const redisReply* reply, const char*) {
  Group& g = *reinterpret_cast<Group*>(tag);
  settle(g, read_script_reply(reply, g.limits, g.token_bucket, ints_, reply_) ? &reply_ : nullptr);
}

// The first `grant` waiters pass, the rest are refused (share_of_reply).
void ExactCalls::settle(Group& g, const ScriptReply* sr) {
  using S = policy::RemoteTake::Status;
  // Out of the group first: a woken request may cancel or take again. (settle() does not nest:
  // replies and the deferred sends both come from the loop, never from a wake.)
  waking_.swap(g.waiters);
  std::int64_t i = 0;
  for (policy::RemoteTake* t : waking_) {
    t->group = nullptr;
    if (!sr) {
      t->status = S::failed;
      continue;
    }
    t->status = share_of_reply(*sr, i++, t->results) ? S::allowed : S::refused;
  }
  release(&g);
  for (policy::RemoteTake* t : waking_) t->owner->on_policy_wake();
  waking_.clear();
}

ExactCalls::Group* ExactCalls::acquire() {
  if (spare_.empty()) {
    groups_.push_back(std::make_unique<Group>());
    return groups_.back().get();
  }
  Group* g = spare_.back();
  spare_.pop_back();
  return g;
}

void ExactCalls::release(Group* g) {
  g->waiters.clear();
  spare_.push_back(g);
}

}  // namespace lg::redis
