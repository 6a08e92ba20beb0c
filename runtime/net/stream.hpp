// A non-blocking TCP socket driven by the worker's Reactor: at most one read and one write in
// flight, completions delivered to a StreamUser. It keeps its own readiness flags: a read that
// returns less than asked means the socket is drained (an edge announces the next bytes), so no
// read is ever attempted just to collect an EAGAIN.
//
// Contract: after close() no callback arrives. A Stream (and its owner) must be destroyed only
// from Reactor::defer, never inside a callback of the same turn.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "net/reactor.hpp"

namespace lg {

class Stream;
class TlsContext;
class TlsClientContext;
struct TlsSession;  // net/stream_tls.cpp: the OpenSSL state of a TLS stream
}  // namespace lg
struct ssl_st;  // SSL
namespace lg {

inline iovec make_iov(const void* p, std::size_t n) { return iovec{const_cast<void*>(p), n}; }

class StreamUser {
 public:
  // n > 0: bytes read; n == 0 and err == 0: the peer closed; err != 0: an errno value.
  virtual void on_read(Stream& s, int err, std::size_t n) = 0;
  // All bytes of the gather written (err == 0) or the write failed.
  virtual void on_written(Stream& s, int err) = 0;
  virtual void on_connected(Stream& s, int err) { (void)s; (void)err; }
  // A TLS stream finished its handshake (called from inside a read or write attempt: only note it).
  virtual void on_tls_ready(Stream& s) { (void)s; }
  // For read_lazy(): called just before bytes are read, to supply the buffer only then.
  virtual void provide_read_buffer(Stream& s, char*& buf, std::size_t& len) {
    (void)s;
    buf = nullptr;
    len = 0;
  }

 protected:
  ~StreamUser() = default;
};

class Stream final : public IoHandler {
 public:
  Stream(Reactor& r, StreamUser* user) : reactor_(r), user_(user) {}
  ~Stream() { close(); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool adopt(int fd);  // an accepted, already non-blocking socket
  // After adopt(): the stream is the server side of TLS over that socket. The handshake runs
  // inside the first read (or write); a failed one completes that operation with EPROTO.
  // Reads and writes then carry plaintext; shutdown_send() sends close_notify first.
  bool start_tls(std::shared_ptr<const TlsContext> ctx);
  // After a successful connect(): the stream is the client side of TLS. The handshake runs inside
  // the next read (or write), on_tls_ready announces its end; a failed one completes that
  // operation with EPROTO and tls_error() says why. `name` is sent as SNI (unless it is an IP
  // literal) and, when the context verifies, is the name (or IP) the certificate must carry;
  // empty: no SNI, and `ip` is verified instead.
  bool start_tls_client(std::shared_ptr<const TlsClientContext> ctx, std::string_view name, std::string_view ip);
  void connect(const sockaddr* addr, socklen_t len);
  void read(char* buf, std::size_t len);
  // A read whose buffer is asked for (provide_read_buffer) only once bytes are there: an idle
  // connection holds no buffer while it waits.
  void read_lazy();
  // Gather write. The array is used in place (partial writes advance it) and must stay valid and
  // untouched until on_written; empty entries are skipped.
  void write(iovec* iov, std::size_t n);
  void write_buffer(const void* p, std::size_t n) {  // one buffer: the stream keeps the iovec itself
    one_ = iovec{const_cast<void*>(p), n};
    write(&one_, 1);
  }
  void shutdown_send();
  void close();

  bool is_open() const { return fd_ >= 0; }
  bool reading() const { return rd_buf_ != nullptr || rd_lazy_; }
  bool writing() const { return wr_n_ != 0; }
  int fd() const { return fd_; }
  void set_user(StreamUser* u) { user_ = u; }
  bool is_tls() const { return tls_ != nullptr; }
  // The verified client certificate's subject (RFC 2253), empty when there is none.
  std::string_view tls_peer_subject() const;
  // Why the TLS handshake failed ("certificate verify failed: ..."), empty otherwise.
  std::string_view tls_error() const;
  // The server-side handshake failed because the client spoke plain HTTP (OpenSSL recognised a
  // method in place of a ClientHello). The connection may then answer in clear text, once.
  bool tls_plain_http() const;
  // Writes bytes straight to the socket, bypassing TLS, without waiting (what does not fit is
  // dropped): for that one clear-text answer before closing.
  void send_clear_best_effort(std::string_view bytes);

 private:
  void on_io(std::uint32_t events) override;
  // Each returns true when the operation finished (result stored for delivery).
  bool do_read();
  bool do_write();
  void finish_connect();
  void deliver_read();
  void deliver_write();
  static void deferred_read(void* self) { static_cast<Stream*>(self)->deliver_read(); }
  static void deferred_write(void* self) { static_cast<Stream*>(self)->deliver_write(); }
  static void deferred_connect(void* self);
  // TLS (stream_tls.cpp); the plain path only tests tls_ once per operation.
  bool tls_do_read();
  bool tls_do_write();
  void tls_on_io(std::uint32_t events);
  int tls_handshake();  // 1 done, 0 waiting for the socket, -1 failed
  // Maps SSL_ERROR_WANT_READ/WRITE of a read (`reading`) or a write onto the readiness flags;
  // true when the operation has to wait for the socket.
  bool tls_would_block(int ssl_error, bool reading);
  bool tls_attach(ssl_st* ssl);  // our BIO over fd_; takes the SSL
  void tls_shutdown();
  void tls_idle();  // a lazy read: the connection waits, its staging buffer can go
  void tls_free();

  Reactor& reactor_;
  StreamUser* user_;
  int fd_ = -1;
  bool readable_ = true;
  bool writable_ = true;
  bool peer_closed_ = false;
  bool connecting_ = false;
  // read in progress / result waiting for delivery
  char* rd_buf_ = nullptr;
  std::size_t rd_len_ = 0;
  bool rd_lazy_ = false;
  bool rd_done_ = false;
  int rd_err_ = 0;
  std::size_t rd_n_ = 0;
  // write in progress: the caller's array, advanced in place
  iovec* wr_iov_ = nullptr;
  iovec one_{};
  std::size_t wr_first_ = 0, wr_n_ = 0;
  bool wr_done_ = false;
  int wr_err_ = 0;
  int connect_err_ = 0;
  TlsSession* tls_ = nullptr;  // owned; null on plain streams
};

}  // namespace lg
