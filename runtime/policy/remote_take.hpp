// A rate-limit take whose counters live in Redis (`store: redis`): what the rate-limit policy
// asks for, and what it got. The worker's RemoteLimits (redis/remote_limits.hpp) does the
// asking; the request waits (PolicyRequest::waiting) until the answer, a timeout or a failure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rate_limit.hpp"
#include "redis/rate_scripts.hpp"

namespace lg::policy {

class PolicyWaitOwner {
 public:
  virtual void on_policy_wake() = 0;

 protected:
  ~PolicyWaitOwner() = default;
};

struct RemoteTake {
  enum class Status : std::uint8_t { idle, waiting, allowed, refused, failed };
  // What to take (one unit from every limit, or none).
  bool token_bucket = false;
  bool batch = false;
  std::uint32_t batch_size = 1;
  std::string base;  // the policy id and who is counted: "route#0|acme"
  std::vector<redis::RemoteLimit> limits;
  // What happened.
  Status status = Status::idle;
  std::vector<RateResult> results;  // per limit, for the RateLimit-* headers
  // Bookkeeping of the worker's RemoteLimits while waiting.
  PolicyWaitOwner* owner = nullptr;
  void* group = nullptr;    // exact mode: the shared call it waits for
  void* reserve = nullptr;  // batch mode: the reserve whose refill it waits for
};

// This worker's Redis-backed limiter.
class RemoteLimits {
 public:
  virtual ~RemoteLimits() = default;
  // Sets t.status: allowed/refused/failed at once, or waiting (then t.owner->on_policy_wake()
  // is called once, later, from the worker's loop, unless cancel() came first).
  virtual void take(RemoteTake& t) = 0;
  virtual void cancel(RemoteTake& t) = 0;
  virtual bool fail_open() const = 0;
  virtual unsigned workers() const = 0;  // this process's workers (default batch sizes)
};

}  // namespace lg::policy
