#include "auth/jwt.hpp"

#include <algorithm>
#include <cmath>
#include <openssl/err.h>

#include "auth/jwt_keys.hpp"
#include "core/base64url.hpp"
#include "http/message.hpp"

namespace lg::auth {

namespace {

constexpr std::string_view kAlgNames[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                          "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

// Header limits: a real header has a handful of members; the bound keeps the unauthenticated
// parse (before the signature is checked) cheap whatever the attacker sends.
constexpr json::Limits kHeaderLimits{4, 64};
constexpr json::Limits kPayloadLimits{16, 4096};

constexpr std::int64_t kDateLimit = std::int64_t{1} << 62;

// A NumericDate (RFC 7519 §2): any JSON number, in whole seconds (floor), clamped to +-2^62 so
// later arithmetic cannot overflow; a clamped date fails the lifetime check.
bool numeric_date(json::Value v, std::int64_t& out) {
  if (!v.is_number()) return false;
  std::int64_t i;
  if (v.as_int64(i)) {
    out = i > kDateLimit ? kDateLimit : i < -kDateLimit ? -kDateLimit : i;
    return true;
  }
  const double d = std::floor(v.as_double());
  out = d >= static_cast<double>(kDateLimit) ? kDateLimit
        : d <= -static_cast<double>(kDateLimit) ? -kDateLimit
                                                : static_cast<std::int64_t>(d);
  return true;
}

bool header_safe(std::string_view s) { return http::detail::valid_field_value(s.data(), s.data() + s.size()); }

bool append_scalar(json::Value v, std::string& out) {
  switch (v.type()) {
    case json::Type::string:
      if (!header_safe(v.str())) return false;
      out.append(v.str());
      return true;
    case json::Type::boolean:
      out.append(v.as_bool() ? "true" : "false");
      return true;
    case json::Type::number: {
      std::int64_t i;
      if (!v.as_int64(i)) return false;  // fractions and huge numbers are not mapped
      out.append(std::to_string(i));
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool parse_alg(std::string_view name, Alg& out) {
  for (std::size_t i = 0; i < std::size(kAlgNames); ++i) {
    if (kAlgNames[i] == name) {
      out = static_cast<Alg>(i);
      return true;
    }
  }
  return false;
}

std::string_view alg_name(Alg alg) { return kAlgNames[static_cast<std::size_t>(alg)]; }

std::string_view jwt_error_name(JwtError e) {
  switch (e) {
    case JwtError::none: return "ok";
    case JwtError::too_large: return "too_large";
    case JwtError::malformed: return "malformed";
    case JwtError::alg_none: return "alg_none";
    case JwtError::alg_unsupported: return "alg_unsupported";
    case JwtError::header_unsupported: return "header_unsupported";
    case JwtError::kid_missing: return "kid_missing";
    case JwtError::kid_unknown: return "kid_unknown";
    case JwtError::alg_mismatch: return "alg_mismatch";
    case JwtError::bad_signature: return "bad_signature";
    case JwtError::expired: return "expired";
    case JwtError::not_yet_valid: return "not_yet_valid";
    case JwtError::issued_in_future: return "issued_in_future";
    case JwtError::lifetime_exceeded: return "lifetime_exceeded";
    case JwtError::issuer_mismatch: return "issuer_mismatch";
    case JwtError::audience_mismatch: return "audience_mismatch";
    case JwtError::claim_missing: return "claim_missing";
  }
  return "unknown";
}

bool JwtClaims::has_scope(std::string_view s) const {
  bool found = false;
  for_each_scope([&](std::string_view x) { found = found || x == s; });
  return found;
}

bool JwtClaims::in_group(std::string_view g) const {
  bool found = false;
  for_each_group([&](std::string_view x) { found = found || x == g; });
  return found;
}

bool JwtClaims::append_header_value(std::string_view name, std::string& out, std::string_view sep) const {
  const json::Value v = root_.find(name);
  const std::size_t mark = out.size();
  if (v.is_array()) {
    bool first = true;
    for (json::Value e = v.first(); e; e = e.next(), first = false) {
      if (!first) out.append(sep);
      if (!append_scalar(e, out)) {
        out.resize(mark);
        return false;
      }
    }
    return true;
  }
  if (append_scalar(v, out)) return true;
  out.resize(mark);
  return false;
}

struct JwtVerifierAccess {
  static bool fail(JwtResult& r, JwtError e, std::string_view reason, std::string_view detail = {}) {
    r.error = e;
    r.reason = reason;
    r.detail = detail;
    r.claims = JwtClaims{};
    return false;
  }

  static bool verify(std::string_view token, const JwtKeySet& keys, const JwtPolicy& policy, std::int64_t now,
                     JwtResult& r);
  static bool check_header(json::Value h, JwtResult& r, bool& has_kid);
  static bool check_claims(JwtResult& r, const JwtPolicy& policy, std::int64_t now);
};

bool JwtVerifierAccess::check_header(json::Value h, JwtResult& r, bool& has_kid) {
  if (!h.is_object()) return fail(r, JwtError::malformed, "header is not a JSON object");
  const json::Value alg = h.find("alg");
  if (!alg.is_string()) return fail(r, JwtError::alg_unsupported, "header has no alg");
  if (http::iequals(alg.str(), "none")) return fail(r, JwtError::alg_none, "unsecured JWT (alg none) refused");
  if (!parse_alg(alg.str(), r.alg)) return fail(r, JwtError::alg_unsupported, "unsupported alg");
  for (json::Value m = h.first(); m; m = m.next()) {
    const std::string_view k = m.key();
    if (k == "kid") {
      if (!m.is_string()) return fail(r, JwtError::malformed, "kid is not a string");
      r.kid.assign(m.str());
      has_kid = true;
    } else if (k == "crit") {
      return fail(r, JwtError::header_unsupported, "crit header names an extension we do not understand");
    } else if (k == "b64") {
      if (!(m.is_bool() && m.as_bool()))
        return fail(r, JwtError::header_unsupported, "unencoded payload (b64) not supported");
    } else if (k == "cty") {
      if (http::iequals(m.str(), "JWT") || http::iequals(m.str(), "application/jwt") || !m.is_string())
        return fail(r, JwtError::header_unsupported, "nested JWT not supported");
    } else if (k == "enc" || k == "zip") {
      return fail(r, JwtError::header_unsupported, "JWE headers in a JWS");
    }
    // jku, x5u, jwk, x5c, x5t: ignored, keys come from configuration only.
  }
  return true;
}

bool JwtVerifierAccess::verify(std::string_view token, const JwtKeySet& keys, const JwtPolicy& policy,
                               std::int64_t now, JwtResult& r) {
  r.kid.clear();
  r.detail = {};
  if (token.empty()) return fail(r, JwtError::malformed, "empty token");
  if (token.size() > policy.max_token_bytes) return fail(r, JwtError::too_large, "token too large");
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return fail(r, JwtError::malformed, "not three dot-separated segments");
  const std::string_view h64 = token.substr(0, d1), p64 = token.substr(d1 + 1, d2 - d1 - 1),
                         s64 = token.substr(d2 + 1);
  if (h64.empty() || p64.empty()) return fail(r, JwtError::malformed, "empty segment");

  bool has_kid = false;
  if (!r.header_seen_.empty() && h64 == r.header_seen_) {
    r.alg = r.header_alg_;
    r.kid = r.header_kid_;
    has_kid = r.header_has_kid_;
  } else {
    r.header_seen_.clear();
    if (!base64url_decode(h64, r.header_doc_.text())) return fail(r, JwtError::malformed, "header is not base64url");
    if (r.header_doc_.parse_text(kHeaderLimits) != json::Error::none)
      return fail(r, JwtError::malformed, "header is not strict JSON");
    if (!check_header(r.header_doc_.root(), r, has_kid)) return false;
    r.header_seen_.assign(h64);
    r.header_kid_ = r.kid;
    r.header_alg_ = r.alg;
    r.header_has_kid_ = has_kid;
  }

  const JwtKey* key = nullptr;
  if (has_kid) {
    key = keys.impl().find(r.kid);
    if (key == nullptr) return fail(r, JwtError::kid_unknown, "unknown kid");
  } else {
    // Without a kid, only an unambiguous key will do: exactly one bound to the token's alg.
    for (const JwtKey& k : keys.impl().keys) {
      if (k.alg != r.alg) continue;
      if (key != nullptr) return fail(r, JwtError::kid_missing, "no kid and several keys for the alg");
      key = &k;
    }
    if (key == nullptr) return fail(r, JwtError::kid_missing, "no kid and no key for the alg");
  }
  if (key->alg != r.alg) return fail(r, JwtError::alg_mismatch, "alg differs from the alg bound to the kid");

  if (s64.empty()) return fail(r, JwtError::bad_signature, "signature missing");
  unsigned char sig[1024];
  if (base64url_decoded_size(s64.size()) != key->sig_bytes || key->sig_bytes > sizeof sig)
    return fail(r, JwtError::bad_signature, "signature has the wrong length");
  if (!base64url_decode(s64, sig)) return fail(r, JwtError::bad_signature, "signature is not base64url");
  if (!verify_signature(*key, token.substr(0, d2), sig, key->sig_bytes)) {
    ERR_clear_error();  // keep this thread's OpenSSL error queue clean for TLS
    return fail(r, JwtError::bad_signature, "signature does not verify");
  }

  if (!base64url_decode(p64, r.payload_doc_.text())) return fail(r, JwtError::malformed, "payload is not base64url");
  if (r.payload_doc_.parse_text(kPayloadLimits) != json::Error::none)
    return fail(r, JwtError::malformed, "payload is not strict JSON");
  return check_claims(r, policy, now);
}

bool JwtVerifierAccess::check_claims(JwtResult& r, const JwtPolicy& policy, std::int64_t now) {
  const json::Value root = r.payload_doc_.root();
  if (!root.is_object()) return fail(r, JwtError::malformed, "payload is not a JSON object");
  JwtClaims c;
  c.root_ = root;
  json::Value exp, nbf, iat, aud;
  for (json::Value m = root.first(); m; m = m.next()) {
    const std::string_view k = m.key();
    if (k.size() != 3 && k != "scope" && k != "groups") continue;
    if (k == "sub") c.sub_ = m;
    else if (k == "iss") c.iss_ = m;
    else if (k == "jti") c.jti_ = m;
    else if (k == "exp") exp = m;
    else if (k == "nbf") nbf = m;
    else if (k == "iat") iat = m;
    else if (k == "aud") aud = m;
    else if (k == "scp") c.scp_ = m;
    else if (k == "scope") c.scope_ = m;
    else if (k == "groups") c.groups_ = m;
  }
  if (c.sub_ && !c.sub_.is_string()) return fail(r, JwtError::malformed, "claim has the wrong type", "sub");
  if (c.iss_ && !c.iss_.is_string()) return fail(r, JwtError::malformed, "claim has the wrong type", "iss");
  if (c.jti_ && !c.jti_.is_string()) return fail(r, JwtError::malformed, "claim has the wrong type", "jti");

  std::int64_t nbf_s = 0;
  if (exp && !numeric_date(exp, c.exp_)) return fail(r, JwtError::malformed, "claim has the wrong type", "exp");
  if (nbf && !numeric_date(nbf, nbf_s)) return fail(r, JwtError::malformed, "claim has the wrong type", "nbf");
  if (iat && !numeric_date(iat, c.iat_)) return fail(r, JwtError::malformed, "claim has the wrong type", "iat");
  c.has_exp_ = static_cast<bool>(exp);
  c.has_iat_ = static_cast<bool>(iat);

  // Dates and the leeway are within +-2^62, `now` is a real clock: no sum below can overflow.
  const std::int64_t leeway = policy.leeway_s < 0 ? 0 : std::min<std::int64_t>(policy.leeway_s, 1LL << 40);
  auto clamped = [](std::int64_t t) { return t == kDateLimit || t == -kDateLimit; };
  if (!exp && policy.require_exp) return fail(r, JwtError::claim_missing, "exp claim required", "exp");
  if ((exp && clamped(c.exp_)) || (iat && clamped(c.iat_)) || (nbf && clamped(nbf_s)))
    return fail(r, JwtError::lifetime_exceeded, "date out of range");
  if (exp && now >= c.exp_ + leeway) return fail(r, JwtError::expired, "token expired");
  if (nbf && nbf_s > now + leeway) return fail(r, JwtError::not_yet_valid, "token not yet valid (nbf)");
  if (iat && c.iat_ > now + leeway) return fail(r, JwtError::issued_in_future, "token issued in the future (iat)");
  if (exp && policy.max_lifetime_s > 0 && c.exp_ - (iat ? c.iat_ : now) > policy.max_lifetime_s)
    return fail(r, JwtError::lifetime_exceeded, "token lifetime exceeds the maximum");

  if (!policy.issuer.empty() && (!c.iss_ || c.iss_.str() != policy.issuer))
    return fail(r, JwtError::issuer_mismatch, "issuer mismatch");
  if (!policy.audiences.empty()) {
    bool match = false;
    auto ours = [&](json::Value v) {
      for (const std::string& a : policy.audiences)
        if (v.str() == a) return true;
      return false;
    };
    if (aud.is_string()) {
      match = ours(aud);
    } else if (aud.is_array()) {
      for (json::Value e = aud.first(); e; e = e.next()) {
        if (!e.is_string()) return fail(r, JwtError::malformed, "claim has the wrong type", "aud");
        match = match || ours(e);
      }
    } else if (aud) {
      return fail(r, JwtError::malformed, "claim has the wrong type", "aud");
    }
    if (!match) return fail(r, JwtError::audience_mismatch, "audience mismatch");
  }
  for (const std::string& name : policy.required_claims) {
    const json::Value v = root.find(name);
    if (!v || v.is_null()) return fail(r, JwtError::claim_missing, "required claim missing", name);
  }
  r.claims = c;
  r.error = JwtError::none;
  r.reason = "ok";
  return true;
}

bool verify_jwt(std::string_view token, const JwtKeySet& keys, const JwtPolicy& policy, std::int64_t now_unix,
                JwtResult& out) {
  return JwtVerifierAccess::verify(token, keys, policy, now_unix, out);
}

}  // namespace lg::auth
