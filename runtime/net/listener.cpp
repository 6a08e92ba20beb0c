#include "net/listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "net/worker.hpp"
#include "proxy/client_connection.hpp"

namespace lg {

Listener::Listener(Worker& w, const ListenConfig& cfg, std::size_t index)
    : worker_(w), address_(cfg.address.text), index_(index) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, cfg.address.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(cfg.address.port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, cfg.address.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(cfg.address.port);
    len = sizeof *v6;
  } else {
    throw std::runtime_error("listen " + address_ + ": bad address");
  }
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  const bool ok = fd_ >= 0 && ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0 &&
                  ::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0 && ::listen(fd_, cfg.backlog) == 0;
  if (!ok) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("listen " + address_ + ": " + why);
  }
  if (!w.reactor().add(fd_, this)) throw std::runtime_error("listen " + address_ + ": epoll registration failed");
}

Listener::~Listener() { close(); }

void Listener::close() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
}

void Listener::on_io(std::uint32_t) { accept_all(); }

void Listener::retry_if_paused() {
  if (paused_) accept_all();
}

void Listener::accept_all() {
  paused_ = false;
  // Edge-triggered: take every pending connection now, the next edge comes with the next SYN.
  for (int i = 0; i < 4096 && fd_ >= 0; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    const int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EMFILE and friends: leave the rest in the backlog and retry on the next tick.
      spdlog::warn("accept on {}: {}", address_, std::strerror(errno));
      paused_ = true;
      return;
    }
    if (!worker_.accepting_more()) {
      ::close(fd);
      continue;
    }
    // TLS or not is the current snapshot's word: a reload may bring new certificates.
    auto* c = new ClientConnection(worker_, fd, peer, worker_.listen_tls(index_));
    c->start();
  }
  paused_ = true;  // a flood: continue on the next tick rather than starve the loop
}

}  // namespace lg
