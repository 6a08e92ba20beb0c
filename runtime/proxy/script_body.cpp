// Bodies that scripts see whole: the client's request body read for gw.request.get_body (or
// drained before gw.service.request.set_body replaces it), and the upstream's response collected
// for the body phase. Both are bounded by the route's body limit.
#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

namespace {
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
}

// ---- request body -----------------------------------------------------------------------------

// Called from inside a running handler, which yields right after: the bytes already here are
// looked at on the next turn of the loop, so no answer (a 413, say) is ever sent while the
// handler is still on the stack.
std::string ClientConnection::read_request_body() {
  if (request_body_done_) {  // no body, or read already
    x_->script.req_body_ready = true;
    return {};
  }
  start_body_read(BodyThen::resume_script);
  w_.reactor().defer(
      [](void* self) {
        auto* c = static_cast<ClientConnection*>(self);
        if (c->phase_ == Phase::reading_body) c->on_script_body_bytes();
      },
      this);
  return {};
}

// The head stays at the front of rbuf_ (the scripts and the upstream head still view it): body
// bytes are copied out and the buffer is cut back to the end of the head, so reads land there.
void ClientConnection::start_body_read(BodyThen then) {
  ScriptRequest& s = x_->script;
  keep_request_head();  // the body may take several turns of the loop
  body_then_ = then;
  s.req_body_buf.clear();
  req_body_ = head_.body;
  req_remaining_ = head_.content_length;
  if (req_body_ == http::BodyKind::chunked) {
    const LimitsConfig& lim = pin_->snap->config.limits;
    req_chunks_.set_limits({route_->max_body_bytes.value_or(lim.max_body_bytes),
                            static_cast<std::size_t>(lim.max_chunk_ext_bytes), 8192});
    req_chunks_.reset();
  }
  phase_ = Phase::reading_body;
  if (then == BodyThen::continue_request) on_script_body_bytes();
}

void ClientConnection::on_script_body_bytes() {
  // A 100 Continue still on its way out: its completion calls here again, and nothing else may
  // be written before it is done.
  if (client_write_ == ClientWrite::continue_100) return;
  ScriptRequest& s = x_->script;
  char* const body_start = rbuf_.read_ptr() + head_.head_bytes;
  std::size_t avail = rbuf_.size() - head_.head_bytes;
  std::size_t used = 0;
  if (req_body_ == http::BodyKind::content_length) {
    used = static_cast<std::size_t>(std::min<std::uint64_t>(req_remaining_, avail));
    s.req_body_buf.append(body_start, used);
    req_remaining_ -= used;
    request_body_done_ = req_remaining_ == 0;
  } else {
    while (used < avail && !req_chunks_.done()) {
      std::size_t n = 0;
      std::string_view data;
      const http::ParseResult r = req_chunks_.feed({body_start + used, avail - used}, n, data);
      s.req_body_buf.append(data);
      used += n;
      if (r.kind == http::ParseResult::error) {
        respond_error(r.status, r.reason, true);
        return;
      }
      if (n == 0) break;
    }
    request_body_done_ = req_chunks_.done();
  }
  bytes_in_ += used;
  // Keep what follows the consumed part (a partial chunk line, or a pipelined request) right
  // after the head.
  std::memmove(body_start, body_start + used, avail - used);
  rbuf_.end -= used;
  if (request_body_done_) {
    req_body_ = http::BodyKind::none;
    s.req_body_ready = true;
    phase_ = Phase::scripting;
    if (body_then_ == BodyThen::continue_request) continue_request();
    else on_script_wake();
    return;
  }
  if (rbuf_.free_space() == 0) {  // the head fills the block: the body cannot be read past it
    respond_error(431, "request head too large to read the body for a script", true);
    return;
  }
  if (head_.expect_continue && !sent_100_ && !http10_) {
    sent_100_ = true;
    write_client(ClientWrite::continue_100, kContinue, sizeof kContinue - 1);
    return;  // on_written comes back here
  }
  waiting_on_client_ = true;
  set_deadline(w_.limits().client_body_timeout.count());
  read_client();
}

// ---- response body (body phase) --------------------------------------------------------------

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
  if (has_policies_)
    for (const auto& kv : x_->policy_resp_headers) s.saved_resp_headers.push_back(kv);
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
  if (!settle_phase(r, lua::Phase::body)) return;
  send_buffered_response();
}

void ClientConnection::send_buffered_response() {
  ScriptRequest& s = x_->script;
  x_->out_head.clear();
  write_local_response(x_->out_head, status_, head_request_ ? std::string_view{} : std::string_view(s.body),
                       "application/octet-stream", s.saved_resp_headers, std::string_view(request_id_, request_id_len_),
                       !keep_alive_);
  send_local_answer();
}

}  // namespace lg
