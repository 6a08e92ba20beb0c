// Native route policies and consumers as configured (plain data; see docs/config.md). They are
// compiled into runtime objects (runtime/policy/) when a snapshot is built.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/units.hpp"

namespace lg {

// An identity for key-auth and jwt.
struct ConsumerConfig {
  std::string id;
  std::vector<std::string> keys;    // "sha256:<64 hex>" or the key itself
  std::vector<std::string> groups;
  std::string tenant;
  std::map<std::string, std::string> fields;  // custom, exposed to scripts
  int line = 0;
};

// key-auth: the key from a header (default X-API-Key) or a query parameter.
struct KeyAuthConfig {
  std::string header = "X-API-Key";
  std::string query;             // also accepted from this query parameter ("" = not)
  bool hide_credentials = true;  // the key does not go upstream
};

// jwt: bearer tokens (Authorization: Bearer, or a header / query parameter) checked against
// configured keys and/or keys fetched from a JWKS URL.
struct JwtKeyConfig {
  std::string kid, alg;
  std::string secret;    // HS*: the shared secret (or secret_base64)
  std::string pem;       // the public key, PEM text
  std::string pem_file;  // or a file with it (relative to the config's folder)
  int line = 0;
};
struct JwtConfig {
  std::string issuer;
  std::vector<std::string> audiences;
  Millis leeway{60'000};
  Millis max_lifetime{0};  // 0: no limit
  std::string jwks_file;
  std::vector<JwtKeyConfig> keys;
  // Keys fetched over HTTPS (auth/jwks_fetcher.hpp), checked after the static ones.
  std::string jwks_url;                     // https:// only
  std::string jwks_ca_file;                 // trust store for it ("": the system's)
  Millis jwks_refresh{300'000};             // periodic refresh
  Millis jwks_timeout{5'000};               // one fetch, and a request waiting for one
  Millis jwks_min_refresh_interval{10'000}; // between refreshes asked by unknown kids
  bool jwks_allow_symmetric = false;        // accept "oct" (HMAC) keys from jwks_url
  std::string header = "Authorization";  // "Authorization" takes "Bearer <token>"
  std::string query;                     // also from this query parameter
  std::map<std::string, std::string> claims_to_headers;  // claim -> upstream header
  std::vector<std::string> required_claims;
  std::vector<std::string> required_scopes;  // all of them in `scope`/`scp`: else 403
  std::string consumer_claim = "sub";         // a consumer with this id is attached if present
  // Where a token's jti is looked up: the process's blocklist only (local), or Redis too (redis:
  // revocations made through any instance). Left unset in the file, the loader picks redis when
  // there is a top-level redis section, else local.
  enum class Revocation : std::uint8_t { unset, local, redis };
  Revocation revocation = Revocation::unset;
  int revocation_line = 0;
};

// acl: by consumer groups (after key-auth or jwt), and/or by the verified client certificate's
// subject (RFC 2253 text, on a listener with client_ca). With both, both must pass.
struct AclConfig {
  std::vector<std::string> allow, deny;
  std::vector<std::string> subjects;
};

// ip-restriction: by client address (CIDRs); behind trusted proxies, X-Forwarded-For decides.
struct IpRestrictionConfig {
  std::vector<std::string> allow, deny, trusted_proxies;
  int line = 0;
};

struct CorsConfig {
  std::vector<std::string> origins;  // exact origins, or "*"
  std::vector<std::string> methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  std::vector<std::string> headers;  // allowed request headers ("" list: echo the request's)
  std::vector<std::string> expose;
  bool credentials = false;
  Millis max_age{600'000};
};

struct RateLimitConfig {
  enum class Algorithm : std::uint8_t { token_bucket, sliding_window };
  enum class Key : std::uint8_t { consumer, ip, route, header };
  struct Limit {
    double limit = 0;
    Millis per{1000};
    double burst = 0;  // token bucket capacity (default: limit)
  };
  std::vector<Limit> limits;
  Algorithm algorithm = Algorithm::token_bucket;
  Key by = Key::consumer;
  std::string header;       // by: header
  bool legacy_headers = false;  // also X-RateLimit-Limit-<Window> (Kong style)
  std::vector<std::string> trusted_proxies;  // by: ip behind proxies (X-Forwarded-For)
  std::map<std::string, std::vector<Limit>> consumer_limits;  // per consumer id, instead of `limits`
  // Where the counters live: in this process, or in Redis (shared by every instance; needs the
  // top-level `redis` section). With Redis, `exact` asks Redis on every request; `batch` takes
  // quota in batches of `batch` units (0: min(limit / (4 * workers), 100), at least 1) and serves
  // requests from the worker's reserve.
  enum class Store : std::uint8_t { local, redis };
  enum class Mode : std::uint8_t { exact, batch };
  Store store = Store::local;
  Mode mode = Mode::exact;
  std::uint32_t batch = 0;
  int store_line = 0;
};

// headers: fixed header rules (what a request-transformer does), no script needed.
struct HeadersConfig {
  std::vector<std::pair<std::string, std::string>> request_set, request_add, response_set;
  std::vector<std::string> request_remove;
};

struct PolicyConfig {
  std::variant<KeyAuthConfig, JwtConfig, AclConfig, IpRestrictionConfig, CorsConfig, RateLimitConfig, HeadersConfig> spec;
  std::string name;  // as written: "key-auth", ...
  int line = 0;
  std::string path;  // "routes[0].policies[1]"
};

}  // namespace lg
