#include "proxy/client_connection.hpp"

#include <arpa/inet.h>

#include <netinet/in.h>

#include <cstring>
#include <limits>

#include "net/tls_context.hpp"
#include "net/worker.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

namespace {
constexpr std::int64_t kLingerMs = 2000;
constexpr std::uint64_t kLingerMaxBytes = 1 << 20;
}  // namespace

ClientConnection::ClientConnection(Worker& w, int fd, const sockaddr_storage& peer,
                                   const std::shared_ptr<const TlsContext>& tls)
    : w_(w), client_(w.reactor(), this) {
  if (client_.adopt(fd) && tls) {
    handshake_timeout_ms_ = tls->handshake_timeout_ms();
    if (client_.start_tls(tls)) tls_handshaking_ = true;
    else client_.close();  // start() sees it closed
  }
  const void* addr = peer.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6&>(peer).sin6_addr)
                                                 : static_cast<const void*>(&reinterpret_cast<const sockaddr_in&>(peer).sin_addr);
  if (inet_ntop(peer.ss_family, addr, client_ip_, sizeof client_ip_))
    client_ip_len_ = static_cast<std::uint8_t>(std::strlen(client_ip_));
}

ClientConnection::~ClientConnection() {
  rbuf_.detach(w_.buffers());
  w_.timers().remove(this);
}

void ClientConnection::start() {
  w_.connection_opened(this);
  if (!client_.is_open()) {
    close_now();
    return;
  }
  w_.timers().add(this);
  phase_ = Phase::idle;
  // A new connection gets the header timeout for its first request, not the keep-alive idle one;
  // a TLS one first the handshake timeout (on_tls_ready then starts the header timeout).
  set_deadline(handshake_timeout_ms_ ? handshake_timeout_ms_ : w_.limits().client_header_timeout.count());
  read_client();
}

void ClientConnection::set_deadline(std::int64_t ms) { deadline_ms = ms > 0 ? monotonic_ms() + ms : 0; }

void ClientConnection::read_client() {
  if (client_.reading()) return;
  if (!rbuf_.attached()) {  // idle: the block is taken only when bytes arrive
    client_.read_lazy();
    return;
  }
  if (rbuf_.free_space() == 0) rbuf_.compact();
  client_.read(rbuf_.write_ptr(), rbuf_.free_space());
}

void ClientConnection::provide_read_buffer(Stream&, char*& buf, std::size_t& len) {
  if (!rbuf_.attached()) rbuf_.attach(w_.buffers());
  if (rbuf_.free_space() == 0) rbuf_.compact();
  buf = rbuf_.write_ptr();
  len = rbuf_.free_space();
}

void ClientConnection::on_tls_ready(Stream&) {
  tls_handshaking_ = false;
  w_.tls_handshake_done(Worker::TlsResult::ok);
  if (phase_ == Phase::idle) set_deadline(w_.limits().client_header_timeout.count());
}

// As nginx does: a client that spoke plain HTTP to a TLS listener is told so in clear text
// (400, JSON with a request id) rather than seeing the connection drop without a word.
void ClientConnection::answer_plain_http_on_tls() {
  assign_request_id({});
  std::string out;
  write_error_response(out, 400, "plain HTTP request sent to the HTTPS port",
                       std::string_view(request_id_, request_id_len_), true);
  client_.send_clear_best_effort(out);
}

Exchange& ClientConnection::exchange() {
  if (!x_) x_ = w_.exchanges().acquire();
  return *x_;
}

// The client left while a policy waited (a Redis rate limit, a JWKS refresh): nothing may wake
// this connection any more. Before the log phase too, which may hand the exchange to a LogTask.
void ClientConnection::cancel_policy_wait() {
  if (!x_) return;
  if (x_->remote_take.status == policy::RemoteTake::Status::waiting && w_.remote_limits())
    w_.remote_limits()->cancel(x_->remote_take);
  if (x_->revocation_check.status == policy::RevocationCheck::Status::waiting && w_.remote_revocations())
    w_.remote_revocations()->cancel(x_->revocation_check);
  if (x_->policy.key_wait.linked()) x_->policy.key_wait.unlink();
}

void ClientConnection::release_exchange() {
  if (!x_) return;
  cancel_policy_wait();
  if (scripted_) {  // a handler may still wait (the request was cut short)
    x_->script.io.cancel();
    x_->script.io.bind(nullptr, nullptr, nullptr);
    w_.engine().end_request(x_->script);
  }
  w_.exchanges().release(x_);
  x_ = nullptr;
}

void ClientConnection::on_read(Stream&, int err, std::size_t n) {
  if (phase_ == Phase::closed) return;
  if (phase_ == Phase::lingering) {
    lingered_ += n;
    if (err || n == 0 || lingered_ > kLingerMaxBytes) close_now();
    else read_client();
    return;
  }
  if (phase_ == Phase::tunnel && !err && n == 0) {  // half-close: pass it on, keep the other way open
    client_eof_ = true;
    up_->stream.shutdown_send();
    if (upstream_eof_) close_now();
    return;
  }
  if (tls_handshaking_) {  // the handshake failed (err) or the client left during it
    tls_handshaking_ = false;
    w_.tls_handshake_done(Worker::TlsResult::failed);
    if (client_.tls_plain_http()) answer_plain_http_on_tls();
  }
  if (err || n == 0) {
    // The client went away. Nothing can be answered; an upstream mid-exchange is not reusable.
    if (in_request_ && status_ == 0) status_ = 499;
    close_now();
    return;
  }
  rbuf_.end += n;
  switch (phase_) {
    case Phase::idle:
    case Phase::reading_head: on_head_bytes(); break;
    case Phase::sending_request: send_request_part(); break;
    case Phase::reading_body: on_script_body_bytes(); break;
    case Phase::policing:
    case Phase::scripting: watch_client(); break;  // bytes wait in rbuf_ for the request to go on
    case Phase::tunnel: pump_client_to_upstream(); break;
    default: break;  // the bytes wait in rbuf_ (an early response ends this request anyway)
  }
}

void ClientConnection::respond_error(std::uint16_t status, const char* message, bool close, std::uint16_t allow) {
  if (response_started_) {  // a response is already on the wire: all we can do is cut it
    if (status_ == 0) status_ = status;
    close_now();
    return;
  }
  if (request_id_len_ == 0) assign_request_id({});
  if (up_) release_upstream(false);
  exchange();
  const bool must_close = prepare_local_answer(status, close);
  write_error_response(x_->out_head, status, message, std::string_view(request_id_, request_id_len_), must_close, allow);
  send_local_answer();
}

bool ClientConnection::prepare_local_answer(std::uint16_t status, bool close) {
  status_ = status;
  if (head_unconsumed_) {  // answered locally: the next request starts after this head
    rbuf_.consume(head_.head_bytes);
    head_unconsumed_ = false;
    scan_.reset();
  }
  // With request body bytes unread the next request's first byte is unknown: close.
  const bool must_close = close || !request_body_done_ || !keep_alive_ || drain_requested_ || w_.draining();
  keep_alive_ = !must_close;
  x_->out_head.clear();
  return must_close;
}

void ClientConnection::send_local_answer() {
  phase_ = Phase::responding;
  response_started_ = true;
  set_deadline(w_.limits().send_timeout.count());
  write_client(ClientWrite::local_answer, x_->out_head.data(), x_->out_head.size());
}

void ClientConnection::write_client(ClientWrite kind, iovec* iov, std::size_t n) {
  client_write_ = kind;
  write_bytes_ = 0;
  for (std::size_t i = 0; i < n; ++i) write_bytes_ += iov[i].iov_len;
  client_.write(iov, n);
}

void ClientConnection::write_client(ClientWrite kind, const void* p, std::size_t n) {
  client_write_ = kind;
  write_bytes_ = n;
  client_.write_buffer(p, n);
}

void ClientConnection::on_written(Stream&, int err) {
  const ClientWrite kind = client_write_;
  client_write_ = ClientWrite::none;
  if (phase_ == Phase::closed) return;
  if (!err) bytes_out_ += write_bytes_;
  if (err) {
    close_now();
    return;
  }
  switch (kind) {
    case ClientWrite::local_answer: finish_request(); return;
    case ClientWrite::continue_100:
      if (phase_ == Phase::reading_body) {  // a script reads the body: now the client sends it
        on_script_body_bytes();
        return;
      }
      send_continue_then_read_body();
      return;
    case ClientWrite::response_part: on_response_part_written(err); return;
    case ClientWrite::tunnel:
      if (phase_ != Phase::tunnel) return;
      up_->buf.consume(write_bytes_);
      pump_upstream_to_client();
      return;
    case ClientWrite::none: return;
  }
}

void ClientConnection::account_request() {
  if (accounted_) return;
  accounted_ = true;
  write_access_record();
  if (scripted_ && x_) run_log_scripts();  // may hand the scratch to a LogTask
}

void ClientConnection::write_access_record() {
  const auto now = std::chrono::steady_clock::now();
  const double latency = std::chrono::duration<double>(now - t_start_).count();
  const std::uint32_t slot = route_ ? metrics_slot_ : WorkerMetrics::kNoRoute;
  w_.metrics().request_done(slot, status_, latency);
  if (route_ && upstream_latency_s_ >= 0) w_.metrics().backend_latency(slot, upstream_latency_s_);
  AccessLog& log = w_.access_log();
  if (!log.enabled()) return;
  AccessRecord r;
  r.time = std::chrono::system_clock::now();
  r.request_id = std::string_view(request_id_, request_id_len_);
  r.method = method_;
  r.path = path_;
  if (route_) {
    r.route = route_->name;
    r.upstream = route_->upstream;
  }
  if (target_) r.upstream_addr = target_->key;
  r.client_ip = std::string_view(client_ip_, client_ip_len_);
  if (x_) r.consumer = scripted_ && !x_->script.consumer_id.empty() ? std::string_view(x_->script.consumer_id)
                                                                    : std::string_view(x_->consumer_id);
  r.status = status_;
  r.latency_s = latency;
  r.upstream_latency_s = upstream_latency_s_;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  log.write(r);
}

void ClientConnection::finish_request() {
  account_request();
  if (up_) release_upstream(false);
  const bool again = keep_alive_ && !drain_requested_ && !w_.draining();
  reset_for_next_request();
  if (!again) {
    close_gracefully();
    return;
  }
  phase_ = Phase::idle;
  if (!rbuf_.empty()) {  // a pipelined request is already here
    ++pipelined_;
    on_head_bytes();
    return;
  }
  pipelined_ = 0;
  if (!client_.reading()) rbuf_.detach(w_.buffers());  // idle connections hold no block
  set_deadline(w_.limits().idle_timeout.count());
  read_client();
}

void ClientConnection::reset_for_next_request() {
  if (pin_) {
    pin_->release();
    pin_ = nullptr;
  }
  release_exchange();
  route_ = nullptr;
  target_ = nullptr;
  status_ = 0;
  scripted_ = false;
  has_policies_ = false;
  buffering_ = false;
  in_request_ = false;
  response_started_ = false;
  request_body_done_ = true;
  early_response_ = false;
  early_error_ = false;
  sent_100_ = false;
  upstream_eof_ = false;
  client_eof_ = false;
  resp_head_pending_ = false;
  websocket_ = false;
  expect_continue_ = false;
  waiting_on_client_ = false;
  upstream_latency_s_ = -1;
  bytes_in_ = bytes_out_ = 0;
  request_id_len_ = 0;
  method_.clear();
  path_.clear();
}

void ClientConnection::close_gracefully() {
  // Half-close and discard what the client still sends, so that our last response is not
  // destroyed by a TCP reset from unread input (lingering close, as nginx does).
  if (phase_ == Phase::closed) return;
  if (pin_) reset_for_next_request();
  phase_ = Phase::lingering;
  client_.shutdown_send();
  if (!client_.reading()) rbuf_.detach(w_.buffers());  // a pending read still owns the block
  lingered_ = 0;
  set_deadline(kLingerMs);
  read_client();
}

void ClientConnection::close_now() {
  if (phase_ == Phase::closed) return;
  cancel_policy_wait();
  if (in_request_) account_request();
  if (up_) release_upstream(false);
  if (pin_) {
    pin_->release();
    pin_ = nullptr;
  }
  phase_ = Phase::closed;
  w_.timers().remove(this);
  client_.close();  // no callback arrives after this, so the scratch can go back now
  release_exchange();
  w_.connection_closed(this);
  w_.defer_delete(this);
}

void ClientConnection::drain() {
  drain_requested_ = true;
  if (phase_ == Phase::idle) close_now();
}

void ClientConnection::abort() { close_now(); }

void ClientConnection::on_timeout() {
  if (tls_handshaking_) {
    tls_handshaking_ = false;
    w_.tls_handshake_done(Worker::TlsResult::timeout);
  }
  switch (phase_) {
    case Phase::idle:
    case Phase::lingering:
    case Phase::responding:
    case Phase::tunnel: close_now(); return;
    case Phase::reading_head:
      in_request_ = true;
      accounted_ = false;
      request_body_done_ = false;
      respond_error(408, "request header timeout", true);
      return;
    case Phase::connecting: upstream_failed(BackendError::timeout, 504, "upstream connect timed out"); return;
    case Phase::sending_request:
      if (waiting_on_client_) respond_error(408, "request body timeout", true);
      else upstream_failed(BackendError::timeout, 504, "upstream write timed out");
      return;
    case Phase::awaiting_response: upstream_failed(BackendError::timeout, 504, "upstream timed out"); return;
    case Phase::sending_response:
      if (waiting_on_client_) close_now();  // the client stopped reading
      else upstream_failed(BackendError::timeout, 504, "upstream timed out");
      return;
    case Phase::reading_body: respond_error(408, "request body timeout", true); return;
    case Phase::scripting: return;  // each wait has its own timer
    case Phase::policing:  // a Redis command has its own timeout; a JWKS refresh ends here
      if (x_ && x_->policy.key_wait.linked()) {
        x_->policy.key_wait.unlink();
        on_policy_wake();  // verified again with the keys there are
      }
      return;
    case Phase::closed: return;
  }
}

}  // namespace lg
