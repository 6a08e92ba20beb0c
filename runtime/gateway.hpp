// The process: loads the config, starts the workers and the admin listener, and owns the
// lifecycle -- SIGHUP reloads (a new snapshot, validated, then published to every worker),
// SIGTERM/SIGINT drain (stop accepting, /ready 503, finish in-flight requests, exit 0).
#pragma once
#include <memory>
#include <string>

namespace lg {

class Gateway {
 public:
  explicit Gateway(std::string config_path);
  ~Gateway();
  int run();  // blocks until shut down; returns the process exit code

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lg
