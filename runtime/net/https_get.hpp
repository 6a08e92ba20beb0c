// A blocking HTTPS GET for control-plane threads (the JWKS fetcher), never for a worker: DNS, TCP
// connect, TLS handshake (chain verified against the context's CA store, host name or IP checked,
// SNI), one request with Connection: close, and the whole response read under one deadline with
// poll(). The only wait not bounded by the deadline is name resolution (getaddrinfo, bounded by
// the resolver's own timeouts). No OpenSSL types in this header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/https_url.hpp"

namespace lg {

class TlsClientContext;

struct HttpsGetResult {
  std::string error;         // empty on success (any status); else what failed, for the log
  std::uint16_t status = 0;  // once a response head arrived
  std::string body;          // the whole body (at most max_body bytes)
  bool ok() const { return error.empty(); }
};

// `cancel_fd`: when it becomes readable the fetch gives up at once (shutdown); -1 for none.
HttpsGetResult https_get(const http::HttpsUrl& url, const TlsClientContext& tls, std::int64_t timeout_ms,
                         std::size_t max_body, int cancel_fd = -1);

}  // namespace lg
