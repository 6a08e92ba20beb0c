// Exact mode (rate-limit `store: redis`, `mode: exact`): a request passes only once Redis has
// counted it. Requests for the same counter (policy, key and limits) that arrive in one loop turn
// share one EVALSHA asking for as many units as there are requests; Redis grants what its room
// allows, the first `grant` of them (in arrival order) pass and the others are refused: what the
// same calls one by one in that pipeline would have decided, for one script execution instead of
// n. Redis's CPU per request is what bounds exact mode (~6 µs per script call, on the server),
// so a hot counter (a busy consumer, `by: route`) costs it one call per turn; distinct counters
// cost one call each, as before. Nothing is taken before a request asks for it (unlike batch
// mode's reserves): no overshoot, and a request's unit is counted even if its client leaves.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "policy/remote_take.hpp"
#include "redis/rate_scripts.hpp"
#include "redis/redis_client.hpp"

namespace lg::redis {

// A script's reply as its integers, then parse_reply(); `ints` is scratch.
bool read_script_reply(const redisReply* reply, std::span<const RemoteLimit> limits, bool token_bucket,
                       std::vector<long long>& ints, ScriptReply& out);

class ExactCalls final : public ReplyHandler {
 public:
  ExactCalls(Reactor& r, RedisClient& client, std::size_t sw_script, std::size_t tb_script)
      : reactor_(r), client_(client), sw_script_(sw_script), tb_script_(tb_script) {}
  // Sets t.status to waiting (t.owner is woken once, from the loop, unless cancel() came first)
  // or failed (Redis not connected).
  void take(policy::RemoteTake& t, std::int64_t now_ms);
  void cancel(policy::RemoteTake& t);
  void on_reply(std::uint64_t tag, const redisReply* reply, const char* error) override;

 private:
  struct Group {
    bool token_bucket = false;
    std::string base;
    std::vector<RemoteLimit> limits;
    std::int64_t now_ms = 0;
    std::vector<policy::RemoteTake*> waiters;  // arrival order
  };
  static constexpr std::size_t kScan = 16;  // open groups compared per take (most recent first)
  Group& group_for(const policy::RemoteTake& t, std::int64_t now_ms);
  void send_open();  // the turn's groups, at its end
  void settle(Group& g, const ScriptReply* sr);  // sr null: failed
  Group* acquire();
  void release(Group* g);

  Reactor& reactor_;
  RedisClient& client_;
  std::size_t sw_script_, tb_script_;
  std::vector<std::unique_ptr<Group>> groups_;  // every group made; pooled
  std::vector<Group*> spare_;
  std::vector<Group*> open_;     // this turn's, not sent yet
  std::vector<Group*> sending_;  // being sent
  bool send_queued_ = false;
  std::string call_;
  std::vector<long long> ints_;
  ScriptReply reply_;
  std::vector<policy::RemoteTake*> waking_;
};

}  // namespace lg::redis
