// The upstream half of a ClientConnection: pick a target, connect or reuse a pooled connection,
// stream the request, parse the response head, stream the body back, or tunnel after a 101.
#include "http/response_parser.hpp"
#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

namespace {
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

bool idempotent(std::uint16_t m) {
  return m & (M_GET | M_HEAD | M_OPTIONS | M_TRACE | M_PUT | M_DELETE);
}
}  // namespace

std::int64_t ClientConnection::connect_timeout_ms() const {
  return route_->timeouts.connect.value_or(pin_->snap->upstreams[upstream_index_].config->timeouts.connect).count();
}
std::int64_t ClientConnection::read_timeout_ms() const {
  return route_->timeouts.read.value_or(pin_->snap->upstreams[upstream_index_].config->timeouts.read).count();
}
std::int64_t ClientConnection::write_timeout_ms() const {
  return route_->timeouts.write.value_or(pin_->snap->upstreams[upstream_index_].config->timeouts.write).count();
}

void ClientConnection::start_upstream() {
  const UpstreamGroup& group = pin_->snap->upstreams[upstream_index_];
  WorkerGroup& wg = pin_->groups[upstream_index_];
  const std::int64_t now = monotonic_ms();
  for (std::size_t i = 0; i < wg.targets.size(); ++i) {
    wg.view[i].usable = wg.targets[i]->usable(now);
    wg.view[i].active = wg.targets[i]->active;
  }
  const int idx = pick_target(*group.config, group.ring, wg.view, wg.rr, x_->hash_key, tried_targets_);
  if (idx < 0) {
    if (tried_targets_ == 0) respond_error(503, "no upstream target available", false);
    else if (last_connect_timed_out_) respond_error(504, "upstream connect timed out", false);
    else respond_error(502, "upstream connect failed", false);
    return;
  }
  if (idx < 64) tried_targets_ |= std::uint64_t{1} << idx;
  ++attempts_;
  target_idx_ = idx;
  target_ = wg.targets[static_cast<std::size_t>(idx)];
  if (!route_->preserve_host || head_.host.empty() || x_->host_line.empty()) write_host_line(x_->host_line, target_->key);
  head_sent_ = false;
  resp_scan_.reset();
  t_upstream_ = std::chrono::steady_clock::now();
  // TLS with `sni: host`: the client's Host names the upstream (when it is forwarded).
  const std::string_view client_host = target_->tls && route_->preserve_host ? head_.host : std::string_view();
  const std::string_view tls_name = target_->tls_name(client_host);  // empty without TLS
  if (UpstreamConnection* pooled = w_.pool().take_idle(*target_, tls_name)) {
    attach_upstream(pooled, true);
    send_request_part();
    return;
  }
  attach_upstream(new UpstreamConnection(w_, *target_), false);
  phase_ = Phase::connecting;
  set_deadline(connect_timeout_ms());
  up_->connect(tls_name);
}

void ClientConnection::attach_upstream(UpstreamConnection* uc, bool pooled) {
  // A pooled connection arrives with the pool's reference and a new one with its creator's;
  // either becomes ours.
  (void)pooled;
  up_ = uc;
  uc->owner = this;
  uc->requests++;
  uc->target.active++;
}

void ClientConnection::on_upstream_connected(int err) {
  if (phase_ != Phase::connecting) return;
  if (err) {
    upstream_failed(BackendError::connect, 502, "upstream connect failed");
    return;
  }
  up_->start_read();  // an early answer or a close is seen while the request is still going out
  send_request_part();
}

void ClientConnection::send_request_part() {
  phase_ = Phase::sending_request;
  waiting_on_client_ = false;
  std::size_t n = 0;
  if (!head_sent_) {
    x_->iov[n++] = make_iov(x_->up_head.data(), x_->up_head.size());
    x_->iov[n++] = make_iov(x_->host_line.data(), x_->host_line.size());
    if (scripted_ && (x_->script.body_set || x_->script.req_body_ready)) {  // read or replaced by a script
      const std::string& b = x_->script.body_set ? x_->script.up_body : x_->script.req_body_buf;
      if (!b.empty()) x_->iov[n++] = make_iov(b.data(), b.size());
    }
  }
  http::ParseResult err = http::ParseResult::more();
  const std::size_t consumed = frame_request_body(n, err);
  if (err.kind == http::ParseResult::error) {
    respond_error(err.status, err.reason, true);
    return;
  }
  if (consumed) expect_continue_ = false;  // the client did not wait for 100 Continue
  if (n == 0) {
    send_continue_then_read_body();
    return;
  }
  set_deadline(write_timeout_ms());
  req_consumed_ = consumed;
  up_->write(x_->iov.data(), n);
}

void ClientConnection::on_upstream_written(int err) {
  if (phase_ == Phase::tunnel) {
    if (err) {
      close_now();
      return;
    }
    bytes_in_ += req_consumed_;
    rbuf_.consume(req_consumed_);
    pump_client_to_upstream();
    return;
  }
  if (phase_ != Phase::sending_request) return;
  const std::size_t consumed = req_consumed_;
  if (err) {
    upstream_failed(BackendError::reset, 502, "upstream closed the connection");
    return;
  }
  head_sent_ = true;
  rbuf_.consume(consumed);
  bytes_in_ += consumed;
  if (req_body_ == http::BodyKind::content_length) {
    req_remaining_ -= consumed;
    request_body_done_ = req_remaining_ == 0;
  } else if (req_body_ == http::BodyKind::chunked) {
    request_body_done_ = req_chunks_.done();
  }
  if (early_response_) {
    if (early_error_) {
      upstream_failed(BackendError::reset, 502, "upstream closed the connection");
      return;
    }
    if (!request_body_done_) keep_alive_ = false;  // the rest of the client's body stays unread
    phase_ = Phase::awaiting_response;
    on_response_bytes();
    return;
  }
  if (request_body_done_) {
    phase_ = Phase::awaiting_response;
    set_deadline(read_timeout_ms());
    up_->start_read();
    return;
  }
  if (!rbuf_.empty() && consumed) {
    send_request_part();  // more body already buffered
    return;
  }
  send_continue_then_read_body();
}

void ClientConnection::send_continue_then_read_body() {
  if (expect_continue_ && !sent_100_ && !http10_) {
    sent_100_ = true;
    write_client(ClientWrite::continue_100, kContinue, sizeof kContinue - 1);
    return;
  }
  waiting_on_client_ = true;
  set_deadline(w_.limits().client_body_timeout.count());
  read_client();
}

void ClientConnection::on_upstream_read(int err, std::size_t n) {
  // A read of 0 bytes without an error is the upstream closing: treat it as one.
  const bool ec = err != 0 || n == 0;
  switch (phase_) {
    case Phase::sending_request:
      early_response_ = true;
      early_error_ = ec;
      if (!waiting_on_client_) return;  // the pending upstream write completes first and decides
      if (ec) {
        upstream_failed(BackendError::reset, 502, "upstream closed the connection");
        return;
      }
      keep_alive_ = false;
      phase_ = Phase::awaiting_response;
      on_response_bytes();
      return;
    case Phase::awaiting_response:
      if (ec) {
        upstream_failed(BackendError::reset, 502, "upstream closed the connection before responding");
        return;
      }
      on_response_bytes();
      return;
    case Phase::sending_response:
      if (ec) {
        if (resp_body_ == http::BodyKind::until_close) {
          upstream_eof_ = true;
          upstream_reusable_ = false;
          send_response_part();
        } else {
          upstream_failed(BackendError::reset, 502, "upstream closed mid-response");
        }
        return;
      }
      send_response_part();
      return;
    case Phase::tunnel:
      if (err) {
        close_now();
        return;
      }
      if (n == 0) {  // the upstream half-closed: pass it on once its last bytes are out
        upstream_eof_ = true;
        client_.shutdown_send();
        if (client_eof_) close_now();
        return;
      }
      pump_upstream_to_client();
      return;
    default:
      (void)n;
      return;
  }
}

void ClientConnection::on_response_bytes() {
  const LimitsConfig& lim = pin_->snap->config.limits;
  for (;;) {
    http::ResponseHead resp;
    resp.headers = &w_.scratch_headers();
    const http::ParseResult r = http::parse_response_head({up_->buf.read_ptr(), up_->buf.size()},
                                                          lim.max_response_header_bytes, lim.max_headers * 2,
                                                          head_request_, resp_scan_, resp);
    if (r.kind == http::ParseResult::incomplete) {
      set_deadline(read_timeout_ms());
      up_->start_read();
      return;
    }
    if (r.kind == http::ParseResult::error) {
      upstream_failed(BackendError::invalid_response, 502, "invalid response from upstream");
      return;
    }
    if (resp.status == 101) {
      if (websocket_) start_tunnel(resp);
      else upstream_failed(BackendError::invalid_response, 502, "unexpected 101 from upstream");
      return;
    }
    if (resp.status < 200) {  // interim: the gateway answers 100-continue itself
      up_->buf.consume(resp.head_bytes);
      resp_scan_.reset();
      if (up_->buf.empty()) {
        set_deadline(read_timeout_ms());
        up_->start_read();
        return;
      }
      continue;
    }
    start_response(resp);
    return;
  }
}

void ClientConnection::start_response(const http::ResponseHead& resp) {
  upstream_latency_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_upstream_).count();
  w_.pool().record_success(*target_);
  status_ = resp.status;
  resp_body_ = resp.body;
  resp_remaining_ = resp.content_length;
  upstream_eof_ = false;
  if (resp_body_ == http::BodyKind::chunked) {
    resp_chunks_.set_limits({std::uint64_t{1} << 62, 4096, 8192});
    resp_chunks_.reset();
  }
  upstream_reusable_ = resp.keep_alive && resp_body_ != http::BodyKind::until_close;
  resp_chunked_out_ = false;
  if (resp_body_ == http::BodyKind::chunked || resp_body_ == http::BodyKind::until_close) {
    if (http10_) keep_alive_ = false;  // a 1.0 client learns the end of the body from the close
    else resp_chunked_out_ = true;
  }
  if (!request_body_done_) keep_alive_ = false;
  if (drain_requested_ || w_.draining()) keep_alive_ = false;
  if (scripted_ && !run_response_scripts(resp)) return;  // failed, or a handler waits
  deliver_response(resp);
}

// The response head goes to the client (or the body is collected for the body phase).
void ClientConnection::deliver_response(const http::ResponseHead& resp) {
  if (scripted_ && resp_body_ != http::BodyKind::none &&
      (pin_->scripts->route_phases[route_index_] & lua::phase_bit(lua::Phase::body))) {
    start_buffered_response(resp);
    return;
  }
  ClientResponseOptions o;
  if (scripted_ && !x_->script.resp_edits.empty()) o.edits = &x_->script.resp_edits;
  if (has_policies_ && !x_->policy_resp_headers.empty()) o.extra = &x_->policy_resp_headers;
  o.request_id = std::string_view(request_id_, request_id_len_);
  o.chunked = resp_chunked_out_;
  o.keep_alive = keep_alive_;
  o.client_http10 = http10_;
  x_->out_head.clear();
  write_client_response_head(x_->out_head, resp, o);
  up_->buf.consume(resp.head_bytes);
  resp_scan_.reset();
  resp_head_pending_ = true;
  phase_ = Phase::sending_response;
  send_response_part();
}

void ClientConnection::send_response_part() {
  if (buffering_) {
    collect_response_body();
    return;
  }
  std::size_t n = 0;
  if (resp_head_pending_) x_->iov[n++] = make_iov(x_->out_head.data(), x_->out_head.size());
  bool finished = false;
  http::ParseResult err = http::ParseResult::more();
  const std::size_t consumed = frame_response_body(n, finished, err);
  if (err.kind == http::ParseResult::error) {
    upstream_failed(BackendError::invalid_response, 502, "invalid response body from upstream");
    return;
  }
  if (n == 0 && finished) {  // only framing arrived (a last chunk for a 1.0 client): nothing to write
    resp_consumed_ = consumed;
    resp_finished_ = true;
    on_response_part_written(0);
    return;
  }
  if (n == 0) {
    waiting_on_client_ = false;
    set_deadline(read_timeout_ms());
    up_->start_read();
    return;
  }
  waiting_on_client_ = true;
  set_deadline(w_.limits().send_timeout.count());
  resp_consumed_ = consumed;
  resp_finished_ = finished;
  write_client(ClientWrite::response_part, x_->iov.data(), n);
}

void ClientConnection::on_response_part_written(int) {
  if (phase_ != Phase::sending_response) return;
  response_started_ = true;
  resp_head_pending_ = false;
  up_->buf.consume(resp_consumed_);
  if (!resp_finished_) {
    send_response_part();
    return;
  }
  // Bytes after a complete response mean the upstream's framing is off: never reuse it.
  release_upstream(upstream_reusable_ && up_->buf.empty() && !early_response_);
  finish_request();
}

bool ClientConnection::can_retry() const {
  // Only a stale pooled connection (closed by the target while idle) before any response byte,
  // for a request safe to repeat: the method that went upstream (a script may have changed it)
  // is idempotent, and any body is still here to resend.
  const bool method_ok = scripted_ && x_->script.method_set ? http::idempotent_method(x_->script.up_method)
                                                            : idempotent(method_bit_);
  const bool body_ok = req_body_ == http::BodyKind::none;  // scripted bodies are kept whole in x_
  return up_ && up_->reused && up_->buf.empty() && body_ok &&
         method_ok && !response_started_ && attempts_ < 8 &&
         (phase_ == Phase::sending_request || phase_ == Phase::awaiting_response);
}

void ClientConnection::upstream_failed(BackendError kind, std::uint16_t status, const char* message) {
  if (kind == BackendError::reset && can_retry()) {
    if (target_idx_ >= 0 && target_idx_ < 64) tried_targets_ &= ~(std::uint64_t{1} << target_idx_);
    w_.metrics().add(pin_->groups[upstream_index_].retries_slot);
    release_upstream(false);
    start_upstream();  // same rules, fresh connection
    return;
  }
  if (pin_) w_.metrics().backend_error(pin_->groups[upstream_index_].metrics_slot, kind);
  if (target_ && kind != BackendError::reset) w_.pool().record_failure(*target_, monotonic_ms());
  const bool nothing_sent = phase_ == Phase::connecting;
  last_connect_timed_out_ = nothing_sent && kind == BackendError::timeout;
  release_upstream(false);
  if ((kind == BackendError::connect || kind == BackendError::timeout) && nothing_sent) {
    start_upstream();  // nothing was sent: another target, if any is left untried
    return;
  }
  if (kind == BackendError::timeout) respond_error(504, message, !request_body_done_);
  else respond_error(status, message, !request_body_done_);
}

void ClientConnection::release_upstream(bool reusable) {
  UpstreamConnection* uc = up_;
  if (!uc) return;
  up_ = nullptr;
  w_.pool().release_busy(uc, reusable);
}

}  // namespace lg
