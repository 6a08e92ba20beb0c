// Where a ClientConnection hands its request to the route's scripts: rewrite and access before
// anything goes upstream, response when the upstream's head has arrived (before the client sees
// it), log once the client has its answer. Failures answer 500 and never reach the client's body.
#include <spdlog/spdlog.h>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

namespace {
const char* outcome_kind(lua::Outcome o) {
  switch (o) {
    case lua::Outcome::cpu_exceeded: return "cpu";
    case lua::Outcome::memory_exceeded: return "memory";
    case lua::Outcome::yielded: return "yield";
    default: return "runtime";
  }
}
}  // namespace

bool ClientConnection::run_request_scripts() {
  ScriptRequest& s = x_->script;
  const std::uint8_t phases = pin_->scripts->route_phases[route_index_];
  s.reset();
  s.upstreams = &pin_->snap->config.upstreams;
  s.shared = w_.shared_state();
  // Later phases run after the read buffer moved on: only then is the request copied.
  const bool later = phases & (lua::phase_bit(lua::Phase::response) | lua::phase_bit(lua::Phase::body) | lua::phase_bit(lua::Phase::log));
  s.bind_request(head_, method_, path_, std::string_view(client_ip_, client_ip_len_),
                 std::string_view(request_id_, request_id_len_), later);
  for (lua::Phase p : {lua::Phase::rewrite, lua::Phase::access}) {
    if (!(phases & lua::phase_bit(p))) continue;
    s.current = p;
    const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, p, s);
    if (r.verdict == lua::PhaseReport::failed) {
      script_failed(r);
      return false;
    }
    if (r.verdict == lua::PhaseReport::responded) {
      respond_script_exit();
      return false;
    }
  }
  return true;
}

bool ClientConnection::run_response_scripts(const http::ResponseHead& resp) {
  if (!(pin_->scripts->route_phases[route_index_] & lua::phase_bit(lua::Phase::response))) return true;
  ScriptRequest& s = x_->script;
  s.current = lua::Phase::response;
  s.status = resp.status;
  s.resp_headers = resp.headers;
  const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::response, s);
  s.resp_headers = nullptr;
  if (r.verdict != lua::PhaseReport::failed) return true;
  release_upstream(false);  // its response is dropped unread
  script_failed(r);
  return false;
}

void ClientConnection::run_log_scripts() {
  ScriptRequest& s = x_->script;
  if (!(pin_->scripts->route_phases[route_index_] & lua::phase_bit(lua::Phase::log))) {
    w_.engine().end_request(s);
    return;
  }
  s.current = lua::Phase::log;
  s.status = status_;
  s.resp_headers = nullptr;
  const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::log, s);
  if (r.verdict == lua::PhaseReport::failed) {
    spdlog::error("request {}: script {} failed in the log phase ({}): {}", s.id, r.script, outcome_kind(r.outcome),
                  r.message);
    w_.metrics().add(w_.metrics().series("gateway_script_errors_total", "Script handlers stopped by an error or a budget.",
                                         fmt::format("script=\"{}\",kind=\"{}\"", r.script, outcome_kind(r.outcome))));
  }
  w_.engine().end_request(s);
}

void ClientConnection::script_failed(const lua::PhaseReport& r) {
  // The error text is for the log only; the client gets a generic 500 with the request id.
  spdlog::error("request {}: script {} failed ({}): {}", std::string_view(request_id_, request_id_len_), r.script,
                outcome_kind(r.outcome), r.message);
  w_.metrics().add(w_.metrics().series("gateway_script_errors_total", "Script handlers stopped by an error or a budget.",
                                       fmt::format("script=\"{}\",kind=\"{}\"", r.script, outcome_kind(r.outcome))));
  respond_error(500, "script error", false);
}

void ClientConnection::respond_script_exit() {
  ScriptRequest& s = x_->script;
  const bool must_close = prepare_local_answer(static_cast<std::uint16_t>(s.exit_status), false);
  write_local_response(x_->out_head, status_, s.exit_body, s.exit_type, s.exit_headers,
                       std::string_view(request_id_, request_id_len_), must_close);
  send_local_answer();
}

}  // namespace lg

namespace lg {

// Body handlers see the whole response: it is collected (bounded by the route's body limit),
// handed to the body phase, then sent with a Content-Length of what the scripts left.
void ClientConnection::start_buffered_response(const http::ResponseHead& resp) {
  ScriptRequest& s = x_->script;
  s.body.clear();
  s.saved_resp_headers.clear();
  for (const http::Header& h : *resp.headers) {
    if (gateway_owned_response_field(h.name) || s.resp_edits.drops(h.name)) continue;
    s.saved_resp_headers.emplace_back(std::string(h.name), std::string(h.value));
  }
  for (const auto& kv : s.resp_edits.set) s.saved_resp_headers.push_back(kv);
  for (const auto& kv : s.resp_edits.add) s.saved_resp_headers.push_back(kv);
  buffering_ = true;
  resp_chunked_out_ = false;  // collect plain data spans
  resp_head_pending_ = false;
  up_->buf.consume(resp.head_bytes);
  resp_scan_.reset();
  phase_ = Phase::sending_response;
  collect_response_body();
}

void ClientConnection::collect_response_body() {
  ScriptRequest& s = x_->script;
  std::size_t n = 0;
  bool finished = false;
  http::ParseResult err = http::ParseResult::more();
  const std::size_t consumed = frame_response_body(n, finished, err);
  if (err.kind == http::ParseResult::error) {
    upstream_failed(BackendError::invalid_response, 502, "invalid response body from upstream");
    return;
  }
  for (std::size_t i = 0; i < n; ++i) s.body.append(static_cast<const char*>(x_->iov[i].iov_base), x_->iov[i].iov_len);
  up_->buf.consume(consumed);
  const std::uint64_t limit = route_->max_body_bytes.value_or(pin_->snap->config.limits.max_body_bytes);
  if (s.body.size() > limit) {
    release_upstream(false);
    respond_error(502, "upstream response larger than the body phase allows", false);
    return;
  }
  if (!finished) {
    waiting_on_client_ = false;
    set_deadline(read_timeout_ms());
    up_->start_read();
    return;
  }
  release_upstream(upstream_reusable_ && up_->buf.empty() && !early_response_);
  s.current = lua::Phase::body;
  s.status = status_;
  s.resp_headers = nullptr;
  const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::body, s);
  if (r.verdict == lua::PhaseReport::failed) {
    script_failed(r);
    return;
  }
  x_->out_head.clear();
  write_local_response(x_->out_head, status_, head_request_ ? std::string_view{} : std::string_view(s.body),
                       "application/octet-stream", s.saved_resp_headers, std::string_view(request_id_, request_id_len_),
                       !keep_alive_);
  send_local_answer();
}

}  // namespace lg
