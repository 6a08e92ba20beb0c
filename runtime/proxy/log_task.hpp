// The end of a log phase whose handler waits (gw.http to a log sink, gw.sleep): the client
// already has its answer, so the connection goes on with its next request and this task keeps
// the request's scratch (Exchange) and snapshot until the handlers finish. The worker tracks
// live tasks: a drain waits for them, a stop aborts them.
#pragma once
#include <cstdint>
#include <string>

#include "proxy/script_wait.hpp"

namespace lg {

class Worker;
struct Exchange;
struct PinnedSnapshot;

class LogTask final : public ScriptWaitOwner {
 public:
  // Takes over `x` (its handler waits) and one reference to `pin`.
  static void start(Worker& w, PinnedSnapshot* pin, Exchange* x, std::uint32_t route);
  void abort();  // drops the waiting handler and ends the task

  void on_script_wake() override;
  std::string read_request_body() override { return "the request body is gone in the log phase"; }

 private:
  LogTask(Worker& w, PinnedSnapshot* pin, Exchange* x, std::uint32_t route) : w_(w), pin_(pin), x_(x), route_(route) {}
  void end();
  Worker& w_;
  PinnedSnapshot* pin_;
  Exchange* x_;
  std::uint32_t route_;
};

}  // namespace lg
