// The JWT revocation blocklist in Redis (jwt policy, `revocation: redis`), keys
// "lunagate:jwt:revoked:<jti>" with the revocation's TTL:
// - RevocationLookups: a worker's lookups, PTTL on the worker's RedisClient (pipelined with
//   everything else the worker sends in that loop turn);
// - write_revocation: what POST /admin/jwt/revoke does on the main thread, one blocking SET with
//   a timeout on its own short-lived connection (rare; it must not touch a worker's client).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "policy/remote_revocation.hpp"
#include "redis/redis_client.hpp"

namespace lg::redis {

class RevocationLookups final : public policy::RemoteRevocations, public ReplyHandler {
 public:
  // On the worker's client (which must outlive this).
  RevocationLookups(RedisClient& client, bool fail_open) : client_(client), fail_open_(fail_open) {}
  void check(policy::RevocationCheck& c) override;
  void cancel(policy::RevocationCheck& c) override;
  bool fail_open() const override { return fail_open_; }
  void on_reply(std::uint64_t tag, const redisReply* reply, const char* error) override;

 private:
  RedisClient& client_;
  bool fail_open_;
  std::string cmd_;  // reused for every lookup
};

// SET <key> 1 EX <ttl_s>, waiting at most `timeout_ms` for the connect and for the answer.
// Returns "" or why it failed.
std::string write_revocation(const RedisConfig& cfg, std::string_view key, std::int64_t ttl_s,
                             std::int64_t timeout_ms);

// What a PTTL reply means for a lookup: sets c.status (clear, revoked with c.ttl_ms lowered to
// Redis's remaining TTL, or failed for anything that is not an integer).
void apply_pttl_reply(const redisReply* reply, policy::RevocationCheck& c);

}  // namespace lg::redis
