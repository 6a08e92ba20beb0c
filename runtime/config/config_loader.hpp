// YAML -> Config. Strict: unknown keys, wrong types, bad durations/sizes, unknown upstream names,
// duplicate route names are errors "file:line: key.path: message". Exceptions only here, at load.
#pragma once
#include <stdexcept>
#include <string>

#include "config/config.hpp"

namespace lg {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads and validates the file. Throws ConfigError with every problem found (one per line).
Config load_config_file(const std::string& path);

// Same, from text already in memory; `path` is only used in messages.
Config load_config_text(const std::string& text, const std::string& path);

}  // namespace lg
