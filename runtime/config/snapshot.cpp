#include "config/snapshot.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "config/config_loader.hpp"

namespace lg {
namespace {

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

Router build_router(const Config& cfg) {
  try {
    return Router(cfg.routes);
  } catch (const ConfigError& e) {
    // The router reports "line: key: message"; give every line its file.
    std::string msg;
    std::istringstream lines(e.what());
    for (std::string line; std::getline(lines, line);) {
      if (!msg.empty()) msg += '\n';
      msg += cfg.path + ":" + line;
    }
    throw ConfigError(msg);
  }
}

}  // namespace

Snapshot::Snapshot(Config cfg, std::string file_text, std::uint64_t ver)
    : config(std::move(cfg)),
      router(build_router(config)),
      hash(sha256_hex(file_text)),
      loaded_at(std::chrono::system_clock::now()),
      version(ver) {
  std::unordered_map<std::string, std::uint32_t> index;
  upstreams.reserve(config.upstreams.size());
  for (const auto& up : config.upstreams) {
    index.emplace(up.name, static_cast<std::uint32_t>(upstreams.size()));
    UpstreamGroup g;
    g.config = &up;
    if (up.balance == BalanceKind::consistent_hash) g.ring = HashRing(up.targets);
    upstreams.push_back(std::move(g));
  }
  route_upstream.reserve(config.routes.size());
  for (const auto& r : config.routes) {
    auto it = index.find(r.upstream);
    // The loader already rejected unknown upstream names; this guards programming errors.
    if (it == index.end()) throw ConfigError(config.path + ": route '" + r.name + "': unknown upstream");
    route_upstream.push_back(it->second);
  }
}

std::shared_ptr<const Snapshot> build_snapshot(const std::string& path, std::uint64_t version) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  Config cfg = load_config_text(text, path);
  return std::make_shared<const Snapshot>(std::move(cfg), std::move(text), version);
}

}  // namespace lg
