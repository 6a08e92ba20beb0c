// A JWT revocation lookup in Redis (jwt policy, `revocation: redis`): what the jwt policy asks the
// worker's RemoteRevocations (redis/revocations.hpp), and what it got. The request waits
// (PolicyRequest::waiting) until the answer, a timeout or a failure, like a rate limit in Redis.
#pragma once
#include <cstdint>
#include <string>

#include "policy/remote_take.hpp"

namespace lg::policy {

struct RevocationCheck {
  enum class Status : std::uint8_t { idle, waiting, clear, revoked, failed };
  std::string key;  // "lunagate:jwt:revoked:<jti>", in Redis as in the process's SharedDict
  // Asked: how long a "revoked" answer may be cached (the token's remaining life). Answered
  // revoked: that, or less if Redis drops the entry sooner.
  std::int64_t ttl_ms = 0;
  // What happened.
  Status status = Status::idle;
  // Bookkeeping of the worker's RemoteRevocations while waiting.
  PolicyWaitOwner* owner = nullptr;
  std::uint64_t redis_id = 0;
};

// This worker's Redis revocation lookups.
class RemoteRevocations {
 public:
  virtual ~RemoteRevocations() = default;
  // Sets c.status: failed at once (Redis down, too much in flight), or waiting (then
  // c.owner->on_policy_wake() is called once, later, from the worker's loop, unless cancel()
  // came first).
  virtual void check(RevocationCheck& c) = 0;
  virtual void cancel(RevocationCheck& c) = 0;
  virtual bool fail_open() const = 0;
};

}  // namespace lg::policy
