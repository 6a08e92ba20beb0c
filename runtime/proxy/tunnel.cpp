// After an upstream 101 to a WebSocket upgrade: the 101 head goes to the client, then bytes flow
// both ways (one read and one write in flight per direction) until either side closes or the
// connection idles past limits.idle_timeout.
#include "net/worker.hpp"
#include "proxy/client_connection.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

void ClientConnection::start_tunnel(const http::ResponseHead& resp) {
  upstream_latency_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_upstream_).count();
  status_ = 101;
  keep_alive_ = false;
  ClientResponseOptions o;
  o.request_id = std::string_view(request_id_, request_id_len_);
  o.upgrade = true;
  x_->out_head.clear();
  write_client_response_head(x_->out_head, resp, o);
  up_->buf.consume(resp.head_bytes);
  phase_ = Phase::tunnel;
  set_deadline(w_.limits().idle_timeout.count());
  response_started_ = true;
  // The 101 head goes first (with any bytes the upstream sent after it); then both directions
  // run until either side closes.
  x_->iov[0] = make_iov(x_->out_head.data(), x_->out_head.size());
  x_->iov[1] = make_iov(up_->buf.read_ptr(), up_->buf.size());
  resp_consumed_ = up_->buf.size();
  client_write_ = ClientWrite::tunnel;
  client_.write(x_->iov.data(), 2);
  // Head bytes are not upstream-buffer bytes: account for them in the completion below.
  write_bytes_ = resp_consumed_;
  bytes_out_ += x_->out_head.size();
  pump_client_to_upstream();
}

void ClientConnection::pump_upstream_to_client() {
  if (up_->buf.empty()) {
    up_->start_read();
    return;
  }
  set_deadline(w_.limits().idle_timeout.count());
  write_client(ClientWrite::tunnel, up_->buf.read_ptr(), up_->buf.size());
}

void ClientConnection::pump_client_to_upstream() {
  if (rbuf_.empty()) {
    read_client();
    return;
  }
  set_deadline(w_.limits().idle_timeout.count());
  req_consumed_ = rbuf_.size();
  up_->write_buffer(rbuf_.read_ptr(), rbuf_.size());
}

}  // namespace lg
