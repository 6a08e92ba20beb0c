// What a PTTL reply means for a revocation lookup.
#include <catch2/catch.hpp>

#include <hiredis/hiredis.h>

#include "redis/revocations.hpp"

using lg::policy::RevocationCheck;

namespace {
RevocationCheck after(const redisReply* r, std::int64_t bound_ms = 600'000) {
  RevocationCheck c;
  c.ttl_ms = bound_ms;
  lg::redis::apply_pttl_reply(r, c);
  return c;
}
redisReply integer(long long v) {
  redisReply r{};
  r.type = REDIS_REPLY_INTEGER;
  r.integer = v;
  return r;
}
}  // namespace

TEST_CASE("revocations: PTTL replies", "[redis]") {
  const redisReply absent = integer(-2), forever = integer(-1), soon = integer(1500), later = integer(9'000'000);
  CHECK(after(&absent).status == RevocationCheck::Status::clear);
  CHECK(after(&forever).status == RevocationCheck::Status::revoked);
  CHECK(after(&forever).ttl_ms == 600'000);  // cached for the token's life
  CHECK(after(&soon).ttl_ms == 1500);        // or as long as Redis keeps it
  CHECK(after(&later).ttl_ms == 600'000);
  CHECK(after(nullptr).status == RevocationCheck::Status::failed);
  redisReply err{};
  err.type = REDIS_REPLY_ERROR;
  CHECK(after(&err).status == RevocationCheck::Status::failed);
}
