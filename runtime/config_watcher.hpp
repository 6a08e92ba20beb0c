// Watches the scripts folder and the config file (inotify) and calls back, debounced, when one of
// them changes: saving a script is the deploy. Runs on the main thread's io_context.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace lg {

class ConfigWatcher {
 public:
  // `on_change` runs once per burst of changes, `debounce_ms` after the last one.
  ConfigWatcher(boost::asio::io_context& io, std::function<void()> on_change, int debounce_ms = 200);
  ~ConfigWatcher();
  // (Re)points the watch at these paths; returns false with `err` set if one cannot be watched.
  // `files`: more files whose change counts (TLS certificates and keys), watched through their
  // folders like the config file.
  bool watch(const std::string& config_path, const std::string& scripts_dir, std::string& err,
             const std::vector<std::string>& files = {});
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lg
