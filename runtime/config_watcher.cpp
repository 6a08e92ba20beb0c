#include "config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

namespace lg {

namespace asio = boost::asio;

struct ConfigWatcher::Impl {
  asio::io_context& io;
  std::function<void()> on_change;
  int debounce_ms;
  int fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> stream;
  asio::steady_timer timer;
  std::vector<int> watches;
  std::string config_name;  // the config file's name within its folder
  int config_dir_wd = -1;
  int scripts_wd = -1;
  bool scripts_in_config_dir = false;
  std::map<int, std::set<std::string>> files;  // watch (a folder) -> names in it that count
  alignas(inotify_event) char buf[16 * 1024];

  Impl(asio::io_context& i, std::function<void()> cb, int ms) : io(i), on_change(std::move(cb)), debounce_ms(ms), timer(i) {}

  void read() {
    stream->async_read_some(asio::buffer(buf), [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return;
      bool relevant = false;
      for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
        auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        const std::string name = ev->len ? std::string(ev->name) : std::string();
        // In the config's folder only the config file counts; in the scripts folder, *.lua.
        const bool lua = name.size() > 4 && name.compare(name.size() - 4, 4, ".lua") == 0;
        if (ev->wd == config_dir_wd) relevant |= name == config_name || (scripts_in_config_dir && lua);
        else if (ev->wd == scripts_wd) relevant |= lua;
        if (auto f = files.find(ev->wd); f != files.end()) relevant |= f->second.count(name) > 0;
        off += sizeof(inotify_event) + ev->len;
      }
      if (relevant) arm();
      read();
    });
  }

  void arm() {
    timer.expires_after(std::chrono::milliseconds(debounce_ms));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) on_change();
    });
  }
};

ConfigWatcher::ConfigWatcher(asio::io_context& io, std::function<void()> on_change, int debounce_ms)
    : impl_(std::make_unique<Impl>(io, std::move(on_change), debounce_ms)) {}

ConfigWatcher::~ConfigWatcher() { stop(); }

bool ConfigWatcher::watch(const std::string& config_path, const std::string& scripts_dir, std::string& err,
                          const std::vector<std::string>& files) {
  Impl& i = *impl_;
  if (i.fd < 0) {
    i.fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (i.fd < 0) {
      err = std::string("inotify: ") + std::strerror(errno);
      return false;
    }
    i.stream = std::make_unique<asio::posix::stream_descriptor>(i.io, i.fd);
    i.read();
  }
  for (int wd : i.watches) ::inotify_rm_watch(i.fd, wd);
  i.watches.clear();
  i.files.clear();
  i.scripts_wd = -1;
  // Editors save by rename as often as by rewrite: watch the folders, not the files.
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE;
  const std::filesystem::path cfg(config_path);
  const std::string cfg_dir = cfg.parent_path().empty() ? "." : cfg.parent_path().string();
  i.config_name = cfg.filename().string();
  i.config_dir_wd = ::inotify_add_watch(i.fd, cfg_dir.c_str(), mask);
  if (i.config_dir_wd < 0) {
    err = cfg_dir + ": " + std::strerror(errno);
    return false;
  }
  i.watches.push_back(i.config_dir_wd);
  if (!scripts_dir.empty() && std::filesystem::is_directory(scripts_dir)) {
    const int wd = ::inotify_add_watch(i.fd, scripts_dir.c_str(), mask);
    if (wd < 0) {
      err = scripts_dir + ": " + std::strerror(errno);
      return false;
    }
    // The same folder as the config: one watch serves both (inotify returns the same wd).
    i.scripts_in_config_dir = wd == i.config_dir_wd;
    i.scripts_wd = wd;
    if (!i.scripts_in_config_dir) i.watches.push_back(wd);
  }
  for (const std::string& f : files) {
    const std::filesystem::path p(f);
    const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    const int wd = ::inotify_add_watch(i.fd, dir.c_str(), mask);  // the same folder twice: the same wd
    if (wd < 0) {
      err = dir + ": " + std::strerror(errno);
      return false;
    }
    if (std::find(i.watches.begin(), i.watches.end(), wd) == i.watches.end()) i.watches.push_back(wd);
    i.files[wd].insert(p.filename().string());
  }
  return true;
}

void ConfigWatcher::stop() {
  Impl& i = *impl_;
  i.timer.cancel();
  if (i.stream) {
    boost::system::error_code ignored;
    i.stream->close(ignored);  // closes the inotify fd
    i.stream.reset();
    i.fd = -1;
  }
}

}  // namespace lg
