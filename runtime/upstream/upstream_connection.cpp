#include "upstream/upstream_connection.hpp"

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

void UpstreamConnection::connect() {
  state = State::connecting;
  stream.connect(reinterpret_cast<const sockaddr*>(&target.addr), target.addr_len);
}

void UpstreamConnection::on_connected(Stream&, int err) {
  if (state != State::connecting || !owner) return;
  if (!err) state = State::busy;
  owner->on_upstream_connected(err);
}

void UpstreamConnection::start_read() {
  if (stream.reading() || state == State::closed) return;
  if (buf.free_space() == 0) buf.compact();
  stream.read(buf.write_ptr(), buf.free_space());
}

void UpstreamConnection::on_read(Stream&, int err, std::size_t n) {
  if (state == State::closed) return;
  if (state == State::idle) {
    // Nothing is expected on an idle connection: EOF, an error or stray bytes all retire it.
    close();
    worker.pool().forget(this);
    return;
  }
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
