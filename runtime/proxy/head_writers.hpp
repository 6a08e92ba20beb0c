// Serializers for the heads the gateway writes: the request sent upstream, the response sent to
// the client, and the gateway's own error responses. Pure string building (no I/O), appended to
// per-connection buffers whose capacity is reused across requests.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"

namespace lg {

// Header changes made by scripts (or policies): names in `remove` or set by `set` are dropped from
// the copied headers; `set` and `add` are then appended.
struct HeaderEdits {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
  bool drops(std::string_view name) const;
  void clear() {
    set.clear();
    add.clear();
    remove.clear();
  }
};

// What the client sent that the gateway replaces or consumes (views into the read buffer).
struct ClientRequestFacts {
  std::string_view request_id;     // X-Request-ID
  std::string_view traceparent;    // traceparent
  static constexpr int kMaxForwardedFor = 16;
  std::string_view forwarded_for[kMaxForwardedFor];  // X-Forwarded-For field lines, in order
  int forwarded_for_count = 0;                       // lines past the 16th are dropped
  std::string_view hash_value;     // consistent-hash key from a header or cookie
};

struct RequestHeadOptions {
  std::string_view hash_header;  // capture this header's value into facts.hash_value
  std::string_view hash_cookie;  // or this cookie's value
  const HeaderEdits* edits = nullptr;
  const HeaderEdits* policy_edits = nullptr;     // native policies' changes (applied before `edits`)
  const std::string* query_override = nullptr;  // replaces the client's query ("" drops it)
  std::string_view method_override;              // gw.service.request.set_method
};

// "METHOD path[?query] HTTP/1.1\r\n" followed by every end-to-end header of the client.
// Dropped: hop-by-hop fields (Connection and the names it lists, Keep-Alive, Proxy-Connection,
// TE, Trailer, Transfer-Encoding, Upgrade, HTTP2-Settings), framing and expectation fields the
// gateway re-derives (Content-Length, Expect), and identity fields the gateway sets (Host,
// X-Request-ID, traceparent, X-Forwarded-*, X-Real-IP) -- so none of them can be spoofed.
void write_upstream_request_start(std::string& out, const http::RequestHead& req,
                                  std::string_view path, const RequestHeadOptions& opts,
                                  ClientRequestFacts& facts);

struct GatewayRequestHeaders {
  std::string_view request_id;
  std::string_view traceparent;
  std::string_view client_ip;
  const std::string_view* forwarded_for = nullptr;  // the client's lines, joined; the peer is appended
  int forwarded_for_count = 0;
  std::string_view forwarded_host;
  std::string_view proto = "http";
  http::BodyKind body = http::BodyKind::none;
  std::uint64_t content_length = 0;
  bool websocket = false;
};

// Appends the gateway's headers except Host (which may depend on the target picked later).
void finish_upstream_request(std::string& out, const GatewayRequestHeaders& h);

// "Host: <host>\r\n\r\n": the last field and the end of the upstream request head.
void write_host_line(std::string& out, std::string_view host);

struct ClientResponseOptions {
  std::string_view request_id;
  bool chunked = false;      // re-frame the body as chunked for the client
  bool keep_alive = true;    // false: "Connection: close"
  bool client_http10 = false;  // keep-alive to a 1.0 client must be announced
  bool upgrade = false;      // 101: forward Upgrade and "Connection: upgrade"
  const HeaderEdits* edits = nullptr;
  const std::vector<std::pair<std::string, std::string>>* extra = nullptr;  // added (policies: CORS, RateLimit-*)
};

// The response head for the client from the upstream's head: hop-by-hop fields dropped, framing
// re-derived, X-Request-ID set.
void write_client_response_head(std::string& out, const http::ResponseHead& resp,
                                const ClientResponseOptions& opts);

// Response fields the gateway never copies from an upstream: hop-by-hop ones and the ones it
// re-derives (framing, X-Request-ID).
bool gateway_owned_response_field(std::string_view name);

// A gateway-generated response: small JSON body {"error","status","request_id"}.
// `allow` (Method bits) adds an Allow header for 405.
void write_error_response(std::string& out, std::uint16_t status, std::string_view message,
                          std::string_view request_id, bool close, std::uint16_t allow = 0,
                          const std::vector<std::pair<std::string, std::string>>* extra = nullptr);

// Appends the `set` and `add` fields of `e`.
void append_header_edits(std::string& out, const HeaderEdits& e);
// Appends "name: value\r\n" for each pair.
void append_fields(std::string& out, const std::vector<std::pair<std::string, std::string>>& fields);

// A response the gateway answers itself with a script's status, body and headers.
void write_local_response(std::string& out, std::uint16_t status, std::string_view body,
                          std::string_view content_type,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view request_id, bool close);

// "GET, HEAD, POST" for Method bits.
void append_allow_list(std::string& out, std::uint16_t methods);

}  // namespace lg
