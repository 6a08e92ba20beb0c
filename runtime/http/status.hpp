#pragma once
#include <cstdint>
#include <string_view>

namespace lg::http {
// Reason phrase for the status codes the gateway itself produces ("Bad Request", ...).
std::string_view reason_phrase(std::uint16_t status);
}  // namespace lg::http
