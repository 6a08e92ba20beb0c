// key-auth, acl and cors.
#include "policy/access_policies.hpp"

#include <algorithm>

namespace lg::policy {

// ---- key-auth ---------------------------------------------------------------------------------

KeyAuth::KeyAuth(const KeyAuthConfig& c, const ConsumerTable& consumers) : cfg_(c), consumers_(consumers) {}

bool KeyAuth::apply(PolicyRequest& r) const {
  if (r.header_count(cfg_.header) > 1) return r.answer(400, "more than one credential header");
  std::string_view key = r.header(cfg_.header);
  std::string from_query;
  if (key.empty() && !cfg_.query.empty() && r.query_arg(cfg_.query, from_query)) key = from_query;
  if (key.empty() || !(r.consumer = consumers_.by_key(key))) {
    r.answer_headers.emplace_back("WWW-Authenticate", "ApiKey realm=\"lunagate\", header=\"" + cfg_.header + "\"");
    return r.answer(401, key.empty() ? "missing API key" : "invalid API key");
  }
  r.consumer_id = r.consumer->id;
  if (cfg_.hide_credentials) {
    r.up_edits->remove.emplace_back(cfg_.header);
    if (!from_query.empty()) {  // the key came in the query: it leaves the upstream's query
      std::string_view q = r.up_query_set ? std::string_view(r.up_query) : r.query;
      std::string kept;
      while (!q.empty()) {
        const std::size_t amp = q.find('&');
        const std::string_view pair = q.substr(0, amp);
        const std::string_view name = pair.substr(0, pair.find('='));
        if (name != cfg_.query && !pair.empty()) kept.append(kept.empty() ? "" : "&").append(pair);
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
      }
      r.up_query = std::move(kept);
      r.up_query_set = true;
    }
  }
  return true;
}

// ---- acl --------------------------------------------------------------------------------------

bool Acl::apply(PolicyRequest& r) const {
  if (!cfg_.subjects.empty() &&
      std::find(cfg_.subjects.begin(), cfg_.subjects.end(), r.client_cert_subject) == cfg_.subjects.end())
    return r.answer(403, "forbidden: client certificate not allowed");
  if (cfg_.allow.empty() && cfg_.deny.empty()) return true;  // subjects only
  if (!r.consumer) return r.answer(403, "forbidden: no authenticated consumer");
  for (const std::string& g : cfg_.deny)
    if (r.consumer->in_group(g)) return r.answer(403, "forbidden: consumer group not allowed");
  if (cfg_.allow.empty()) return true;
  for (const std::string& g : cfg_.allow)
    if (r.consumer->in_group(g)) return true;
  return r.answer(403, "forbidden: consumer group not allowed");
}

// ---- headers ---------------------------------------------------------------------------------

bool Headers::apply(PolicyRequest& r) const {
  HeaderEdits& e = *r.up_edits;
  for (const std::string& n : cfg_.request_remove) e.remove.push_back(n);
  for (const auto& kv : cfg_.request_set) e.set.push_back(kv);
  for (const auto& kv : cfg_.request_add) e.add.push_back(kv);
  for (const auto& kv : cfg_.response_set) r.resp_headers->push_back(kv);
  return true;
}

// ---- cors -------------------------------------------------------------------------------------

namespace {
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}
}  // namespace

Cors::Cors(const CorsConfig& c)
    : cfg_(c), any_origin_(std::find(c.origins.begin(), c.origins.end(), "*") != c.origins.end()),
      methods_(join(c.methods)), headers_(join(c.headers)), expose_(join(c.expose)),
      max_age_(std::to_string(c.max_age.count() / 1000)) {}

bool Cors::origin_allowed(std::string_view origin) const {
  if (any_origin_) return true;
  return std::find(cfg_.origins.begin(), cfg_.origins.end(), origin) != cfg_.origins.end();
}

// Requests without Origin are not CORS requests: untouched. A preflight (OPTIONS with
// Access-Control-Request-Method) is answered here; other requests go on and get the
// Access-Control-Allow-* fields on their response. A disallowed origin gets no CORS fields (the
// browser then refuses), and a disallowed preflight a 403.
bool Cors::apply(PolicyRequest& r) const {
  const std::string_view origin = r.header("Origin");
  const bool echo = cfg_.credentials || !any_origin_;
  // The answer depends on Origin whenever the origin is echoed: caches must know, also for
  // requests without one or from an origin not allowed.
  if (echo) r.resp_headers->emplace_back("Vary", "Origin");
  if (origin.empty()) return true;
  const bool allowed = origin_allowed(origin);
  const bool preflight = r.method == "OPTIONS" && r.has_header("Access-Control-Request-Method");
  HeaderList& out = preflight ? r.answer_headers : *r.resp_headers;
  if (!allowed) return preflight ? r.answer(403, "CORS origin not allowed") : true;
  // With credentials the origin is echoed (never "*").
  out.emplace_back("Access-Control-Allow-Origin", echo ? std::string(origin) : std::string("*"));
  if (preflight && echo) out.emplace_back("Vary", "Origin, Access-Control-Request-Headers");
  if (cfg_.credentials) out.emplace_back("Access-Control-Allow-Credentials", "true");
  if (!preflight) {
    if (!expose_.empty()) out.emplace_back("Access-Control-Expose-Headers", expose_);
    return true;
  }
  const std::string_view want = r.header("Access-Control-Request-Method");
  if (std::find(cfg_.methods.begin(), cfg_.methods.end(), want) == cfg_.methods.end())
    return r.answer(403, "CORS method not allowed");
  out.emplace_back("Access-Control-Allow-Methods", methods_);
  const std::string_view req_headers = r.header("Access-Control-Request-Headers");
  if (!headers_.empty()) out.emplace_back("Access-Control-Allow-Headers", headers_);
  else if (!req_headers.empty()) out.emplace_back("Access-Control-Allow-Headers", std::string(req_headers));
  out.emplace_back("Access-Control-Max-Age", max_age_);
  r.answer_body.clear();
  return r.answer(204, "");
}

}  // namespace lg::policy
