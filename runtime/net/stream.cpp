#include "net/stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lg {

bool Stream::adopt(int fd) {
  fd_ = fd;
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!reactor_.add(fd_, this)) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

void Stream::connect(const sockaddr* addr, socklen_t len) {
  fd_ = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    connect_err_ = errno;
    reactor_.defer(&Stream::deferred_connect, this);
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  reactor_.add(fd_, this);
  readable_ = false;  // nothing to read before the upstream sends something
  if (::connect(fd_, addr, len) == 0) {
    connect_err_ = 0;
    reactor_.defer(&Stream::deferred_connect, this);
  } else if (errno == EINPROGRESS) {
    connecting_ = true;
    writable_ = false;
  } else {
    connect_err_ = errno;
    reactor_.defer(&Stream::deferred_connect, this);
  }
}

void Stream::deferred_connect(void* self) {
  auto* s = static_cast<Stream*>(self);
  if (s->fd_ < 0 && s->connect_err_ == 0) return;  // closed meanwhile
  s->user_->on_connected(*s, s->connect_err_);
}

void Stream::finish_connect() {
  connecting_ = false;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  user_->on_connected(*this, err);
}

void Stream::read(char* buf, std::size_t len) {
  if (fd_ < 0) return;  // closed: nothing may be queued for an owner about to be deleted
  rd_buf_ = buf;
  rd_len_ = len;
  rd_done_ = false;
  if ((readable_ || peer_closed_) && do_read()) reactor_.defer(&Stream::deferred_read, this);
}

bool Stream::do_read() {
  if (tls_) return tls_do_read();
  if (rd_lazy_) {  // bytes (or EOF) are there: now the user supplies the buffer
    user_->provide_read_buffer(*this, rd_buf_, rd_len_);
    rd_lazy_ = false;
  }
  const ssize_t n = ::recv(fd_, rd_buf_, rd_len_, 0);
  if (n > 0) {
    // A short read drained the socket: the next bytes will raise a new edge.
    if (static_cast<std::size_t>(n) < rd_len_ && !peer_closed_) readable_ = false;
    rd_err_ = 0;
    rd_n_ = static_cast<std::size_t>(n);
  } else if (n == 0) {
    rd_err_ = 0;
    rd_n_ = 0;
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return false;
  } else if (errno == EINTR) {
    return do_read();
  } else {
    rd_err_ = errno;
    rd_n_ = 0;
  }
  rd_done_ = true;
  return true;
}

void Stream::deliver_read() {
  if (!rd_done_ || fd_ < 0) return;
  rd_done_ = false;
  rd_buf_ = nullptr;
  user_->on_read(*this, rd_err_, rd_n_);
}

void Stream::write(iovec* iov, std::size_t n) {
  if (fd_ < 0) return;
  wr_iov_ = iov;
  wr_first_ = 0;
  wr_n_ = n;
  wr_done_ = false;
  while (wr_first_ < wr_n_ && wr_iov_[wr_first_].iov_len == 0) ++wr_first_;
  if (wr_first_ == wr_n_) {
    wr_err_ = 0;
    wr_done_ = true;
    wr_n_ = 1;  // marks "in flight" until delivered
    reactor_.defer(&Stream::deferred_write, this);
    return;
  }
  if (writable_ && do_write()) reactor_.defer(&Stream::deferred_write, this);
}

void Stream::read_lazy() {
  if (fd_ < 0) return;
  if (tls_) tls_idle();
  rd_buf_ = nullptr;
  rd_lazy_ = true;
  rd_done_ = false;
  if ((readable_ || peer_closed_) && do_read()) reactor_.defer(&Stream::deferred_read, this);
}

bool Stream::do_write() {
  if (tls_) return tls_do_write();
  for (;;) {
    msghdr msg{};
    msg.msg_iov = wr_iov_ + wr_first_;
    msg.msg_iovlen = wr_n_ - wr_first_;
    const ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        writable_ = false;
        return false;
      }
      wr_err_ = errno;
      wr_done_ = true;
      return true;
    }
    std::size_t left = static_cast<std::size_t>(w);
    while (wr_first_ < wr_n_ && left >= wr_iov_[wr_first_].iov_len) left -= wr_iov_[wr_first_++].iov_len;
    if (wr_first_ == wr_n_) {
      wr_err_ = 0;
      wr_done_ = true;
      return true;
    }
    wr_iov_[wr_first_].iov_base = static_cast<char*>(wr_iov_[wr_first_].iov_base) + left;
    wr_iov_[wr_first_].iov_len -= left;
    // Partial: the socket buffer is full; EPOLLOUT announces free space.
    writable_ = false;
    return false;
  }
}

void Stream::deliver_write() {
  if (!wr_done_ || fd_ < 0) return;
  wr_done_ = false;
  wr_n_ = wr_first_ = 0;
  user_->on_written(*this, wr_err_);
}

void Stream::on_io(std::uint32_t events) {
  if (fd_ < 0) return;
  if (tls_) {
    tls_on_io(events);
    return;
  }
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    writable_ = true;
    if (connecting_) {
      finish_connect();
      if (fd_ < 0) return;
    } else if (wr_iov_ && wr_n_ && !wr_done_ && do_write()) {
      deliver_write();
      if (fd_ < 0) return;
    }
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    readable_ = true;
    if ((rd_buf_ || rd_lazy_) && !rd_done_ && !connecting_ && do_read()) deliver_read();
  }
}

void Stream::shutdown_send() {
  if (fd_ < 0) return;
  if (tls_) tls_shutdown();
  ::shutdown(fd_, SHUT_WR);
}

void Stream::close() {
  connect_err_ = 0;  // a connect failure still queued for delivery is dropped (see deferred_connect)
  if (tls_) tls_free();
  if (fd_ < 0) return;
  ::close(fd_);  // also leaves the epoll set
  fd_ = -1;
  rd_buf_ = nullptr;
  rd_lazy_ = false;
  rd_done_ = wr_done_ = false;
  wr_n_ = wr_first_ = 0;
  connecting_ = false;
}

}  // namespace lg
