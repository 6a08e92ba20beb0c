#include "upstream/upstream_connection.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "net/tls_context.hpp"
#include "net/worker.hpp"
#include "upstream/upstream_pool.hpp"

namespace lg {

UpstreamConnection::UpstreamConnection(Worker& w, TargetState& t)
    : stream(w.reactor(), this), target(t), worker(w) {
  buf.attach(w.buffers());
}

UpstreamConnection::~UpstreamConnection() {
  worker.timers().remove(this);
  stream.close();
  buf.detach(worker.buffers());
}

void UpstreamConnection::release() {
  if (--refs_ == 0) worker.defer_delete(this);
}

void UpstreamConnection::connect(std::string_view name) {
  state = State::connecting;
  tls = target.tls;
  if (tls) tls_name.assign(name);
  stream.connect(reinterpret_cast<const sockaddr*>(&target.addr), target.addr_len);
}

void UpstreamConnection::on_connected(Stream&, int err) {
  if (state != State::connecting || !owner) return;
  if (!err && tls) {
    // TLS: the handshake runs inside the read started here; on_tls_ready (or a failed read)
    // completes the connect.
    if (!stream.start_tls_client(tls, tls_name, target.host_ip)) {
      spdlog::warn("upstream {}: TLS setup failed (name {})", target.key, tls_name.empty() ? "none" : tls_name);
      owner->on_upstream_connected(EPROTO);
      return;
    }
    handshaking_ = true;
    start_read();
    return;
  }
  if (!err) state = State::busy;
  owner->on_upstream_connected(err);
}

void UpstreamConnection::on_tls_ready(Stream&) {
  // Called from inside a read attempt: report after this turn (the read stays pending).
  if (!handshaking_) return;
  handshaking_ = false;
  add_ref();
  worker.reactor().defer(&UpstreamConnection::deferred_tls_ready, this);
}

void UpstreamConnection::deferred_tls_ready(void* self) {
  auto* c = static_cast<UpstreamConnection*>(self);
  if (c->state == State::connecting && c->owner) {
    c->state = State::busy;
    c->owner->on_upstream_connected(0);
  }
  c->release();
}

void UpstreamConnection::handshake_failed(int err) {
  handshaking_ = false;
  const std::string_view why = stream.tls_error();
  spdlog::warn("upstream {}: TLS handshake failed (name {}): {}", target.key, tls_name.empty() ? "none" : tls_name,
               !why.empty() ? std::string(why) : err ? std::string(std::strerror(err)) : std::string("closed by the upstream"));
  if (owner) owner->on_upstream_connected(err ? err : ECONNRESET);
}

void UpstreamConnection::start_read() {
  if (stream.reading() || state == State::closed) return;
  if (buf.free_space() == 0) buf.compact();
  stream.read(buf.write_ptr(), buf.free_space());
}

void UpstreamConnection::on_read(Stream&, int err, std::size_t n) {
  if (state == State::closed) return;
  if (state == State::connecting) {  // the TLS handshake's read: it failed, or the upstream left
    if (err || n == 0 || handshaking_) {
      handshake_failed(err);
      return;
    }
    buf.end += n;  // bytes right after the handshake: kept for the response
    return;
  }
  if (state == State::idle) {
    // Nothing is expected on an idle connection: EOF, an error or stray bytes all retire it.
    close();
    worker.pool().forget(this);
    return;
  }
  if (err && tls && !stream.tls_error().empty())  // e.g. a TLS 1.3 server refusing our certificate
    spdlog::warn("upstream {}: TLS connection failed (name {}): {}", target.key, tls_name.empty() ? "none" : tls_name,
                 std::string(stream.tls_error()));
  buf.end += n;
  if (owner) owner->on_upstream_read(err, n);
}

void UpstreamConnection::on_written(Stream&, int err) {
  if (state == State::busy && owner) owner->on_upstream_written(err);
}

void UpstreamConnection::close() {
  if (state == State::closed) return;
  state = State::closed;
  owner = nullptr;
  stream.close();
}

void UpstreamConnection::on_timeout() {
  if (state != State::idle) return;
  close();
  worker.pool().forget(this);
}

}  // namespace lg
