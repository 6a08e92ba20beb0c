#include "admin/admin_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <stdexcept>

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
