#include "net/https_get.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/clock.hpp"
#include "http/response_reader.hpp"
#include "net/tls_context.hpp"

namespace lg {

namespace {

std::string ssl_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "connection closed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// One fetch: the socket, the TLS session and the deadline they share.
class Fetch {
 public:
  Fetch(std::int64_t timeout_ms, int cancel_fd) : deadline_(monotonic_ms() + timeout_ms), cancel_fd_(cancel_fd) {}
  ~Fetch() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    ERR_clear_error();  // leave this thread's OpenSSL error queue clean
  }
  Fetch(const Fetch&) = delete;
  Fetch& operator=(const Fetch&) = delete;

  bool connect(const http::HttpsUrl& url, std::string& error);
  bool handshake(const http::HttpsUrl& url, const TlsClientContext& tls, std::string& error);
  bool send_all(const std::string& data, std::string& error);
  // Reads into `out`; 0 at the peer's close, -1 on failure (error set), else bytes read.
  long read_some(std::string& out, std::string& error);

 private:
  // Waits for `events` on the socket until the deadline; false (error set) on timeout or cancel.
  bool wait(short events, std::string& error);
  bool ssl_wait(int ret, std::string& error);
  std::int64_t deadline_;
  int cancel_fd_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

bool Fetch::wait(short events, std::string& error) {
  for (int rounds = 0; rounds < 10'000; ++rounds) {  // EINTR bound; the deadline bounds the rest
    const std::int64_t left = deadline_ - monotonic_ms();
    if (left <= 0) break;
    pollfd p[2] = {{fd_, events, 0}, {cancel_fd_, POLLIN, 0}};
    const int n = ::poll(p, cancel_fd_ >= 0 ? 2 : 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if (cancel_fd_ >= 0 && (p[1].revents & POLLIN)) {
      error = "cancelled";
      return false;
    }
    if (n > 0) return true;
  }
  error = "timed out";
  return false;
}

bool Fetch::connect(const http::HttpsUrl& url, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = url.host_is_ip ? AI_NUMERICHOST : AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(url.port);
  if (const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &list); rc != 0) {
    error = std::string("cannot resolve ") + url.host + ": " + ::gai_strerror(rc);
    return false;
  }
  error = "no address";
  // Each address gets an equal share of what is left of the deadline: a host whose first address
  // is unreachable (a blackholed IPv6 path, say) is still reached through the next one.
  const std::int64_t overall = deadline_;
  std::size_t left = 0;
  for (addrinfo* a = list; a; a = a->ai_next) ++left;
  for (addrinfo* a = list; a && monotonic_ms() < overall; a = a->ai_next, --left) {
    fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd_ < 0) continue;
    const std::int64_t now = monotonic_ms();
    deadline_ = now + (overall - now) / static_cast<std::int64_t>(left);
    int rc = ::connect(fd_, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS && wait(POLLOUT, error)) {
      int so = 0;
      socklen_t len = sizeof so;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so, &len);
      rc = so == 0 ? 0 : -1;
      if (so != 0) error = std::string("connect: ") + std::strerror(so);
    } else if (rc < 0 && errno != EINPROGRESS) {
      error = std::string("connect: ") + std::strerror(errno);
    }
    deadline_ = overall;
    if (rc == 0) break;
    ::close(fd_);
    fd_ = -1;
    if (error == "cancelled") break;
  }
  deadline_ = overall;
  ::freeaddrinfo(list);
  if (fd_ < 0) return false;
  error.clear();
  return true;
}

// After an SSL call returned `ret` <= 0: waits for the direction it needs; false on failure.
bool Fetch::ssl_wait(int ret, std::string& error) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ: return wait(POLLIN, error);
    case SSL_ERROR_WANT_WRITE: return wait(POLLOUT, error);
    default: error = ssl_error_text(); return false;
  }
}

bool Fetch::handshake(const http::HttpsUrl& url, const TlsClientContext& tls, std::string& error) {
  ERR_clear_error();
  ssl_ = SSL_new(tls.ctx());
  if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
    error = "SSL_new: " + ssl_error_text();
    return false;
  }
  if (!set_peer_name(ssl_, url.host, {}, true)) {
    error = "cannot set the name to verify: " + ssl_error_text();
    return false;
  }
  SSL_set_connect_state(ssl_);
  for (;;) {
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) break;
    if (SSL_get_error(ssl_, r) == SSL_ERROR_SSL && SSL_get_verify_result(ssl_) != X509_V_OK) {
      error = std::string("certificate not trusted: ") +
              X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
      return false;
    }
    if (!ssl_wait(r, error)) {
      error = "TLS handshake: " + error;
      return false;
    }
  }
  return true;
}

bool Fetch::send_all(const std::string& data, std::string& error) {
  std::size_t off = 0;
  while (off < data.size()) {
    const int r = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
    if (r > 0) off += static_cast<std::size_t>(r);
    else if (!ssl_wait(r, error)) return false;
  }
  return true;
}

long Fetch::read_some(std::string& out, std::string& error) {
  char buf[16 * 1024];
  for (;;) {
    const int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      out.append(buf, static_cast<std::size_t>(r));
      return r;
    }
    const int e = SSL_get_error(ssl_, r);
    // A close without close_notify still ends a body that is delimited by Content-Length or
    // chunks; the reader decides whether the response was complete.
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) return 0;
    if (!ssl_wait(r, error)) return -1;
  }
}

}  // namespace

HttpsGetResult https_get(const http::HttpsUrl& url, const TlsClientContext& tls, std::int64_t timeout_ms,
                         std::size_t max_body, int cancel_fd) {
  HttpsGetResult res;
  Fetch f(timeout_ms, cancel_fd);
  if (!f.connect(url, res.error) || !f.handshake(url, tls, res.error)) return res;
  const std::string request = "GET " + url.target + " HTTP/1.1\r\nHost: " + url.authority +
                              "\r\nUser-Agent: lunagate/" LUNAGATE_VERSION
                              "\r\nAccept: application/json, application/jwk-set+json\r\n"
                              "Accept-Encoding: identity\r\nConnection: close\r\n\r\n";
  if (!f.send_all(request, res.error)) {
    res.error = "sending the request: " + res.error;
    return res;
  }
  http::ResponseReader reader(max_body);
  std::string in;
  // Each round reads at least one byte or ends; chunk framing may cost more bytes than the body
  // it carries, so the raw bytes have their own cap.
  const std::size_t max_raw = 2 * max_body + 64 * 1024;
  for (;;) {
    const long n = f.read_some(in, res.error);
    if (n < 0) {
      res.error = "reading the response: " + res.error;
      return res;
    }
    if (in.size() > max_raw) {
      res.error = "response too large";
      return res;
    }
    const http::ParseResult r = reader.update(in, n == 0);
    if (reader.has_head()) res.status = reader.status();
    if (r.kind == http::ParseResult::error) {
      res.error = r.reason;
      return res;
    }
    if (r.kind == http::ParseResult::complete) break;
    if (reader.has_head() && reader.status() != 200) break;  // the body of a failure is not needed
  }
  res.body = reader.body();
  return res;
}

}  // namespace lg
