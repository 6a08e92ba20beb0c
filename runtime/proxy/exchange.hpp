// Request-scoped scratch of a ClientConnection, pooled per worker: a connection holds one only
// while a request is in flight, so an idle keep-alive connection carries none of it, and string
// capacities survive from one request to the next (no allocation per request).
#pragma once
#include <sys/uio.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "proxy/script_request.hpp"

namespace lg {

struct Exchange {
  static constexpr std::size_t kMaxSpans = 16;  // body spans per gather write
  std::array<iovec, 3 * kMaxSpans + 3> iov{};   // [chunk header, data, CRLF] per span + head + end
  char chunk_hdr[kMaxSpans + 1][20];
  std::string upstream_path;  // after strip_prefix / rewrite
  std::string up_head;        // request head for the upstream, without Host
  std::string host_line;      // "Host: ...\r\n\r\n", ends the upstream head
  std::string out_head;       // response head for the client (or a whole error response)
  std::string hash_key;       // consistent-hash key, kept for retries
  ScriptRequest script;       // the request as scripts see and change it (scripted routes)
  // Native policies (routes with policies): their decisions, kept for the upstream head and the
  // response head.
  policy::PolicyRequest policy;
  HeaderEdits policy_edits;
  std::vector<std::pair<std::string, std::string>> policy_resp_headers;
  policy::RemoteTake remote_take;  // a rate limit kept in Redis: what it asked and got
  policy::RevocationCheck revocation_check;  // a token's jti looked up in Redis
  std::string consumer_id;    // who authenticated (native policy or script), for the access log
};

class ExchangePool {
 public:
  ~ExchangePool() {
    for (Exchange* x : free_) delete x;
  }
  Exchange* acquire() {
    if (free_.empty()) return new Exchange;
    Exchange* x = free_.back();
    free_.pop_back();
    return x;
  }
  void release(Exchange* x) {
    if (free_.size() < kMaxFree) free_.push_back(x);
    else delete x;
  }

 private:
  static constexpr std::size_t kMaxFree = 1024;
  std::vector<Exchange*> free_;
};

}  // namespace lg
