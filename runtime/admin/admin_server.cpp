#include "admin/admin_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "core/json_escape.hpp"
#include "core/query_string.hpp"
#include "http/request_parser.hpp"
#include "http/status.hpp"

namespace lg {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One admin request per connection: the admin API is low-volume, so simplicity wins.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket s, AdminBackend& b) : sock_(std::move(s)), backend_(b), timer_(sock_.get_executor()) {
    buf_.resize(16 * 1024);
    headers_.reserve(64);
  }

  void start() {
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->sock_.close();
    });
    read();
  }

 private:
  void read() {
    sock_.async_read_some(asio::buffer(buf_.data() + used_, buf_.size() - used_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) {
                              self->timer_.cancel();
                              return;
                            }
                            self->used_ += n;
                            self->on_bytes();
                          });
  }

  void on_bytes() {
    http::RequestHead head;
    head.headers = &headers_;
    http::RequestLimits limits{buf_.size() - 1, 4096, 64, 0};
    auto r = http::parse_request_head({buf_.data(), used_}, limits, scan_, head);
    if (r.kind == http::ParseResult::incomplete) return read();
    if (r.kind == http::ParseResult::error) return reply(r.status, "application/json", "{\"error\":\"bad request\"}\n");
    std::string path(head.path);
    if (path == "/admin/reload") {
      if (head.method != "POST") return reply(405, "application/json", "{\"error\":\"method not allowed\"}\n", "Allow: POST\r\n");
      bool ok = false;
      std::string body = backend_.reload_now(ok);
      return reply(ok ? 200 : 409, "application/json", std::move(body));
    }
    if (path == "/admin/jwt/revoke") {  // POST /admin/jwt/revoke?jti=<id>&ttl=<seconds>
      if (head.method != "POST") return reply(405, "application/json", "{\"error\":\"method not allowed\"}\n", "Allow: POST\r\n");
      std::string jti, ttl;
      const std::string_view q = head.has_query ? head.query : std::string_view{};
      std::string_view raw;
      bool bare = false;
      if (!find_query_arg(q, "jti", true, raw, bare) || !percent_decode_strict(raw, jti) || jti.empty() || jti.size() > 256)
        return reply(400, "application/json",
                     "{\"error\":\"jti (1..256 bytes, percent-encoded, no control characters) required\"}\n");
      std::int64_t ttl_s = 86400;
      if (std::string_view t; find_query_arg(q, "ttl", true, t, bare)) {
        ttl.assign(t);
        char* end = nullptr;
        ttl_s = std::strtoll(ttl.c_str(), &end, 10);
        if (ttl.empty() || *end || ttl_s <= 0 || ttl_s > 31'536'000)
          return reply(400, "application/json", "{\"error\":\"ttl: seconds in 1..31536000\"}\n");
      }
      const std::string err = backend_.revoke_jti(jti, ttl_s);
      if (err.empty()) return reply(200, "application/json", "{\"revoked\":true}\n");
      std::string body = "{\"revoked\":false,\"local\":true,\"error\":\"redis: ";
      json_escape_append(body, err);
      body += "; revoked in this instance only, retry\"}\n";
      return reply(503, "application/json", std::move(body));
    }
    if (head.method != "GET" && head.method != "HEAD")
      return reply(405, "application/json", "{\"error\":\"method not allowed\"}\n", "Allow: GET, HEAD\r\n");
    if (path == "/health") return reply(200, "application/json", "{\"status\":\"ok\"}\n");
    if (path == "/ready") {
      if (backend_.ready()) return reply(200, "application/json", "{\"status\":\"ready\"}\n");
      return reply(503, "application/json", "{\"status\":\"not ready\"}\n");
    }
    if (path == "/admin/config") return reply(200, "application/json", backend_.config_json());
    if (path == "/admin/scripts") return reply(200, "application/json", backend_.scripts_json());
    if (path == "/metrics") {
      backend_.collect_metrics([self = shared_from_this()](std::string text) {
        self->reply(200, "text/plain; version=0.0.4", std::move(text));
      });
      return;
    }
    reply(404, "application/json", "{\"error\":\"not found\"}\n");
  }

  void reply(int status, const char* type, std::string body, const char* extra = "") {
    out_ = "HTTP/1.1 " + std::to_string(status) + " " + std::string(http::reason_phrase(static_cast<std::uint16_t>(status))) +
           "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
           "Connection: close\r\n\r\n" + body;
    asio::async_write(sock_, asio::buffer(out_), [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      self->sock_.shutdown(tcp::socket::shutdown_both, ignored);
      self->sock_.close(ignored);
      self->timer_.cancel();
    });
  }

  tcp::socket sock_;
  AdminBackend& backend_;
  asio::steady_timer timer_;
  std::vector<char> buf_;
  std::size_t used_ = 0;
  std::vector<http::Header> headers_;
  http::HeadScan scan_;
  std::string out_;
};

}  // namespace

AdminServer::AdminServer(asio::io_context& io, const Endpoint& address, AdminBackend& backend)
    : io_(io), acceptor_(io), backend_(backend) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(address.host, ec);
  if (ec) throw std::runtime_error("admin " + address.text + ": bad address");
  tcp::endpoint ep(addr, address.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(128, ec);
  if (ec) throw std::runtime_error("admin " + address.text + ": " + ec.message());
}

void AdminServer::start() { accept(); }

void AdminServer::close() {
  open_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void AdminServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
    if (!open_) return;
    if (!ec) std::make_shared<AdminSession>(std::move(s), backend_)->start();
    accept();
  });
}

}  // namespace lg
