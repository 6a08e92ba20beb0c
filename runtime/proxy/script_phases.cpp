// Where a ClientConnection hands its request to the route's scripts: rewrite and access before
// anything goes upstream, response when the upstream's head has arrived (before the client sees
// it), body once a buffered response is complete, log once the client has its answer. Failures
// answer 500 and never reach the client's body.
//
// A handler may wait (gw.http, gw.sleep, gw.request.get_body): the phase reports `waiting`, the
// connection parks in Phase::scripting with the views it still needs copied, and
// on_script_wake() resumes the phase and goes on where it stopped.
#include <spdlog/spdlog.h>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"
#include "proxy/log_task.hpp"
#include "proxy/script_outcome.hpp"

namespace lg {

namespace {
constexpr std::size_t kMaxLogTasks = 4096;  // per worker

const char* outcome_kind(lua::Outcome o) {
  switch (o) {
    case lua::Outcome::cpu_exceeded: return "cpu";
    case lua::Outcome::memory_exceeded: return "memory";
    case lua::Outcome::yielded: return "yield";
    default: return "runtime";
  }
}
}  // namespace

void report_script_failure(Worker& w, std::string_view request_id, const lua::PhaseReport& r, bool log_phase) {
  // The error text is for the log only; the client gets a generic 500 with the request id.
  spdlog::error("request {}: script {} failed{} ({}): {}", request_id, r.script, log_phase ? " in the log phase" : "",
                outcome_kind(r.outcome), r.message);
  w.metrics().add(w.metrics().series("gateway_script_errors_total", "Script handlers stopped by an error or a budget.",
                                     fmt::format("script=\"{}\",kind=\"{}\"", r.script, outcome_kind(r.outcome))));
}

bool ClientConnection::run_request_scripts() {
  ScriptRequest& s = x_->script;
  const std::uint8_t phases = pin_->scripts->route_phases[route_index_];
  s.reset();
  s.upstreams = &pin_->snap->config.upstreams;
  s.shared = w_.shared_state();
  s.wait_limit_ms = pin_->snap->config.scripts.wait_limit.count();
  s.consumer_id = x_->consumer_id;  // who a native policy authenticated, if any
  s.io.bind(&w_, pin_, this);
  // Later phases run after the read buffer moved on: only then is the request copied.
  const bool later = phases & (lua::phase_bit(lua::Phase::response) | lua::phase_bit(lua::Phase::body) | lua::phase_bit(lua::Phase::log));
  s.bind_request(head_, method_, path_, std::string_view(client_ip_, client_ip_len_),
                 std::string_view(request_id_, request_id_len_), later);
  s.scheme = client_.is_tls() ? "https" : "http";
  s.cert_subject = client_.tls_peer_subject();  // lives with the connection; own_views() copies it
  return run_request_phases(lua::Phase::rewrite, false);
}

bool ClientConnection::run_request_phases(lua::Phase from, bool resuming) {
  ScriptRequest& s = x_->script;
  const std::uint8_t phases = pin_->scripts->route_phases[route_index_];
  for (lua::Phase p : {lua::Phase::rewrite, lua::Phase::access}) {
    if (p < from || (!resuming && !(phases & lua::phase_bit(p)))) continue;
    s.current = p;
    const lua::PhaseReport r = resuming ? w_.engine().resume_phase(*pin_->snap, *pin_->scripts, route_index_, p, s)
                                        : w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, p, s);
    resuming = false;
    if (!settle_phase(r, p)) return false;
  }
  return true;
}

// True when the request goes on; otherwise it was answered, failed or waits.
bool ClientConnection::settle_phase(const lua::PhaseReport& r, lua::Phase p) {
  switch (r.verdict) {
    case lua::PhaseReport::next: return true;
    case lua::PhaseReport::failed:
      x_->script.io.cancel();  // a run killed right at a wait leaves that wait started
      if (p == lua::Phase::response) release_upstream(false);  // its response is dropped unread
      script_failed(r);
      return false;
    case lua::PhaseReport::responded: respond_script_exit(); return false;
    case lua::PhaseReport::waiting: enter_script_wait(p); return false;
  }
  return false;
}

// The views a waiting phase still needs are copied out of the worker's scratch (another
// connection parses into it meanwhile); the read buffers stay put while nothing reads them.
void ClientConnection::enter_script_wait(lua::Phase p) {
  ScriptRequest& s = x_->script;
  if (p == lua::Phase::rewrite || p == lua::Phase::access) {
    keep_request_head();
  } else if (p == lua::Phase::response && saved_resp_.headers != &s.saved_up_headers) {
    s.saved_up_headers = *saved_resp_.headers;
    saved_resp_.headers = &s.saved_up_headers;
    s.resp_headers = saved_resp_.headers;
  }
  waiting_phase_ = p;
  if (phase_ != Phase::reading_body) {
    phase_ = Phase::scripting;
    watch_client();
  }
  deadline_ms = 0;  // every wait is bounded by its own timer or timeout
}

// The request head's field list lives in the worker's scratch, which the next head parsed on
// this worker overwrites: a request that leaves the loop's turn before its upstream head is
// written keeps its own copy (the views still point into rbuf_, which stays put).
void ClientConnection::keep_request_head() {
  ScriptRequest& s = x_->script;
  if (head_.headers == &s.saved_req_headers) return;
  s.saved_req_headers = *head_.headers;
  head_.headers = &s.saved_req_headers;
  if (s.live_headers) s.live_headers = head_.headers;
}

void ClientConnection::on_script_wake() {
  if (phase_ != Phase::scripting || !x_) return;
  ScriptRequest& s = x_->script;
  switch (waiting_phase_) {
    case lua::Phase::rewrite:
    case lua::Phase::access:
      if (run_request_phases(waiting_phase_, true)) continue_request();
      return;
    case lua::Phase::response: {
      s.current = lua::Phase::response;
      const lua::PhaseReport r = w_.engine().resume_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::response, s);
      if (!settle_phase(r, lua::Phase::response)) return;
      s.resp_headers = nullptr;
      deliver_response(saved_resp_);
      return;
    }
    case lua::Phase::body: {
      s.current = lua::Phase::body;
      const lua::PhaseReport r = w_.engine().resume_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::body, s);
      if (!settle_phase(r, lua::Phase::body)) return;
      send_buffered_response();
      return;
    }
    default: return;  // the log phase finishes in a LogTask
  }
}

// While a handler waits, a lazy read stays armed so that a client who leaves is noticed (and its
// waits cancelled) at once. Lazy: its buffer is chosen when bytes arrive, so the request may
// consume rbuf_ meanwhile; and only while rbuf_ has room, so it is never compacted under the
// head's views.
void ClientConnection::watch_client() {
  if (!client_.reading() && rbuf_.attached() && rbuf_.free_space() > 0) client_.read_lazy();
}

bool ClientConnection::run_response_scripts(const http::ResponseHead& resp) {
  if (!(pin_->scripts->route_phases[route_index_] & lua::phase_bit(lua::Phase::response))) return true;
  ScriptRequest& s = x_->script;
  s.current = lua::Phase::response;
  s.status = resp.status;
  s.resp_headers = resp.headers;
  saved_resp_ = resp;
  const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::response, s);
  if (!settle_phase(r, lua::Phase::response)) return false;
  s.resp_headers = nullptr;
  return true;
}

void ClientConnection::run_log_scripts() {
  ScriptRequest& s = x_->script;
  if (!(pin_->scripts->route_phases[route_index_] & lua::phase_bit(lua::Phase::log))) {
    s.io.cancel();
    w_.engine().end_request(s);
    return;
  }
  s.io.cancel();  // a handler of an earlier phase may still wait (the client went away)
  w_.engine().abandon(s);
  s.current = lua::Phase::log;
  s.status = status_;
  s.resp_headers = nullptr;
  const lua::PhaseReport r = w_.engine().run_phase(*pin_->snap, *pin_->scripts, route_index_, lua::Phase::log, s);
  if (r.verdict == lua::PhaseReport::waiting && w_.log_tasks() >= kMaxLogTasks) {
    s.io.cancel();  // too many log phases waiting already: this one is dropped, and says so
    report_script_failure(w_, s.id, {lua::PhaseReport::failed, lua::Outcome::runtime_error,
                                     "too many waiting log handlers on this worker", r.script}, true);
  } else if (r.verdict == lua::PhaseReport::waiting) {  // finished by a LogTask; this request moves on
    s.own_views();
    pin_->acquire();
    LogTask::start(w_, pin_, x_, route_index_);
    x_ = nullptr;
    return;
  }
  if (r.verdict == lua::PhaseReport::failed) report_script_failure(w_, s.id, r, true);
  w_.engine().end_request(s);
}

void ClientConnection::script_failed(const lua::PhaseReport& r) {
  report_script_failure(w_, std::string_view(request_id_, request_id_len_), r, false);
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
