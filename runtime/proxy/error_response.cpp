#include "core/json_escape.hpp"
#include "http/status.hpp"
#include "proxy/head_writers.hpp"

namespace lg {

void write_error_response(std::string& out, std::uint16_t status, std::string_view message,
                          std::string_view request_id, bool close, std::uint16_t allow,
                          const std::vector<std::pair<std::string, std::string>>* extra) {
  // Body first into the tail of `out`, then the head in front of it would need a move; the
  // body is small, so build it in a local buffer with a fixed reserve.
  std::string body;
  body.reserve(96 + message.size() + request_id.size());
  body.append("{\"error\":\"");
  json_escape_append(body, message);
  body.append("\",\"status\":");
  body.append(std::to_string(status));
  body.append(",\"request_id\":\"");
  json_escape_append(body, request_id);
  body.append("\"}\n");

  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  out.append(http::reason_phrase(status));
  out.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\nX-Request-ID: ");
  out.append(request_id);
  out.append("\r\n");
  if (allow) {
    out.append("Allow: ");
    append_allow_list(out, allow);
    out.append("\r\n");
  }
  if (close) out.append("Connection: close\r\n");
  if (status == 503) out.append("Retry-After: 1\r\n");
  if (extra) append_fields(out, *extra);
  out.append("\r\n");
  out.append(body);
}

void write_local_response(std::string& out, std::uint16_t status, std::string_view body,
                          std::string_view content_type,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view request_id, bool close) {
  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  out.append(http::reason_phrase(status));
  out.append("\r\n");
  bool has_type = false;
  for (const auto& [n, v] : headers) {
    // Framing and identity stay the gateway's: a script cannot set them.
    if (http::iequals(n, "content-length") || http::iequals(n, "transfer-encoding") ||
        http::iequals(n, "connection") || http::iequals(n, "x-request-id"))
      continue;
    has_type = has_type || http::iequals(n, "content-type");
    out.append(n);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
  if (!has_type && !body.empty()) {
    out.append("Content-Type: ");
    out.append(content_type);
    out.append("\r\n");
  }
  out.append("Content-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\nX-Request-ID: ");
  out.append(request_id);
  out.append("\r\n");
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(body);
}

}  // namespace lg
