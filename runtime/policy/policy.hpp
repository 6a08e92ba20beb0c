// Native route policies at run time: each configured policy (config/policies.hpp) is compiled
// once per snapshot into a Policy, and a route's chain runs on every request right after
// routing, before any script. A policy reads the request, may attach a consumer, change what
// goes upstream and what the client gets, or answer at once (401, 403, 429, a CORS preflight).
// No exceptions and no I/O here; per-request state lives in PolicyRequest.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/key_wait.hpp"
#include "http/message.hpp"
#include "policy/remote_revocation.hpp"
#include "policy/remote_take.hpp"
#include "proxy/head_writers.hpp"

namespace lg {
struct Config;
struct SharedState;
}
namespace lg::auth {
class JwksProvider;
}

namespace lg::policy {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Key prefix of revoked JWT ids, in the process's SharedDict (POST /admin/jwt/revoke, or a
// script: gw.shared.set("lunagate:jwt:revoked:" .. jti, 1, ttl)) and in Redis (POST
// /admin/jwt/revoke when there is a redis section).
inline constexpr std::string_view kRevokedJtiPrefix = "lunagate:jwt:revoked:";

struct Consumer {
  std::string id;
  std::vector<std::string> groups;
  std::string tenant;
  std::map<std::string, std::string> fields;
  bool in_group(std::string_view g) const;
};

// Consumers by id and by key. Keys are kept as SHA-256 digests only (a key configured as
// "sha256:<hex>" is never known in clear); a presented key is hashed and looked up by digest,
// and the digest found is compared in constant time.
class ConsumerTable {
 public:
  explicit ConsumerTable(const std::vector<struct ConsumerConfig>& consumers);
  const Consumer* by_key(std::string_view key) const;
  const Consumer* by_id(std::string_view id) const;
  std::size_t size() const { return consumers_.size(); }

 private:
  struct Hash {  // string_view lookups without building a std::string
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Index = std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>>;
  std::vector<Consumer> consumers_;
  Index by_digest_;  // 32-byte digest -> index
  Index by_id_;
};

// One request as the policies see it, and what they decided.
struct PolicyRequest {
  // The request (views valid while the chain runs).
  std::string_view method, path, query, route, peer_ip;
  std::string_view client_cert_subject;  // verified client certificate (TLS listeners), or ""
  const std::vector<http::Header>* headers = nullptr;
  SharedState* shared = nullptr;
  unsigned worker = 0;        // the worker's id: per-worker caches (fetched JWT keys)
  std::int64_t now_ms = 0;    // monotonic
  std::int64_t now_unix = 0;  // wall clock, seconds (token expiry)

  // Decisions.
  const Consumer* consumer = nullptr;
  std::string consumer_id;             // who authenticated (a consumer's id, or a token's subject)
  std::string client_ip;               // the client behind trusted proxies ("" until resolved)
  const void* client_ip_by = nullptr;  // the trusted-proxy set client_ip was resolved with
  HeaderEdits* up_edits = nullptr;     // what goes upstream
  HeaderList* resp_headers = nullptr;  // added to the client's response
  std::string up_query;                // the query sent upstream, when up_query_set
  bool up_query_set = false;
  // An answer instead of the upstream: status, a short message for the JSON error body, and
  // fields for its head.
  std::uint16_t status = 0;
  const char* message = "";
  std::string_view message_detail;  // for the log only (e.g. why a token was refused)
  HeaderList answer_headers;
  std::string answer_body;  // when set, sent as is (a CORS preflight answers with no body)

  // Policies that wait (a rate limit or a revocation lookup in Redis, a jwt policy waiting for a
  // JWKS refresh): apply() returns false with `waiting` set; the owner is woken when the answer
  // is there, or at wait_deadline_ms when set, and calls resume() of the same policy.
  RemoteLimits* remote = nullptr;  // this worker's Redis-backed limiter (null: no redis section)
  RemoteTake* remote_take = nullptr;
  PolicyWaitOwner* wait_owner = nullptr;
  RemoteRevocations* revocations = nullptr;  // this worker's revocation lookups (null: no redis section)
  RevocationCheck* revocation_check = nullptr;
  auth::KeyWait key_wait;          // parked on a JWKS source until its fetch ends
  std::int64_t wait_deadline_ms = 0;  // monotonic; 0: the wait has its own timeout (Redis)
  bool waiting = false;
  bool bypassed = false;  // a limit was not checked (its store failed, on_failure: open)
  bool revocation_bypassed = false;  // a token's jti was not looked up in Redis (it failed, on_failure: open)

  std::string_view header(std::string_view name) const;  // first value, "" if absent
  bool has_header(std::string_view name) const;
  std::size_t header_count(std::string_view name) const;
  bool query_arg(std::string_view name, std::string& out) const;  // percent-decoded
  std::string_view effective_client_ip() const { return client_ip.empty() ? peer_ip : std::string_view(client_ip); }
  bool answer(std::uint16_t st, const char* msg) {
    status = st;
    message = msg;
    return false;
  }
};

class Policy {
 public:
  virtual ~Policy() = default;
  // true: go on with the next policy; false: answer with r.status now.
  virtual bool apply(PolicyRequest& r) const = 0;
  // After apply() set r.waiting and the wait ended: as apply's result.
  virtual bool resume(PolicyRequest&) const { return true; }
};

struct RoutePolicies {
  std::vector<std::unique_ptr<Policy>> chain;
  bool empty() const { return chain.empty(); }
};

// Compiles every route's policies. Throws ConfigError with "file:line: path: message" lines
// (a key file that cannot be read, a bad CIDR, ...). `jwks`: where jwt policies get the
// sources of their jwks_url (null: made but never fetched).
struct CompiledPolicies {
  std::unique_ptr<ConsumerTable> consumers;
  std::vector<RoutePolicies> routes;  // per route index
};
std::unique_ptr<CompiledPolicies> compile_policies(const Config& cfg, auth::JwksProvider* jwks = nullptr);

}  // namespace lg::policy
