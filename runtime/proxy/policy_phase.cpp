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
  r.headers = head_.headers;
  r.shared = w_.shared_state();
  r.now_ms = monotonic_ms();
  r.now_unix = static_cast<std::int64_t>(std::time(nullptr));
  r.consumer = nullptr;
  r.consumer_id.clear();
  r.client_ip.clear();
  r.up_edits = &x.policy_edits;
  r.resp_headers = &x.policy_resp_headers;
  r.status = 0;
  r.message = "";
  r.message_detail = {};
  r.answer_headers.clear();
  r.answer_body.clear();
  has_policies_ = true;
  for (const auto& p : rp.chain) {
    if (p->apply(r)) continue;
    respond_policy(r);
    return false;
  }
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

void ClientConnection::respond_policy(const policy::PolicyRequest& r) {
  if (!r.message_detail.empty())
    spdlog::info("request {}: route {}: {} ({})", std::string_view(request_id_, request_id_len_), route_->name,
                 r.message, r.message_detail);
  if (r.status == 429)
    w_.metrics().add(w_.metrics().series("gateway_rate_limit_exceeded_total", "Requests refused by a rate limit.",
                                         fmt::format("route=\"{}\"", route_->name)));
  const bool must_close = prepare_local_answer(r.status, false);
  const std::string_view rid(request_id_, request_id_len_);
  if (r.status < 300) write_local_response(x_->out_head, r.status, r.answer_body, "text/plain", r.answer_headers, rid, must_close);
  else write_error_response(x_->out_head, r.status, r.message, rid, must_close, 0, &r.answer_headers);
  send_local_answer();
}

}  // namespace lg
