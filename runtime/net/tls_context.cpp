#include "net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "config/config_loader.hpp"
#include "http/message.hpp"

namespace lg {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// TLS 1.2 suites: ECDHE key exchange with an AEAD only (TLS 1.3 suites are all AEAD already).
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

[[noreturn]] void fail(const ConfigFile& f, std::string_view what) {
  std::string msg = fmt::format("{}: {}: {}", f.origin, f.path, what);
  ERR_clear_error();
  throw ConfigError(msg);
}

void check_readable(const ConfigFile& f) {
  std::FILE* fp = std::fopen(f.path.c_str(), "rb");
  if (!fp) fail(f, std::string("cannot read: ") + std::strerror(errno));
  std::fclose(fp);
}

// A certificate chain and its key into `ctx`. The key first: set after the certificate, a
// mismatching key would fail with OpenSSL's "key values mismatch" rather than the check below.
void load_key_pair(SSL_CTX* ctx, const ConfigFile& cert, const ConfigFile& key) {
  check_readable(cert);
  check_readable(key);
  if (SSL_CTX_use_PrivateKey_file(ctx, key.path.c_str(), SSL_FILETYPE_PEM) != 1)
    fail(key, "not a PEM private key (" + openssl_errors() + ")");
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.path.c_str()) != 1)
    fail(cert, "not a PEM certificate chain (" + openssl_errors() + ")");
  if (SSL_CTX_check_private_key(ctx) != 1) fail(key, "key does not match the certificate " + cert.path);
}

// ALPN: we speak HTTP/1.1 only. A client that offers no http/1.1 (h2 only) gets no ALPN answer and
// the handshake goes on (as nginx does) rather than a no_application_protocol alert.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
  static const unsigned char kOurs[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* sel = nullptr;
  unsigned char sel_len = 0;
  if (SSL_select_next_proto(&sel, &sel_len, kOurs, sizeof kOurs, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  *outlen = sel_len;
  return SSL_TLSEXT_ERR_OK;
}

int on_servername(SSL* ssl, int*, void* arg) {
  const auto* tls = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_NOACK;
  SSL_CTX* want = tls->ctx_for(name);
  if (want != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, want);
  return SSL_TLSEXT_ERR_OK;
}

std::vector<std::string> san_dns_names(SSL_CTX* ctx) {
  std::vector<std::string> out;
  X509* x = SSL_CTX_get0_certificate(ctx);
  if (!x) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type != GEN_DNS) continue;
    const unsigned char* p = ASN1_STRING_get0_data(g->d.dNSName);
    std::string n(reinterpret_cast<const char*>(p), static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName)));
    for (char& c : n) c = lower(c);
    out.push_back(std::move(n));
  }
  GENERAL_NAMES_free(names);
  return out;
}

SSL_CTX* make_ctx(const TlsConfig& cfg, const TlsCertificateConfig& cert, const TlsContext* owner) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw ConfigError("tls: SSL_CTX_new failed: " + openssl_errors());
  struct Guard {
    SSL_CTX* c;
    ~Guard() { if (c) SSL_CTX_free(c); }
  } guard{ctx};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1) throw ConfigError("tls: cipher list: " + openssl_errors());
  // Idle keep-alive connections give OpenSSL's record buffers back (as nginx does).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Resumption by stateless tickets only: no server-side session cache (its memory and its lock,
  // shared by every worker).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("lunagate"), 8);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
  SSL_CTX_set_tlsext_servername_arg(ctx, const_cast<TlsContext*>(owner));

  load_key_pair(ctx, cert.cert, cert.key);

  if (cfg.client_ca) {
    const ConfigFile& ca = *cfg.client_ca;
    check_readable(ca);
    if (SSL_CTX_load_verify_locations(ctx, ca.path.c_str(), nullptr) != 1)
      fail(ca, "no CA certificate could be loaded (" + openssl_errors() + ")");
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.path.c_str());
    if (!names) fail(ca, "no CA certificate could be loaded (" + openssl_errors() + ")");
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (cfg.client_verify_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    SSL_CTX_set_verify_depth(ctx, 8);
  }
  guard.c = nullptr;
  return ctx;
}

}  // namespace

bool sni_name_matches(std::string_view cert_name, std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || cert_name.empty()) return false;
  if (cert_name.size() > 2 && cert_name[0] == '*' && cert_name[1] == '.') {
    const std::string_view suffix = cert_name.substr(1);  // ".example.com"
    const std::size_t dot = host.find('.');
    if (dot == 0 || dot == std::string_view::npos) return false;  // the wildcard needs a whole label
    return http::iequals(host.substr(dot), suffix);
  }
  return http::iequals(cert_name, host);
}

std::size_t pick_certificate(const std::vector<std::vector<std::string>>& names, std::string_view sni) {
  if (sni.empty()) return 0;
  for (int wildcard = 0; wildcard < 2; ++wildcard)
    for (std::size_t i = 0; i < names.size(); ++i)
      for (const std::string& n : names[i])
        if ((n.rfind("*.", 0) == 0) == (wildcard == 1) && sni_name_matches(n, sni)) return i;
  return 0;
}

TlsContext::TlsContext(const TlsConfig& cfg) : handshake_timeout_ms_(cfg.handshake_timeout.count()) {
  ERR_clear_error();
  try {
    for (const TlsCertificateConfig& c : cfg.certificates) {
      ctxs_.push_back(make_ctx(cfg, c, this));
      names_.push_back(san_dns_names(ctxs_.back()));
    }
  } catch (...) {
    for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
    throw;
  }
  if (ctxs_.empty()) throw ConfigError("tls: no certificate");
}

TlsContext::~TlsContext() {
  for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);  // connections still using one hold their own reference
}

bool is_ip_literal(std::string_view host) {
  if (host.empty() || host.size() >= 64) return false;
  const std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool set_peer_name(SSL* ssl, std::string_view name, std::string_view ip, bool verify) {
  const std::string n(name), a(ip);
  const bool name_is_ip = !n.empty() && is_ip_literal(n);
  bool ok = true;
  if (!n.empty() && !name_is_ip) ok &= SSL_set_tlsext_host_name(ssl, n.c_str()) == 1;
  if (verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!n.empty() && !name_is_ip) ok &= X509_VERIFY_PARAM_set1_host(param, n.c_str(), n.size()) == 1;
    else if (!n.empty()) ok &= X509_VERIFY_PARAM_set1_ip_asc(param, n.c_str()) == 1;
    else if (!a.empty()) ok &= X509_VERIFY_PARAM_set1_ip_asc(param, a.c_str()) == 1;
  }
  return ok;
}

TlsClientContext::TlsClientContext(const UpstreamTlsConfig& cfg)
    : verify_(cfg.verify), sni_mode_(cfg.sni_mode), sni_(cfg.sni) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) throw ConfigError(cfg.origin + ": SSL_CTX_new failed: " + openssl_errors());
  struct Guard {
    SSL_CTX* c;
    ~Guard() { if (c) SSL_CTX_free(c); }
  } guard{ctx};
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1) throw ConfigError(cfg.origin + ": cipher list: " + openssl_errors());
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  if (cfg.ca) {
    check_readable(*cfg.ca);
    if (SSL_CTX_load_verify_locations(ctx, cfg.ca->path.c_str(), nullptr) != 1)
      fail(*cfg.ca, "no CA certificate could be loaded (" + openssl_errors() + ")");
  } else if (cfg.verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    throw ConfigError(cfg.origin + ": the system CA store could not be loaded: " + openssl_errors());
  }
  SSL_CTX_set_verify(ctx, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_verify_depth(ctx, 8);
  if (cfg.cert && cfg.key) load_key_pair(ctx, *cfg.cert, *cfg.key);
  ctx_ = ctx;
  guard.c = nullptr;
}

TlsClientContext::~TlsClientContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

std::vector<std::shared_ptr<const TlsClientContext>> build_upstream_tls(const Config& cfg) {
  std::vector<std::shared_ptr<const TlsClientContext>> out;
  for (const UpstreamConfig& u : cfg.upstreams)
    out.push_back(u.tls ? std::make_shared<const TlsClientContext>(*u.tls) : nullptr);
  return out;
}

std::vector<std::shared_ptr<const TlsContext>> build_listen_tls(const Config& cfg) {
  std::vector<std::shared_ptr<const TlsContext>> out;
  for (const ListenConfig& l : cfg.listen) out.push_back(l.tls ? std::make_shared<const TlsContext>(*l.tls) : nullptr);
  return out;
}

}  // namespace lg
