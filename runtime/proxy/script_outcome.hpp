// How a failed script handler is reported: an error log line with the request id, and
// gateway_script_errors_total{script,kind}.
#pragma once
#include <string_view>

#include "lua/engine.hpp"

namespace lg {
class Worker;
void report_script_failure(Worker& w, std::string_view request_id, const lua::PhaseReport& r, bool log_phase);
}  // namespace lg
