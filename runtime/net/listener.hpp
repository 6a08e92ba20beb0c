// Accept loop of one worker on one address (SO_REUSEPORT: the kernel spreads connections).
#pragma once
#include <string>

#include "config/config.hpp"
#include "net/reactor.hpp"

namespace lg {

class Worker;

class Listener final : public IoHandler {
 public:
  // Binds and listens; throws std::runtime_error naming the address on failure.
  // `index`: the listener's place in config.listen (its TLS context in each snapshot).
  Listener(Worker& w, const ListenConfig& cfg, std::size_t index);
  ~Listener();
  void close();
  void retry_if_paused();  // after EMFILE: try again on the next tick

 private:
  void on_io(std::uint32_t events) override;
  void accept_all();
  Worker& worker_;
  int fd_ = -1;
  bool paused_ = false;
  std::string address_;
  std::size_t index_;
};

}  // namespace lg
