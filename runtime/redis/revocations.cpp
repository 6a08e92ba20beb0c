#include "redis/revocations.hpp"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <memory>

#include "redis/resp_writer.hpp"

namespace lg::redis {

void RevocationLookups::check(policy::RevocationCheck& c) {
  using S = policy::RevocationCheck::Status;
  c.status = S::failed;
  c.redis_id = 0;
  if (client_.health() != RedisClient::Health::up) return;
  cmd_.clear();
  RespWriter w(cmd_);
  w.array(2);
  w.arg("PTTL");
  w.arg(c.key);
  c.redis_id = client_.command(cmd_, this, reinterpret_cast<std::uint64_t>(&c));
  if (c.redis_id) c.status = S::waiting;
}

void RevocationLookups::cancel(policy::RevocationCheck& c) {
  if (c.status != policy::RevocationCheck::Status::waiting) return;
  if (c.redis_id) client_.cancel(c.redis_id);
  c.redis_id = 0;
  c.status = policy::RevocationCheck::Status::idle;
}

void RevocationLookups::on_reply(std::uint64_t tag, const redisReply* reply, const char*) {
  auto& c = *reinterpret_cast<policy::RevocationCheck*>(tag);
  c.redis_id = 0;
  apply_pttl_reply(reply, c);
  c.owner->on_policy_wake();
}

// PTTL: -2 no such key, -1 a key without expiry, else the milliseconds it has left.
void apply_pttl_reply(const redisReply* reply, policy::RevocationCheck& c) {
  using S = policy::RevocationCheck::Status;
  if (!reply || reply->type != REDIS_REPLY_INTEGER) {
    c.status = S::failed;
    return;
  }
  if (reply->integer == -2) {
    c.status = S::clear;
    return;
  }
  c.status = S::revoked;
  if (reply->integer >= 0) c.ttl_ms = std::min<std::int64_t>(c.ttl_ms, reply->integer);
}

std::string write_revocation(const RedisConfig& cfg, std::string_view key, std::int64_t ttl_s,
                             std::int64_t timeout_ms) {
  const timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>(timeout_ms % 1000 * 1000)};
  const std::unique_ptr<redisContext, void (*)(redisContext*)> c(
      redisConnectWithTimeout(cfg.address.host.c_str(), cfg.address.port, tv), redisFree);
  if (!c) return "out of memory";
  if (c->err) return std::string("connect: ") + c->errstr;
  if (redisSetTimeout(c.get(), tv) != REDIS_OK) return "cannot set the timeout";
  // Revoking again never shortens a revocation: the entry keeps the longer of its TTL and the
  // new one (atomically, and on any Redis version, unlike EXPIRE ... GT).
  static constexpr char kScript[] =
      "local t = redis.call('TTL', KEYS[1]) "
      "if t == -1 or t >= tonumber(ARGV[1]) then return 0 end "
      "redis.call('SET', KEYS[1], '1', 'EX', ARGV[1]) return 1";
  const std::string ttl = std::to_string(ttl_s);
  const char* argv[] = {"EVAL", kScript, "1", key.data(), ttl.data()};
  const std::size_t lens[] = {4, sizeof kScript - 1, 1, key.size(), ttl.size()};
  auto* reply = static_cast<redisReply*>(redisCommandArgv(c.get(), 5, argv, lens));
  if (!reply) return c->err ? std::string(c->errstr) : std::string("no reply");
  const std::unique_ptr<redisReply, void (*)(void*)> owned(reply, freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR) return std::string(reply->str, reply->len);
  if (reply->type != REDIS_REPLY_INTEGER) return "unexpected reply";
  return {};
}

}  // namespace lg::redis
