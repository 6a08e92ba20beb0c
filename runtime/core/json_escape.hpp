// JSON string escaping for log lines and error bodies (spdlog's %v does not escape).
#pragma once
#include <string>
#include <string_view>

namespace lg {

// Appends `s` to `out` as the contents of a JSON string (without the quotes).
// Control characters and non-UTF-8 bytes are escaped as \u00XX so the line stays valid JSON.
void json_escape_append(std::string& out, std::string_view s);

}  // namespace lg
