// A worker's Redis-backed rate limits (policy::RemoteLimits), on its own RedisClient.
//
// exact: every take is counted by Redis before the request goes on (exact_calls.hpp: the takes
//   of one loop turn for the same counter share one EVALSHA, pipelined with the others); the
//   request waits for the answer.
// batch: per (policy, key) the worker keeps a Reserve of units Redis has already counted; a
//   request takes one locally, without I/O. An empty or expired reserve asks Redis for a batch
//   (one call per key at a time: requests arriving meanwhile wait for the same call). A grant
//   smaller than asked means Redis has no more room: waiters the grant does not cover are refused.
//
// Overshoot bound (batch). Every unit a request uses was counted in Redis before it was used,
// and a reserve is used only until the end of the window it was counted in (token bucket: for
// one period), so per aligned window Redis admits at most `limit` and the requests served from
// reserves are a subset of those units: with clocks in agreement there is no overshoot. What
// can go past the limit over an arbitrary interval is only what was reserved before it began:
// each worker holds at most one batch, so over any interval the admitted requests exceed what
// the limit admits by at most  workers x instances x batch  (e.g. with clocks that disagree,
// when a reserve counted in window k is still used after another instance moved to k+1). Unused
// units are not refunded: they expire with their window (a refusal of up to the same amount,
// never an admission). The test measures both.
//
// Failure: when the client is not connected, a command times out, or too many are in flight,
// the take fails and the policy applies on_failure (open: pass and count; closed: 503).
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "policy/remote_take.hpp"
#include "redis/exact_calls.hpp"
#include "redis/rate_scripts.hpp"
#include "redis/redis_client.hpp"

namespace lg::redis {

class RemoteLimiter final : public policy::RemoteLimits, public ReplyHandler {
 public:
  // On the worker's client (which must outlive this).
  RemoteLimiter(Reactor& r, RedisClient& client, const RedisConfig& cfg, unsigned workers);
  ~RemoteLimiter() override;
  void tick();  // the worker's tick: drops expired reserves now and then

  void take(policy::RemoteTake& t) override;
  void cancel(policy::RemoteTake& t) override;
  bool fail_open() const override { return fail_open_; }
  unsigned workers() const override { return workers_; }
  void on_reply(std::uint64_t tag, const redisReply* reply, const char* error) override;


 private:
  struct KeyReserve {
    Reserve r;
    std::string name, base;
    bool token_bucket = false;
    std::vector<RemoteLimit> limits;  // as of the last request that asked
    std::uint32_t want = 1;
    std::int64_t asked_expiry = 0;  // until when the batch in flight may be used
    std::uint64_t redis_id = 0;
    std::vector<policy::RemoteTake*> waiters;
    std::vector<RateResult> last;  // Redis's last answer, for the headers
  };
  static constexpr std::size_t kMaxReserves = 65536;  // per worker
  void sweep(std::int64_t now);  // drops expired reserves nobody waits on
  void ask_batch(KeyReserve& k, std::int64_t now);
  void serve_from(KeyReserve& k, policy::RemoteTake& t);
  void fail_waiters(KeyReserve& k);

  RedisClient& client_;
  bool fail_open_;
  unsigned workers_;
  std::size_t sw_script_, tb_script_;
  ExactCalls exact_;
  struct NameHash {  // lookups by string_view: the reserve's name is built in a reused buffer
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<KeyReserve>, NameHash, std::equal_to<>> reserves_;
  std::string name_;  // scratch: the reserve name of the take being served
  // Scratch reused by every call and reply.
  std::string call_;
  std::vector<long long> ints_;
  ScriptReply reply_;
  std::int64_t next_sweep_ = 0;
};

}  // namespace lg::redis
