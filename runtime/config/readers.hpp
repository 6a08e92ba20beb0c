// Section readers shared by config_loader.cpp and route_reader.cpp (internal to config/).
#pragma once
#include <set>
#include <string>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace lg::config_readers {

// Three optional durations: connect/read/write (upstream timeouts and their route overrides).
void read_timeouts(yaml_reader::Problems& p, const yaml_reader::Value& v, OptionalTimeouts& out);

// The `routes` list; `declared` holds every upstream name so references can be checked.
void read_routes(yaml_reader::Problems& p, const yaml_reader::Value& v, Config& cfg,
                 const std::set<std::string>& declared);

// `scripts:` (top level) and the script lists of routes and of scripts.global.
void read_scripts_section(yaml_reader::Problems& p, const yaml_reader::Value& v, ScriptsConfig& out);
void read_script_refs(yaml_reader::Problems& p, const yaml_reader::Value& v, std::vector<ScriptRef>& out);

// A file path from the config, relative to the config file's folder unless absolute.
inline std::string config_relative(const std::string& config_path, const std::string& text) {
  const std::size_t slash = config_path.rfind('/');
  return text.empty() || text.front() == '/' || slash == std::string::npos ? text : config_path.substr(0, slash + 1) + text;
}

// `consumers:` and a route's `policies:` (policy_reader.cpp); file paths in them are resolved
// against `config_path`.
void read_consumers(yaml_reader::Problems& p, const yaml_reader::Value& v, std::vector<ConsumerConfig>& out);
void read_policies(yaml_reader::Problems& p, const yaml_reader::Value& v, const std::string& config_path,
                   std::vector<PolicyConfig>& out);

}  // namespace lg::config_readers
