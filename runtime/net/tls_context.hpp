// TLS server settings of one listener, built from its TlsConfig when a snapshot is built: one
// SSL_CTX per certificate (the first is the default, the others are switched to by SNI). A new
// connection takes a reference to the context of the snapshot current when it was accepted, so a
// reload (new certificate files) changes new connections only. No OpenSSL types in this header.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

struct ssl_ctx_st;  // SSL_CTX
struct ssl_st;      // SSL

namespace lg {

// Whether a certificate name ("a.example.com" or "*.example.com", from a SAN DNS entry) covers
// the host name a client asked for (SNI). Case-insensitive; a wildcard stands for exactly one
// whole left-most label; a trailing dot on the host is ignored.
bool sni_name_matches(std::string_view cert_name, std::string_view host);

// The certificate to serve for `sni`: the first one with an exact name match, else the first with
// a wildcard match, else 0 (the default; also for an empty SNI).
std::size_t pick_certificate(const std::vector<std::vector<std::string>>& names, std::string_view sni);

class TlsContext {
 public:
  // Loads every file; throws ConfigError naming "file:line: key" (unreadable file, bad PEM, a key
  // that does not match its certificate).
  explicit TlsContext(const TlsConfig& cfg);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* default_ctx() const { return ctxs_.front(); }
  std::int64_t handshake_timeout_ms() const { return handshake_timeout_ms_; }
  // For the SNI callback.
  ssl_ctx_st* ctx_for(std::string_view sni) const { return ctxs_[pick_certificate(names_, sni)]; }

 private:
  std::vector<ssl_ctx_st*> ctxs_;                 // one per certificate, owned (SSL_CTX_free)
  std::vector<std::vector<std::string>> names_;   // SAN DNS names per certificate, lowercase
  std::int64_t handshake_timeout_ms_ = 10'000;
};

// TLS client settings of one upstream group (`upstreams.<name>.tls`), built per snapshot: one
// SSL_CTX (TLS 1.2+, the CA store, the optional client certificate). The per-connection parts
// (SNI, the name or IP to verify) are set on each SSL by Stream::start_tls_client.
class TlsClientContext {
 public:
  // Loads the CA and the client certificate; throws ConfigError naming "file:line: key".
  explicit TlsClientContext(const UpstreamTlsConfig& cfg);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  ssl_ctx_st* ctx() const { return ctx_; }
  bool verify() const { return verify_; }
  UpstreamTlsConfig::SniMode sni_mode() const { return sni_mode_; }
  const std::string& sni() const { return sni_; }

 private:
  ssl_ctx_st* ctx_ = nullptr;
  bool verify_ = true;
  UpstreamTlsConfig::SniMode sni_mode_ = UpstreamTlsConfig::SniMode::automatic;
  std::string sni_;
};

// One client context per upstream group (null for plain ones), in config.upstreams order.
std::vector<std::shared_ptr<const TlsClientContext>> build_upstream_tls(const Config& cfg);

// Whether `host` is an IPv4 or IPv6 literal (never sent as SNI; verified as an IP address).
bool is_ip_literal(std::string_view host);

// Who a client-side SSL expects to reach: `name` is sent as SNI unless it is an IP literal and,
// with `verify`, is the host name (or IP) the certificate must carry; an empty name verifies
// `ip` instead. False if OpenSSL refused a setting.
bool set_peer_name(ssl_st* ssl, std::string_view name, std::string_view ip, bool verify);

// One context per listener (null for plain listeners), in config.listen order.
std::vector<std::shared_ptr<const TlsContext>> build_listen_tls(const Config& cfg);

}  // namespace lg
