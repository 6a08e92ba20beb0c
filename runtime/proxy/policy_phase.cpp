// Where a ClientConnection runs its route's native policies: right after routing, before any
// script (docs/scripting.md "Phases and order"). A policy that answers (401, 403, 429, a CORS
// preflight) ends the request here; otherwise its decisions go into the upstream head (identity
// headers, removed credentials) and the response head (CORS, RateLimit-*).
#include <fmt/format.h>

#include <ctime>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

bool ClientConnection::run_policies(const policy::RoutePolicies& rp) {
  Exchange& x = *x_;
  policy::PolicyRequest& r = x.policy;
  x.policy_edits.clear();
  x.policy_resp_headers.clear();
  r.method = method_;
  r.path = path_;
  r.query = head_.has_query ? head_.query : std::string_view{};
  r.route = route_->name;
  r.peer_ip = std::string_view(client_ip_, client_ip_len_);
  r.client_cert_subject = client_cert_subject();
  r.headers = head_.headers;
  r.shared = w_.shared_state();
  r.worker = w_.id();
  r.now_ms = monotonic_ms();
  r.now_unix = static_cast<std::int64_t>(std::time(nullptr));
  r.consumer = nullptr;
  r.consumer_id.clear();
  r.client_ip.clear();
  r.client_ip_by = nullptr;
  r.up_edits = &x.policy_edits;
  r.resp_headers = &x.policy_resp_headers;
  r.status = 0;
  r.message = "";
  r.message_detail = {};
  r.answer_headers.clear();
  r.answer_body.clear();
  r.up_query.clear();
  r.up_query_set = false;
  r.remote = w_.remote_limits();
  r.remote_take = &x.remote_take;
  r.revocations = w_.remote_revocations();
  r.revocation_check = &x.revocation_check;
  r.wait_owner = this;
  r.wait_deadline_ms = 0;
  r.waiting = false;
  r.bypassed = false;
  r.revocation_bypassed = false;
  has_policies_ = true;
  return run_policy_chain(rp, 0);
}

// Runs the chain from `from`; a policy that waits parks the request in Phase::policing (the
// head's field list copied out of the worker's scratch, as for a waiting script) until
// on_policy_wake.
bool ClientConnection::run_policy_chain(const policy::RoutePolicies& rp, std::size_t from) {
  Exchange& x = *x_;
  policy::PolicyRequest& r = x.policy;
  for (std::size_t i = from; i < rp.chain.size(); ++i) {
    if (rp.chain[i]->apply(r)) continue;
    if (r.waiting) return park_policy(i);
    count_bypass();
    respond_policy(r);
    return false;
  }
  count_bypass();
  // Identity for the upstream: what the client sent under these names was dropped already.
  if (!r.consumer_id.empty()) {
    x.consumer_id = r.consumer_id;
    x.policy_edits.set.emplace_back("X-Consumer-ID", r.consumer_id);
  }
  if (r.consumer) {
    if (!r.consumer->groups.empty()) {
      std::string groups;
      for (const std::string& g : r.consumer->groups) groups.append(groups.empty() ? "" : ",").append(g);
      x.policy_edits.set.emplace_back("X-Consumer-Groups", std::move(groups));
    }
    if (!r.consumer->tenant.empty()) x.policy_edits.set.emplace_back("X-Tenant-ID", r.consumer->tenant);
  }
  return true;
}

// Parks the request in Phase::policing while policy `i` waits.
bool ClientConnection::park_policy(std::size_t i) {
  policy::PolicyRequest& r = x_->policy;
  policy_index_ = static_cast<std::uint32_t>(i);
  keep_request_head();
  r.headers = head_.headers;
  phase_ = Phase::policing;
  watch_client();
  // A JWKS refresh is bounded here (on_timeout); a Redis command by its own timeout.
  deadline_ms = r.wait_deadline_ms;
  return false;
}

void ClientConnection::on_policy_wake() {
  if (phase_ != Phase::policing || !x_) return;
  policy::PolicyRequest& r = x_->policy;
  r.waiting = false;
  // A wait may last seconds (a JWKS refresh): a token that expired meanwhile must not pass.
  r.now_ms = monotonic_ms();
  r.now_unix = static_cast<std::int64_t>(std::time(nullptr));
  const policy::RoutePolicies& rp = pin_->snap->policies->routes[route_index_];
  phase_ = Phase::reading_head;  // where run_policies left it when it did not wait
  set_deadline(w_.limits().client_header_timeout.count());
  if (!rp.chain[policy_index_]->resume(r)) {
    if (r.waiting) {  // it waits again (a jwt verified with fresh keys now asks Redis for its jti)
      park_policy(policy_index_);
      return;
    }
    count_bypass();
    respond_policy(r);
    return;
  }
  if (run_policy_chain(rp, policy_index_ + 1)) after_policies();
}

std::string ClientConnection::route_label() const { return fmt::format("route=\"{}\"", route_->name); }

// What a policy let through unchecked because Redis failed (on_failure: open).
void ClientConnection::count_bypass() {
  policy::PolicyRequest& r = x_->policy;
  if (r.bypassed) {
    r.bypassed = false;
    w_.metrics().add_lazy(pin_->policy_slots[route_index_].bypassed, "gateway_rate_limit_bypassed_total",
                          "Requests let through unchecked because the rate-limit store failed.", [this] { return route_label(); });
  }
  if (r.revocation_bypassed) {
    r.revocation_bypassed = false;
    w_.metrics().add_lazy(
        pin_->policy_slots[route_index_].revocation_bypassed, "gateway_jwt_revocation_bypassed_total",
        "Tokens accepted without their Redis revocation lookup because Redis failed (on_failure: open).",
        [this] { return route_label(); });
  }
}

void ClientConnection::respond_policy(policy::PolicyRequest& r) {
  if (!r.message_detail.empty())
    spdlog::info("request {}: route {}: {} ({})", std::string_view(request_id_, request_id_len_), route_->name,
                 r.message, r.message_detail);
  if (r.status == 429)
    w_.metrics().add_lazy(pin_->policy_slots[route_index_].exceeded, "gateway_rate_limit_exceeded_total",
                          "Requests refused by a rate limit.", [this] { return route_label(); });
  // Fields decided for the response by earlier policies (CORS, RateLimit-*) go on the refusal
  // too: a browser can then read a 401 or 429.
  if (r.status >= 300)
    for (const auto& kv : x_->policy_resp_headers) r.answer_headers.push_back(kv);
  const bool must_close = prepare_local_answer(r.status, false);
  const std::string_view rid(request_id_, request_id_len_);
  if (r.status < 300) write_local_response(x_->out_head, r.status, r.answer_body, "text/plain", r.answer_headers, rid, must_close);
  else write_error_response(x_->out_head, r.status, r.message, rid, must_close, 0, &r.answer_headers);
  send_local_answer();
}

}  // namespace lg
