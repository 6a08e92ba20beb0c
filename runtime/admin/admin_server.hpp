// The admin listener, on its own address and the main thread's io_context (never a worker's):
//   GET /health        200 while the process runs
//   GET /ready         200 when a snapshot serves and the gateway is not draining, else 503
//   GET /admin/config  JSON: version, sha256 and load time of the active snapshot, counts
//   GET /metrics       Prometheus text, summed over workers
//   GET /admin/scripts JSON: each script's name, file, sha256, load time and last error
//   POST /admin/reload reload config and scripts now (as SIGHUP); 200 or 409 with the errors
//   POST /admin/jwt/revoke?jti=<id>&ttl=<s>  revoke a token id: 200, or 503 when Redis could
//                      not be written (then only this process refuses it)
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.hpp"

namespace lg {

class AdminBackend {
 public:
  virtual bool ready() const = 0;
  virtual std::string config_json() const = 0;
  virtual std::string scripts_json() const = 0;
  // Reloads now; returns the JSON answer and sets `ok`.
  virtual std::string reload_now(bool& ok) = 0;
  // Adds a token id to the JWT blocklist for `ttl_s` seconds (jwt policies refuse it): the
  // process's, and Redis's when there is a redis section. Returns "" or why Redis could not be
  // written (the process's blocklist has it anyway).
  virtual std::string revoke_jti(std::string_view jti, std::int64_t ttl_s) = 0;
  // Calls done(text) on the admin io_context once every worker has reported.
  virtual void collect_metrics(std::function<void(std::string)> done) = 0;

 protected:
  ~AdminBackend() = default;
};

class AdminServer {
 public:
  // Binds at once; throws std::runtime_error naming the address on failure.
  AdminServer(boost::asio::io_context& io, const Endpoint& address, AdminBackend& backend);
  void start();
  void close();

 private:
  void accept();
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  AdminBackend& backend_;
  bool open_ = true;
};

}  // namespace lg
