// The client side of a request from its head to the upstream: parsing the head, the request id,
// routing, the native policies and scripts that run before the upstream (policy_phase.cpp,
// script_phases.cpp), and the head that goes upstream. The connection's lifecycle, local
// answers and the end of a request are in client_connection.cpp.
#include <cstring>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"
#include "router/path_normalize.hpp"
#include "router/router.hpp"

namespace lg {

namespace {
std::string_view find_header(const std::vector<http::Header>& hs, std::string_view name) {
  for (const http::Header& h : hs)
    if (h.name.size() == name.size() && http::iequals(h.name, name)) return h.value;
  return {};
}
}  // namespace

void ClientConnection::on_head_bytes() {
  const LimitsConfig& lim = w_.limits();
  if (phase_ == Phase::idle) {
    phase_ = Phase::reading_head;
    t_start_ = std::chrono::steady_clock::now();
    set_deadline(lim.client_header_timeout.count());
  }
  head_.headers = &w_.scratch_headers();
  // Body limits depend on the route, so the parser only guards against overflow here.
  const http::RequestLimits rl{lim.max_header_bytes, lim.max_uri_bytes, lim.max_headers,
                               std::numeric_limits<std::uint64_t>::max() / 2};
  http::ParseResult r = http::parse_request_head({rbuf_.read_ptr(), rbuf_.size()}, rl, scan_, head_);
  if (r.kind == http::ParseResult::incomplete) {
    read_client();
    return;
  }
  in_request_ = true;
  accounted_ = false;
  if (r.kind == http::ParseResult::error) {
    request_body_done_ = false;  // framing is in doubt: the connection closes after the answer
    respond_error(r.status, r.reason, true);
    return;
  }
  head_unconsumed_ = true;
  handle_request();
}

void ClientConnection::assign_request_id(std::string_view client_value) {
  if (valid_request_id(client_value)) {
    std::memcpy(request_id_, client_value.data(), client_value.size());
    request_id_len_ = static_cast<std::uint8_t>(client_value.size());
  } else {
    w_.ids().request_id(request_id_);
    request_id_len_ = 36;
  }
}

void ClientConnection::handle_request() {
  pin_ = w_.pin();
  exchange();
  const Snapshot& snap = *pin_->snap;
  const LimitsConfig& lim = snap.config.limits;
  method_bit_ = head_.method_bit;
  method_.assign(head_.method);
  http10_ = head_.version_minor == 0;
  head_request_ = method_bit_ == M_HEAD;
  // A client may queue at most max_pipelined requests ahead; the last one allowed is answered
  // with Connection: close and the rest are discarded with the connection.
  keep_alive_ = head_.keep_alive && !drain_requested_ && !w_.draining() && pipelined_ < lim.max_pipelined;
  request_body_done_ = head_.body == http::BodyKind::none;
  bytes_in_ = head_.head_bytes;
  assign_request_id(find_header(*head_.headers, "x-request-id"));

  if (head_.target == "*") {  // OPTIONS * asks about the server, not a route: not proxied
    path_.assign("*");
    respond_error(400, "asterisk-form request-target is not supported", false);
    return;
  }
  if (const char* bad = normalize_path(head_.path, path_)) {
    path_.assign(head_.path);
    respond_error(400, bad, true);
    return;
  }
  RouteMatchResult m = snap.router.match(head_.host, path_, method_bit_);
  if (m.kind == RouteMatchResult::not_found) {
    respond_error(404, "no route matched", false);
    return;
  }
  if (m.kind == RouteMatchResult::method_not_allowed) {
    respond_error(405, "method not allowed", false, m.allow);
    return;
  }
  route_index_ = m.route;
  route_ = &snap.config.routes[m.route];
  upstream_index_ = snap.route_upstream[m.route];
  metrics_slot_ = pin_->route_metrics[m.route];
  const std::uint64_t max_body = route_->max_body_bytes.value_or(lim.max_body_bytes);
  if (head_.body == http::BodyKind::content_length && head_.content_length > max_body) {
    respond_error(413, "request body too large", true);
    return;
  }
  x_->upstream_path.clear();
  build_upstream_path(*route_, m, path_, x_->upstream_path);
  x_->consumer_id.clear();
  if (const policy::RoutePolicies& rp = snap.policies->routes[m.route]; !rp.empty() && !run_policies(rp)) return;
  after_policies();
}

void ClientConnection::after_policies() {
  scripted_ = !pin_->snap->route_scripts[route_index_].empty();
  if (scripted_ && !run_request_scripts()) return;  // answered, failed, or a handler waits
  continue_request();
}

// After routing and the rewrite/access scripts: the upstream head, then the body.
void ClientConnection::continue_request() {
  const LimitsConfig& lim = pin_->snap->config.limits;
  websocket_ = head_.upgrade_websocket && route_->websocket;
  if (scripted_) {
    ScriptRequest& s = x_->script;
    if (s.path_set) x_->upstream_path = s.up_path;
    if (s.upstream_override >= 0) upstream_index_ = static_cast<std::uint32_t>(s.upstream_override);
    // A replaced body needs the client's own body read (and dropped) first.
    if (s.body_set && !s.req_body_ready && !request_body_done_) {
      start_body_read(BodyThen::continue_request);
      return;
    }
  }
  const bool buffered_body = scripted_ && (x_->script.body_set || x_->script.req_body_ready);
  prepare_upstream_head();

  // Everything needed from the head is now copied out; the body (if any) follows it, unless a
  // script read or replaced it (then it goes out from ScriptRequest with the head).
  req_body_ = buffered_body ? http::BodyKind::none : head_.body;
  req_remaining_ = head_.content_length;
  if (req_body_ == http::BodyKind::chunked) {
    const std::uint64_t max_body = route_->max_body_bytes.value_or(lim.max_body_bytes);
    req_chunks_.set_limits({max_body, static_cast<std::size_t>(lim.max_chunk_ext_bytes), 8192});
    req_chunks_.reset();
  }
  expect_continue_ = head_.expect_continue && !request_body_done_ && !buffered_body;
  rbuf_.consume(head_.head_bytes);
  head_unconsumed_ = false;
  scan_.reset();
  tried_targets_ = 0;
  attempts_ = 0;
  start_upstream();
}

void ClientConnection::prepare_upstream_head() {
  const UpstreamConfig& ucfg = *pin_->snap->upstreams[upstream_index_].config;
  RequestHeadOptions opts;
  if (ucfg.balance == BalanceKind::consistent_hash) {
    if (ucfg.hash_on == HashSource::header) opts.hash_header = ucfg.hash_key;
    else if (ucfg.hash_on == HashSource::cookie) opts.hash_cookie = ucfg.hash_key;
  }
  std::string_view body_out;  // a body the scripts read or replaced, sent with the head
  bool buffered_body = false;
  if (has_policies_ && !x_->policy_edits.empty()) opts.policy_edits = &x_->policy_edits;
  if (has_policies_ && x_->policy.up_query_set) opts.query_override = &x_->policy.up_query;  // a script's wins
  if (scripted_) {
    const ScriptRequest& s = x_->script;
    if (!s.up_edits.empty()) opts.edits = &s.up_edits;  // nothing to look up per field otherwise
    if (s.query_set) opts.query_override = &s.up_query;
    if (s.method_set) opts.method_override = s.up_method;
    buffered_body = s.body_set || s.req_body_ready;
    body_out = s.body_set ? std::string_view(s.up_body) : std::string_view(s.req_body_buf);
  }
  ClientRequestFacts facts;
  x_->up_head.clear();
  write_upstream_request_start(x_->up_head, head_, x_->upstream_path, opts, facts);
  if (valid_traceparent(facts.traceparent)) w_.ids().traceparent(traceparent_, facts.traceparent.substr(3, 32));
  else w_.ids().traceparent(traceparent_);
  const std::string_view client_ip(client_ip_, client_ip_len_);
  GatewayRequestHeaders g;
  g.request_id = std::string_view(request_id_, request_id_len_);
  g.traceparent = std::string_view(traceparent_, 55);
  g.client_ip = client_ip;
  g.forwarded_for = facts.forwarded_for;
  g.forwarded_for_count = facts.forwarded_for_count;
  g.forwarded_host = head_.host;
  g.body = head_.body;
  g.content_length = head_.content_length;
  if (buffered_body) {
    const bool may_omit = body_out.empty() && head_.body == http::BodyKind::none;
    g.body = may_omit ? http::BodyKind::none : http::BodyKind::content_length;
    g.content_length = body_out.size();
  }
  g.websocket = websocket_;
  if (client_.is_tls()) g.proto = "https";
  finish_upstream_request(x_->up_head, g);
  if (route_->preserve_host && !head_.host.empty()) write_host_line(x_->host_line, head_.host);
  else x_->host_line.clear();  // filled with the target's address once it is picked
  x_->hash_key.assign(ucfg.hash_on == HashSource::client_ip ? client_ip : facts.hash_value);
}

}  // namespace lg
