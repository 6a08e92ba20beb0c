#include "upstream/upstream_connection.hpp"

#include "net/worker.hpp"
#include "upstream/upstream_pool.hpp"

namespace lg {

UpstreamConnection::UpstreamConnection(Worker& w, TargetState& t)
    : sock(w.io()), target(t), worker(w) {
  buf.attach(w.buffers());
}

UpstreamConnection::~UpstreamConnection() {
  worker.timers().remove(this);
  buf.detach(worker.buffers());
}

void UpstreamConnection::connect() {
  state = State::connecting;
  sock.async_connect(target.endpoint, [self = UpstreamRef(this)](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      self->sock.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    }
    if (self->state == State::connecting && self->owner) {
      if (!ec) self->state = State::busy;
      self->owner->on_upstream_connected(ec);
    }
  });
}

void UpstreamConnection::start_read() {
  if (reading || state == State::closed) return;
  if (buf.free_space() == 0) buf.compact();
  reading = true;
  sock.async_read_some(boost::asio::buffer(buf.write_ptr(), buf.free_space()),
                       [self = UpstreamRef(this)](const boost::system::error_code& ec, std::size_t n) {
                         self->on_read(ec, n);
                       });
}

void UpstreamConnection::on_read(const boost::system::error_code& ec, std::size_t n) {
  reading = false;
  if (state == State::closed) return;
  if (state == State::idle) {
    // Nothing is expected on an idle connection: EOF, an error or stray bytes all retire it.
    close();
    worker.pool().forget(this);
    return;
  }
  buf.end += n;
  if (owner) owner->on_upstream_read(ec, n);
}

void UpstreamConnection::close() {
  if (state == State::closed) return;
  state = State::closed;
  owner = nullptr;
  boost::system::error_code ignored;
  sock.close(ignored);
}

void UpstreamConnection::on_timeout() {
  if (state != State::idle) return;
  close();
  worker.pool().forget(this);
}

}  // namespace lg
