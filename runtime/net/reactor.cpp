#include "net/reactor.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "net/timer_wheel.hpp"

namespace lg {

namespace {
// The eventfd's handler slot: events on it only mean "look at the posted queue".
IoHandler* const kWakeTag = nullptr;
}  // namespace

Reactor::Reactor() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) throw std::runtime_error("epoll/eventfd setup failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = kWakeTag;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  deferred_.reserve(256);
  running_.reserve(256);
}

Reactor::~Reactor() {
  if (wakefd_ >= 0) ::close(wakefd_);
  if (epfd_ >= 0) ::close(epfd_);
}

bool Reactor::add(int fd, IoHandler* h) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = h;
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Reactor::remove(int fd) {
  // close() removes the fd from the epoll set by itself; this is for fds that stay open.
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Reactor::set_tick(std::int64_t ms, void (*fn)(void*), void* arg) {
  tick_ms_ = ms;
  tick_fn_ = fn;
  tick_arg_ = arg;
  next_tick_ = monotonic_ms() + ms;
}

void Reactor::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  const std::uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;
}

void Reactor::stop() {
  post([this] { stopping_ = true; });
}

void Reactor::drain_posted() {
  std::uint64_t count;
  ssize_t r = ::read(wakefd_, &count, sizeof count);
  (void)r;
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    work.swap(posted_);
  }
  for (auto& fn : work) fn();
}

void Reactor::run_deferred() {
  // Handlers may defer more work; run until the queue is empty.
  while (!deferred_.empty()) {
    running_.swap(deferred_);
    std::size_t i = 0;
    try {
      for (; i < running_.size(); ++i) running_[i].fn(running_[i].arg);
    } catch (...) {
      // Keep the callbacks after the one that threw (they run first on the next turn) and
      // never run the ones before it again.
      deferred_.insert(deferred_.begin(), running_.begin() + static_cast<std::ptrdiff_t>(i + 1), running_.end());
      running_.clear();
      throw;
    }
    running_.clear();
  }
}

void Reactor::run() {
  epoll_event events[256];
  while (!stopping_) {
    run_deferred();
    if (stopping_) break;
    int timeout = -1;
    if (tick_fn_) {
      const std::int64_t now = monotonic_ms();
      if (now >= next_tick_) {
        next_tick_ = now + tick_ms_;
        tick_fn_(tick_arg_);
        continue;  // the tick may have deferred work
      }
      timeout = static_cast<int>(next_tick_ - now);
    }
    const int n = ::epoll_wait(epfd_, events, 256, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("epoll_wait failed");
    }
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<IoHandler*>(events[i].data.ptr);
      if (h == kWakeTag) drain_posted();
      else h->on_io(events[i].events);
    }
  }
  run_deferred();
}

}  // namespace lg
