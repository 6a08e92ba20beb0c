// One TCP connection to an upstream target (TLS for a group with `tls`: the handshake follows
// the TCP connect, and only its end counts as connected). While pooled it keeps a read pending, so a target
// that closes an idle connection is noticed at once (the read completes) and the connection
// is dropped; when a request takes it, that same pending read delivers the response.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/buffer.hpp"
#include "net/stream.hpp"
#include "net/timer_wheel.hpp"

namespace lg {

class TlsClientContext;
class Worker;
struct TargetState;

// Implemented by the party that uses a busy connection (a client connection's exchange).
// err: 0 or an errno value; a read with n == 0 and err == 0 is the upstream closing.
class UpstreamUser {
 public:
  virtual void on_upstream_connected(int err) = 0;
  virtual void on_upstream_read(int err, std::size_t n) = 0;
  virtual void on_upstream_written(int err) = 0;

 protected:
  ~UpstreamUser() = default;
};

class UpstreamConnection final : public Timed, public StreamUser {
 public:
  enum class State : std::uint8_t { connecting, busy, idle, closed };

  UpstreamConnection(Worker& w, TargetState& target);
  ~UpstreamConnection() override;

  // TCP connect, then the TLS handshake when the target has a TLS context; completion (after
  // both) -> owner->on_upstream_connected. `tls_name`: TargetState::tls_name's answer (the SNI
  // and verified name) for a TLS target, else empty.
  void connect(std::string_view tls_name = {});
  void start_read();  // no-op if a read is already pending; completion -> owner or idle check
  void write(iovec* iov, std::size_t n) { stream.write(iov, n); }  // iov stays valid until done
  void write_buffer(const void* p, std::size_t n) { stream.write_buffer(p, n); }
  void close();       // idempotent; no completion arrives afterwards
  void on_timeout() override;  // idle too long in the pool

  void add_ref() { ++refs_; }
  void release();  // the last reference schedules deletion on the reactor

  Stream stream;
  Buffer buf;
  TargetState& target;
  Worker& worker;
  UpstreamUser* owner = nullptr;  // set while busy or connecting
  State state = State::connecting;
  bool reused = false;            // taken from the pool (a failure may be a stale close: retry)
  std::uint32_t requests = 0;
  std::shared_ptr<const TlsClientContext> tls;  // the context it was made with (null: plain)
  std::string tls_name;           // the SNI / verified name it was made for (pool matching)

 private:
  void on_read(Stream& s, int err, std::size_t n) override;
  void on_written(Stream& s, int err) override;
  void on_connected(Stream& s, int err) override;
  void on_tls_ready(Stream& s) override;
  static void deferred_tls_ready(void* self);
  void handshake_failed(int err);
  bool handshaking_ = false;
  std::uint32_t refs_ = 1;  // the creator's reference
};

}  // namespace lg
