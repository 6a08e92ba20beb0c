// Native JWT (JWS compact form) verification: HS256/384/512, RS256/384/512, PS256/384/512,
// ES256/384 and EdDSA (Ed25519), with keys bound to a kid and an alg by configuration only.
//
// Rules (RFC 7515/7519/8725): never `alg: none`; keys are never taken from the token (`jku`,
// `x5u`, `jwk`, `x5c` are ignored); the token's alg must equal the alg its key is bound to (an
// HMAC secret and a public key can never stand in for each other); any `crit` is rejected (no
// extension is understood); nested (`cty: JWT`) and unencoded-payload (`b64`) tokens are
// rejected; base64url must be canonical; duplicate JSON members are rejected; the signature is
// checked before the claims are parsed. Errors are values; verify never throws.
//
// No OpenSSL header is included here: key material lives in jwt_keys.hpp (internal).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json_value.hpp"

namespace lg::auth {

enum class Alg : std::uint8_t { HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA };

// Exact, case-sensitive JOSE names ("HS256", ..., "EdDSA"); false for anything else, "none" included.
bool parse_alg(std::string_view name, Alg& out);
std::string_view alg_name(Alg alg);

// ---- keys ----

struct JwtLoadResult {
  std::string error;                 // empty on success (then the set was changed)
  std::size_t added = 0;
  std::vector<std::string> skipped;  // load_jwks with skip_unusable: "kid: reason" per key
  bool ok() const { return error.empty(); }
};

struct JwksOptions {
  // kid -> alg for JWKs that carry no "alg" (a JWK whose own alg disagrees is an error).
  std::vector<std::pair<std::string, Alg>> bindings;
  // Skip keys that cannot be used (unknown kty or curve, "use": "enc", no binding) instead of
  // failing the whole set: for sets fetched from an identity provider, not for config files.
  bool skip_unusable = false;
  // Symmetric ("oct") keys. A set fetched from a URL is usually readable by anyone, and whoever
  // reads an HMAC key can sign tokens with it: fetched sets accept them only when configured to.
  bool allow_symmetric = true;
  std::size_t max_keys = 0;  // keys past this many are skipped (0: no limit)
};

// An immutable-once-built set of verification keys, each bound to a kid and one alg. Owns its
// OpenSSL objects; move-only. Safe to share between threads for verification once loading is
// done (verify only reads it). Loading rejects weak keys: HMAC secrets shorter than the hash
// (RFC 7518 §3.2), RSA below 2048 bits, and curves other than the alg's.
class JwtKeySet {
 public:
  JwtKeySet();
  ~JwtKeySet();
  JwtKeySet(JwtKeySet&&) noexcept;
  JwtKeySet& operator=(JwtKeySet&&) noexcept;
  JwtKeySet(const JwtKeySet&) = delete;
  JwtKeySet& operator=(const JwtKeySet&) = delete;

  // An HMAC secret (raw bytes) for HS256/384/512.
  JwtLoadResult add_secret(std::string_view kid, Alg alg, std::string_view secret);
  // A public key ("PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" PEM) for RS*/PS*/ES*/EdDSA.
  // Private keys are refused: the gateway never needs them.
  JwtLoadResult load_pem(std::string_view kid, Alg alg, std::string_view pem);
  // A JWK Set {"keys": [...]}: kty RSA, EC (P-256, P-384), OKP (Ed25519) and oct. All or nothing
  // unless options.skip_unusable.
  JwtLoadResult load_jwks(std::string_view json, const JwksOptions& options = {});

  std::size_t size() const;
  bool contains(std::string_view kid) const;
  std::vector<std::string> kids() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// The seam for keys that change at run time (a JWKS URL refreshed in the background): the
// fetcher builds a complete new JwtKeySet off the data plane and publishes it; a request loads
// the pointer once and verifies against that set, so a swap never changes a key mid-request.
// (load() touches a shared reference count: on the request path, prefer a per-worker copy of
// the pointer refreshed when a new set is published, as snapshots are.)
class JwtKeyStore {
 public:
  std::shared_ptr<const JwtKeySet> load() const { return keys_.load(std::memory_order_acquire); }
  void publish(std::shared_ptr<const JwtKeySet> keys) { keys_.store(std::move(keys), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<const JwtKeySet>> keys_;
};

// ---- policy and result ----

struct JwtPolicy {
  std::string issuer;                  // `iss` must equal it exactly; empty: not checked
  std::vector<std::string> audiences;  // `aud` (string or array) must contain one; empty: not checked
  std::int64_t leeway_s = 0;           // clock skew allowed on exp, nbf and iat
  std::int64_t max_lifetime_s = 0;     // exp - iat (exp - now without iat) at most this; 0: unlimited
  std::size_t max_token_bytes = 8192;  // checked before any decoding
  std::vector<std::string> required_claims;  // must be present and not null
  bool require_exp = true;
};

enum class JwtError : std::uint8_t {
  none,
  too_large,          // longer than max_token_bytes
  malformed,          // not three non-empty base64url segments, bad JSON, wrong claim types
  alg_none,           // unsecured JWT, any spelling of "none"
  alg_unsupported,    // an alg we do not implement (or not a string)
  header_unsupported, // crit, b64, nested JWT (cty), JWE fields
  kid_missing,        // no kid and not exactly one key for the alg
  kid_unknown,        // kid not in the key set (a fetched set may want a bounded refresh)
  alg_mismatch,       // token alg differs from the alg bound to the kid
  bad_signature,      // wrong length, or does not verify
  expired,            // now >= exp + leeway
  not_yet_valid,      // nbf > now + leeway
  issued_in_future,   // iat > now + leeway
  lifetime_exceeded,  // beyond max_lifetime, or a date out of any sane range
  issuer_mismatch,    // iss missing or different
  audience_mismatch,  // aud missing or none of ours
  claim_missing,      // exp (when required) or a required claim absent
};
std::string_view jwt_error_name(JwtError e);  // stable snake_case, for logs and metrics

// The verified payload. Valid until the JwtResult that holds it is reused or destroyed.
class JwtClaims {
 public:
  json::Value root() const { return root_; }
  json::Value find(std::string_view name) const { return root_.find(name); }
  // The claim when it is a string, else empty.
  std::string_view string(std::string_view name) const { return root_.find(name).str(); }

  std::string_view sub() const { return sub_.str(); }
  std::string_view iss() const { return iss_.str(); }
  std::string_view jti() const { return jti_.str(); }
  bool has_exp() const { return has_exp_; }
  std::int64_t exp() const { return exp_; }  // whole seconds, clamped to +-2^62
  bool has_iat() const { return has_iat_; }
  std::int64_t iat() const { return iat_; }

  // Scopes from "scope" (space-separated string, RFC 8693) or else "scp" (array or string).
  template <class F>
  void for_each_scope(F&& f) const {
    for_each_word(scope_ ? scope_ : scp_, f);
  }
  bool has_scope(std::string_view s) const;
  // Groups from "groups" (array of strings, or a space-separated string).
  template <class F>
  void for_each_group(F&& f) const {
    for_each_word(groups_, f);
  }
  bool in_group(std::string_view g) const;

  // Appends a claim as an upstream header value: a string as is, an integer in decimal, a
  // boolean, or an array of those joined by `sep`. False (and `out` unchanged) when the claim is
  // absent, an object, or holds a byte that cannot go in a header (control characters, DEL).
  bool append_header_value(std::string_view name, std::string& out, std::string_view sep = " ") const;

 private:
  friend struct JwtVerifierAccess;
  template <class F>
  static void for_each_word(json::Value v, F& f) {
    if (v.is_string()) {
      std::string_view s = v.str();
      while (!s.empty()) {
        const auto sp = s.find(' ');
        if (sp != 0) f(s.substr(0, sp));
        if (sp == std::string_view::npos) break;
        s.remove_prefix(sp + 1);
      }
    } else if (v.is_array()) {
      for (json::Value e = v.first(); e; e = e.next())
        if (e.is_string()) f(e.str());
    }
  }
  json::Value root_, sub_, iss_, jti_, scope_, scp_, groups_;
  std::int64_t exp_ = 0, iat_ = 0;
  bool has_exp_ = false, has_iat_ = false;
};

// Keep one per worker (or per caller) and pass it to every verify: its buffers are reused, so a
// steady-state HS256 verify allocates nothing.
class JwtResult {
 public:
  JwtResult() = default;
  JwtResult(const JwtResult&) = delete;  // claims are views into this object's buffers
  JwtResult& operator=(const JwtResult&) = delete;

  bool ok() const { return error == JwtError::none; }
  JwtError error = JwtError::malformed;
  std::string_view reason;  // short static text for logs and a 401 body
  std::string_view detail;  // the claim named by claim_missing/malformed, when there is one
  Alg alg = Alg::HS256;     // meaningful once the header parsed
  std::string kid;          // the token's kid (also on kid_unknown: drives a JWKS refresh)
  JwtClaims claims;         // only when ok()

 private:
  friend struct JwtVerifierAccess;
  json::Document header_doc_, payload_doc_;
  // The last header segment that passed the header checks, and what it said: tokens of one
  // issuer share their header, so the next one skips decoding and parsing it.
  std::string header_seen_, header_kid_;
  Alg header_alg_ = Alg::HS256;
  bool header_has_kid_ = false;
};

// Verifies `token` against `keys` and `policy` at `now_unix` (seconds since the epoch; pinned
// in tests). Returns out.ok(). Thread-safe for distinct JwtResult objects.
bool verify_jwt(std::string_view token, const JwtKeySet& keys, const JwtPolicy& policy, std::int64_t now_unix,
                JwtResult& out);

}  // namespace lg::auth
