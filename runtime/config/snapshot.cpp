#include "config/snapshot.hpp"

#include "net/tls_context.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <filesystem>
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

Snapshot::Snapshot(Config cfg, std::string file_text, std::uint64_t ver, auth::JwksProvider* jwks)
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
  load_scripts();
  policies = policy::compile_policies(config, jwks);
  route_upstream.reserve(config.routes.size());
  for (const auto& r : config.routes) {
    auto it = index.find(r.upstream);
    // The loader already rejected unknown upstream names; this guards programming errors.
    if (it == index.end()) throw ConfigError(config.path + ": route '" + r.name + "': unknown upstream");
    route_upstream.push_back(it->second);
  }
}

void Snapshot::load_scripts() {
  // Relative script folders are taken from the config file's folder, like every relative path.
  std::filesystem::path dir(config.scripts.dir);
  if (dir.is_relative()) dir = std::filesystem::path(config.path).parent_path() / dir;
  scripts_dir = dir.lexically_normal().string();
  std::unordered_map<std::string, std::uint32_t> index;
  std::string errors;
  auto attach = [&](const ScriptRef& ref, const std::string& where, std::vector<ScriptAttachment>& out) {
    auto it = index.find(ref.name);
    if (it == index.end()) {
      const std::filesystem::path file = dir / (ref.name + ".lua");
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        if (!errors.empty()) errors += '\n';
        errors += config.path + ":" + std::to_string(ref.line) + ": " + where + ": script '" + ref.name +
                  "' not found: " + file.string() + ": " + std::strerror(errno);
        return;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      ScriptSource src{ref.name, file.lexically_normal().string(), ss.str(), {}};
      src.sha256 = sha256_hex(src.source);
      it = index.emplace(ref.name, static_cast<std::uint32_t>(scripts.size())).first;
      scripts.push_back(std::move(src));
    }
    ScriptAttachment a;
    a.script = it->second;
    a.ref = &ref;
    a.cpu_ms = ref.cpu.value_or(config.scripts.cpu).count();
    a.memory = ref.memory.value_or(config.scripts.memory);
    out.push_back(a);
  };
  std::vector<ScriptAttachment> global;
  for (std::size_t i = 0; i < config.scripts.global.size(); ++i)
    attach(config.scripts.global[i], "scripts.global[" + std::to_string(i) + "]", global);
  route_scripts.resize(config.routes.size());
  for (std::size_t r = 0; r < config.routes.size(); ++r) {
    route_scripts[r] = global;
    const auto& refs = config.routes[r].scripts;
    for (std::size_t i = 0; i < refs.size(); ++i)
      attach(refs[i], "routes[" + std::to_string(r) + "].scripts[" + std::to_string(i) + "]", route_scripts[r]);
  }
  if (!errors.empty()) throw ConfigError(errors);
}

std::shared_ptr<const Snapshot> build_snapshot(const std::string& path, std::uint64_t version,
                                               auth::JwksProvider* jwks) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  Config cfg = load_config_text(text, path);
  auto snap = std::make_shared<Snapshot>(std::move(cfg), std::move(text), version, jwks);
  snap->listen_tls = build_listen_tls(snap->config);
  snap->upstream_tls = build_upstream_tls(snap->config);
  return snap;
}

}  // namespace lg
