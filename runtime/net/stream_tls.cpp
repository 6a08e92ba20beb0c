// The TLS half of Stream: OpenSSL over the non-blocking socket, mapped onto the stream's own
// readiness flags. SSL_ERROR_WANT_READ clears `readable_` (the next EPOLLIN edge retries),
// WANT_WRITE clears `writable_` (EPOLLOUT retries); an operation blocked on the other direction
// (a read needing a write during the handshake or a key update, or the reverse) is retried on
// that direction's edge too.
//
// The socket is reached through our own BIO (recv/send on the fd) with read-ahead on: OpenSSL
// asks for a whole buffer per recv, so a recv that returns less proves the socket drained, just as
// on the plain path. When that happened during an SSL_read and OpenSSL holds nothing more, the
// stream marks itself not readable and waits for the next edge: no extra recv just to collect
// an EAGAIN per keep-alive request.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "net/stream.hpp"
#include "net/tls_context.hpp"

namespace lg {

struct TlsSession {
  SSL* ssl = nullptr;
  std::shared_ptr<const TlsContext> ctx;  // keeps the SNI callback's target alive
  std::shared_ptr<const TlsClientContext> client_ctx;  // client side (upstream connections)
  std::string error;            // why the handshake failed
  bool established = false;
  bool failed = false;
  bool shutdown_sent = false;
  bool plain_http = false;      // the client sent an HTTP request instead of a ClientHello
  bool read_needs_out = false;  // the pending read is blocked on writability
  bool write_needs_in = false;  // the pending write is blocked on readability
  bool short_read = false;      // a recv since the flag was cleared returned less than asked
  bool eof = false;             // a recv returned 0
  int fd = -1;
  std::string subject;          // verified client certificate, RFC 2253
  // Plaintext gathered from the caller's iovecs into one record's worth, so a head and its body
  // go out in one TLS record and one write(2). Kept until SSL_write took all of it (a retry after
  // WANT_WRITE must pass the same bytes).
  std::string out;
  std::size_t out_off = 0;
  ~TlsSession() {
    if (ssl) SSL_free(ssl);
  }
};

namespace {
constexpr std::size_t kRecord = 16 * 1024;

// BIO over the stream's socket: recv/send (MSG_NOSIGNAL), noting short reads and EOF.
int bio_read(BIO* b, char* buf, int len) {
  auto* t = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::recv(t->fd, buf, static_cast<std::size_t>(len), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      t->short_read = true;
      BIO_set_retry_read(b);
    }
    return -1;
  }
  if (n == 0) t->eof = true;
  if (n < len) t->short_read = true;
  return static_cast<int>(n);
}

int bio_write(BIO* b, const char* buf, int len) {
  auto* t = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::send(t->fd, buf, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
    return -1;
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return static_cast<TlsSession*>(BIO_get_data(b))->eof ? 1 : 0;
    default: return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* fd_bio_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lunagate stream");
    BIO_meth_set_read(bm, bio_read);
    BIO_meth_set_write(bm, bio_write);
    BIO_meth_set_ctrl(bm, bio_ctrl);
    BIO_meth_set_create(bm, bio_create);
    return bm;
  }();
  return m;
}

int ssl_errno(int ssl_err) {
  if (ssl_err == SSL_ERROR_SYSCALL && errno != 0) return errno;
  return EPROTO;
}

// Client side (upstream connections): why the connection failed, for the log.
void note_client_error(TlsSession& t, const char* closed) {
  if (!t.client_ctx || !t.error.empty()) return;
  const long vr = SSL_get_verify_result(t.ssl);
  if (vr != X509_V_OK) {
    t.error = std::string("certificate verify failed: ") + X509_verify_cert_error_string(vr);
  } else if (const unsigned long e = ERR_peek_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    t.error = buf;
  } else {
    t.error = t.eof || errno == 0 ? closed : std::strerror(errno);
  }
}

std::string verified_subject(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  std::string out;
  if (X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
    char* p = nullptr;
    const long n = BIO_get_mem_data(bio, &p);
    if (n > 0) out.assign(p, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}
}  // namespace

bool Stream::tls_attach(SSL* ssl) {
  auto* t = new TlsSession;
  t->ssl = ssl;
  t->fd = fd_;
  BIO* bio = BIO_new(fd_bio_method());
  if (!bio) {
    delete t;
    return false;
  }
  BIO_set_data(bio, t);
  SSL_set_bio(ssl, bio, bio);  // the SSL owns it now
  SSL_set_read_ahead(ssl, 1);
  tls_ = t;
  return true;
}

bool Stream::start_tls(std::shared_ptr<const TlsContext> ctx) {
  if (fd_ < 0 || !ctx || tls_) return false;
  SSL* ssl = SSL_new(ctx->default_ctx());
  if (!ssl) return false;
  if (!tls_attach(ssl)) return false;
  tls_->ctx = std::move(ctx);
  SSL_set_accept_state(ssl);
  return true;
}

bool Stream::start_tls_client(std::shared_ptr<const TlsClientContext> ctx, std::string_view name, std::string_view ip) {
  if (fd_ < 0 || !ctx || tls_) return false;
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->ctx());
  if (!ssl) return false;
  if (!set_peer_name(ssl, name, ip, ctx->verify())) {
    SSL_free(ssl);
    ERR_clear_error();
    return false;
  }
  if (!tls_attach(ssl)) return false;  // (freed the SSL)
  tls_->client_ctx = std::move(ctx);
  SSL_set_connect_state(ssl);
  readable_ = true;  // the next read starts the handshake (sends the ClientHello)
  return true;
}

std::string_view Stream::tls_peer_subject() const { return tls_ ? std::string_view(tls_->subject) : std::string_view(); }
std::string_view Stream::tls_error() const { return tls_ ? std::string_view(tls_->error) : std::string_view(); }

bool Stream::tls_plain_http() const { return tls_ && tls_->plain_http; }

void Stream::send_clear_best_effort(std::string_view bytes) {
  if (fd_ < 0) return;
  // The request's bytes were all taken by the handshake's read-ahead, so closing after this
  // sends a FIN (not a reset that could discard the answer at the client).
  (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Stream::tls_free() {
  delete tls_;
  tls_ = nullptr;
}

int Stream::tls_handshake() {
  TlsSession& t = *tls_;
  if (t.failed) return -1;
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(t.ssl);
  if (r == 1) {
    t.established = true;
    t.subject = verified_subject(t.ssl);
    user_->on_tls_ready(*this);
    return 1;
  }
  switch (SSL_get_error(t.ssl, r)) {
    case SSL_ERROR_WANT_READ: readable_ = false; return 0;
    case SSL_ERROR_WANT_WRITE: writable_ = false; return 0;
    case SSL_ERROR_SYSCALL:
    case SSL_ERROR_SSL:
    default: {
      t.failed = true;  // a plain-HTTP client, no shared version or suite, a refused certificate...
      if (!t.client_ctx) {
        const int reason = ERR_GET_REASON(ERR_peek_error());
        t.plain_http = reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST;
      }
      note_client_error(t, "connection closed during the handshake");
      ERR_clear_error();
      return -1;
    }
  }
}

bool Stream::tls_would_block(int e, bool reading) {
  if (e == SSL_ERROR_WANT_READ) {
    readable_ = false;
    if (!reading) tls_->write_needs_in = true;  // a write that waits on the other direction
    return true;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    writable_ = false;
    if (reading) tls_->read_needs_out = true;
    return true;
  }
  return false;
}

bool Stream::tls_do_read() {
  TlsSession& t = *tls_;
  t.read_needs_out = false;
  t.short_read = false;
  if (!t.established) {
    const int h = tls_handshake();
    if (h == 0) {
      t.read_needs_out = !writable_;
      return false;
    }
    if (h < 0) {
      if (rd_lazy_) {  // the user still needs a buffer to be handed the error
        user_->provide_read_buffer(*this, rd_buf_, rd_len_);
        rd_lazy_ = false;
      }
      rd_err_ = EPROTO;
      rd_n_ = 0;
      rd_done_ = true;
      return true;
    }
  }
  ERR_clear_error();
  errno = 0;
  if (rd_lazy_) {  // take the user's buffer only once a record has plaintext (or the stream ended)
    char c;
    std::size_t got = 0;
    const int r = SSL_peek_ex(t.ssl, &c, 1, &got);
    // End of stream or an error: SSL_read below reports it again.
    if (r <= 0 && tls_would_block(SSL_get_error(t.ssl, r), true)) return false;
    user_->provide_read_buffer(*this, rd_buf_, rd_len_);
    rd_lazy_ = false;
  }
  std::size_t n = 0;
  const int r = SSL_read_ex(t.ssl, rd_buf_, rd_len_, &n);
  if (r == 1) {
    rd_err_ = 0;
    rd_n_ = n;
    // The socket was drained and OpenSSL holds no more bytes: the next bytes raise a new edge.
    if (t.short_read && !SSL_has_pending(t.ssl) && !peer_closed_) readable_ = false;
  } else {
    const int e = SSL_get_error(t.ssl, r);
    if (tls_would_block(e, true)) return false;
    rd_n_ = 0;
    rd_err_ = e == SSL_ERROR_ZERO_RETURN ? 0 : ssl_errno(e);  // close_notify (or a bare FIN) is EOF
    if (rd_err_) {
      t.failed = true;
      note_client_error(t, "connection closed");  // (a TLS 1.3 server refuses our certificate here)
    }
    ERR_clear_error();
  }
  rd_done_ = true;
  return true;
}

bool Stream::tls_do_write() {
  TlsSession& t = *tls_;
  t.write_needs_in = false;
  if (!t.established) {
    const int h = tls_handshake();
    if (h == 0) {
      t.write_needs_in = !readable_;
      return false;
    }
    if (h < 0) {
      wr_err_ = EPROTO;
      wr_done_ = true;
      return true;
    }
  }
  for (;;) {
    if (t.out_off == t.out.size()) {  // stage the next record's worth from the caller's iovecs
      t.out.clear();
      t.out_off = 0;
      while (wr_first_ < wr_n_ && t.out.size() < kRecord) {
        iovec& v = wr_iov_[wr_first_];
        const std::size_t take = std::min(v.iov_len, kRecord - t.out.size());
        t.out.append(static_cast<const char*>(v.iov_base), take);
        v.iov_base = static_cast<char*>(v.iov_base) + take;
        v.iov_len -= take;
        if (v.iov_len == 0) ++wr_first_;
      }
      if (t.out.empty()) {
        wr_err_ = 0;
        wr_done_ = true;
        return true;
      }
    }
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int r = SSL_write_ex(t.ssl, t.out.data() + t.out_off, t.out.size() - t.out_off, &n);
    if (r == 1) {
      t.out_off += n;
      continue;
    }
    const int e = SSL_get_error(t.ssl, r);
    if (tls_would_block(e, false)) return false;
    t.failed = true;
    wr_err_ = ssl_errno(e);
    wr_done_ = true;
    ERR_clear_error();
    return true;
  }
}

void Stream::tls_on_io(std::uint32_t events) {
  TlsSession& t = *tls_;
  const bool in = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
  const bool out = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;
  if (out) writable_ = true;
  if (in) readable_ = true;
  if (wr_iov_ && wr_n_ && !wr_done_ && (out || (in && t.write_needs_in)) && do_write()) {
    deliver_write();
    if (fd_ < 0 || !tls_) return;
  }
  if ((rd_buf_ || rd_lazy_) && !rd_done_ && (in || (out && tls_->read_needs_out)) && do_read()) deliver_read();
}

void Stream::tls_idle() {
  TlsSession& t = *tls_;
  if (wr_n_ == 0 && t.out_off == t.out.size()) {
    std::string().swap(t.out);
    t.out_off = 0;
  }
}

void Stream::tls_shutdown() {
  TlsSession& t = *tls_;
  if (!t.established || t.failed || t.shutdown_sent) return;
  t.shutdown_sent = true;
  ERR_clear_error();
  SSL_shutdown(t.ssl);  // sends close_notify; we do not wait for the peer's
  ERR_clear_error();
}

}  // namespace lg
