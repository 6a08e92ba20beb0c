// The error/event log (spdlog's default logger) and the access-log destination.
#pragma once
#include <string>

#include "config/config.hpp"

namespace lg {

// Points spdlog's default logger at stderr, stdout or a file, at the configured level.
// Throws std::runtime_error if the file cannot be opened (at startup only).
void setup_error_log(const LogConfig& cfg);

// Opens the access-log destination once: an fd shared by every worker's sink (O_APPEND), or -1
// when access logging is off. Throws std::runtime_error when a file cannot be opened.
int open_access_log_fd(const LogConfig& cfg);

}  // namespace lg
