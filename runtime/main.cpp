// lunagate run|check|version -- see README.md.
#include <fmt/format.h>

#include <cstring>
#include <string>

#include "config/config_loader.hpp"
#include "config/snapshot.hpp"
#include "gateway.hpp"
#include "lua/engine.hpp"

#include <algorithm>
#include <vector>
#include <sstream>

namespace {

int usage() {
  fmt::print(stderr,
             "usage: lunagate run   -c FILE   serve in the foreground\n"
             "       lunagate check -c FILE   validate the config; exit 1 with file:line errors\n"
             "       lunagate version\n");
  return 2;
}

const char* config_arg(int argc, char** argv) {
  for (int i = 2; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "-c") || !std::strcmp(argv[i], "--config")) return argv[i + 1];
  return nullptr;
}

int check(const char* path) {
  try {
    auto s = lg::build_snapshot(path, 1);
    std::string errors = lg::lua::check_scripts(*s);
    std::size_t scripts = 0;
    const std::string folder = lg::lua::check_script_dir(*s, scripts);
    if (!folder.empty()) errors += (errors.empty() ? "" : "\n") + folder;
    if (!errors.empty()) {
      // A script both used and in the folder fails twice: print each line once.
      std::istringstream lines(errors);
      std::vector<std::string> seen;
      for (std::string line; std::getline(lines, line);)
        if (std::find(seen.begin(), seen.end(), line) == seen.end()) seen.push_back(line);
      for (const auto& line : seen) fmt::print(stderr, "{}\n", line);
      return 1;
    }
    fmt::print("{}: ok ({} routes, {} upstreams, {} workers, {} scripts)\n", path, s->config.routes.size(),
               s->config.upstreams.size(), s->config.workers, scripts);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    fmt::print("lunagate {}\n", LUNAGATE_VERSION);
    return 0;
  }
  const char* path = config_arg(argc, argv);
  if (!path || (cmd != "run" && cmd != "check")) return usage();
  if (cmd == "check") return check(path);
  return lg::Gateway(path).run();
}
