// Accept loop of one worker on one address (SO_REUSEPORT: the kernel spreads connections).
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"

namespace lg {

class Worker;

class Listener {
 public:
  // Binds and listens; throws std::runtime_error naming the address on failure.
  Listener(Worker& w, const ListenConfig& cfg);
  void start();
  void close();

 private:
  void accept();
  Worker& worker_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  std::string address_;
  bool open_ = true;
};

}  // namespace lg
