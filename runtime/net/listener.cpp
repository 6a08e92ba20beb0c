#include "net/listener.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"

namespace lg {

namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(Worker& w, const ListenConfig& cfg)
    : worker_(w), acceptor_(w.io()), backoff_(w.io()), address_(cfg.address.text) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(cfg.address.host, ec);
  if (ec) throw std::runtime_error("listen " + address_ + ": bad address");
  tcp::endpoint ep(addr, cfg.address.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec.assign(errno, boost::system::system_category());
  }
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(cfg.backlog, ec);
  if (ec) throw std::runtime_error("listen " + address_ + ": " + ec.message());
}

void Listener::start() { accept(); }

void Listener::close() {
  open_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
}

void Listener::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket sock) {
    if (!open_) return;
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning on a full descriptor table.
      spdlog::warn("accept on {}: {}", address_, ec.message());
      backoff_.expires_after(std::chrono::milliseconds(100));
      backoff_.async_wait([this](const boost::system::error_code& e) {
        if (!e && open_) accept();
      });
      return;
    }
    if (!worker_.accepting_more()) {
      boost::system::error_code ignored;
      sock.close(ignored);
    } else {
      (new ClientConnection(worker_, std::move(sock)))->start();
    }
    accept();
  });
}

}  // namespace lg
