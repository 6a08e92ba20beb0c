#include "proxy/script_request.hpp"

#include <algorithm>

#include "core/clock.hpp"

namespace lg {
namespace {

// Replaces an earlier `set` of the same name, drops earlier `add`s of it (set wins), and
// forgets a pending removal.
void set_in(HeaderEdits& e, std::string_view name, std::string_view value) {
  auto same = [&](const std::string& n) { return http::iequals(n, name); };
  for (auto& [n, v] : e.set)
    if (same(n)) {
      v.assign(value);
      return;
    }
  std::erase_if(e.add, [&](const auto& kv) { return same(kv.first); });
  e.set.emplace_back(std::string(name), std::string(value));
}

void clear_in(HeaderEdits& e, std::string_view name) {
  auto same = [&](const std::string& n) { return http::iequals(n, name); };
  std::erase_if(e.set, [&](const auto& kv) { return same(kv.first); });
  std::erase_if(e.add, [&](const auto& kv) { return same(kv.first); });
  for (const auto& n : e.remove)
    if (same(n)) return;
  e.remove.emplace_back(name);
}

}  // namespace

void ScriptRequest::reset() {
  headers.clear();
  live_headers = nullptr;
  up_edits.clear();
  resp_edits.clear();
  path_set = query_set = has_exit = false;
  upstream_override = -1;
  exit_headers.clear();
  exit_body.clear();
  status = 0;
  resp_headers = nullptr;
  consumer_id.clear();
  body.clear();
  saved_resp_headers.clear();
  ctx_ref = -1;
  current = lua::Phase::rewrite;
  wait = lua::Wait::none;
  http_results.clear();
  req_body_buf.clear();
  req_body_ready = false;
  up_body.clear();
  body_set = false;
  up_method.clear();
  method_set = false;
  wait_deadline_ms = 0;
  // A pooled Exchange keeps its capacities; not those of one large body.
  for (std::string* b : {&req_body_buf, &up_body, &body})
    if (b->capacity() > kKeepBytes) std::string().swap(*b);
  if (http_results.capacity() > lua::kMaxMultiCalls) std::vector<lua::HttpResult>().swap(http_results);
}

void ScriptRequest::bind_request(const http::RequestHead& head, std::string_view m, std::string_view norm_path,
                                 std::string_view ip, std::string_view request_id, bool copy) {
  method = m;
  path = norm_path;
  client_ip = ip;
  id = request_id;
  const std::string_view q = head.has_query ? head.query : std::string_view{};
  headers.clear();
  if (!copy) {
    raw_path = head.path;
    query = q;
    host = head.host;
    live_headers = head.headers;
    return;
  }
  own_raw_path.assign(head.path);
  own_query.assign(q);
  own_host.assign(head.host);
  raw_path = own_raw_path;
  query = own_query;
  host = own_host;
  live_headers = nullptr;
  for (const http::Header& h : *head.headers) headers.emplace_back(std::string(h.name), std::string(h.value));
}

void ScriptRequest::up_set_header(std::string_view name, std::string_view value, bool add) {
  if (has_exit) return;  // nothing goes upstream any more
  if (add) up_edits.add.emplace_back(std::string(name), std::string(value));
  else set_in(up_edits, name, value);
}

void ScriptRequest::up_clear_header(std::string_view name) {
  if (!has_exit) clear_in(up_edits, name);
}

void ScriptRequest::up_set_path(std::string_view p) {
  up_path.assign(p);
  path_set = true;
}

void ScriptRequest::up_set_query(std::string_view q) {
  up_query.assign(q);
  query_set = true;
}

bool ScriptRequest::up_set_upstream(std::string_view name) {
  const int i = find_upstream(name);
  if (i >= 0) upstream_override = i;
  return i >= 0;
}

void ScriptRequest::own_views() {
  own_method.assign(method);
  own_path.assign(path);
  own_ip.assign(client_ip);
  own_id.assign(id);
  own_subject.assign(cert_subject);
  cert_subject = own_subject;
  method = own_method;
  path = own_path;
  client_ip = own_ip;
  id = own_id;
}

namespace {
constexpr char kWaitLimit[] = "wait limit reached (scripts.wait_limit)";
}

// Every wait of a request ends by its wait deadline: a sleep or a sub-request timeout is cut
// short there, and a wait started after it fails at once.
static std::int64_t wait_left(ScriptRequest& s) {
  const std::int64_t now = monotonic_ms();
  if (s.wait_deadline_ms == 0) s.wait_deadline_ms = now + s.wait_limit_ms;
  return s.wait_deadline_ms - now;
}

std::string ScriptRequest::start_sleep(std::int64_t ms) {
  const std::int64_t left = wait_left(*this);
  if (left <= 0) return kWaitLimit;
  return io.sleep(std::min(ms, left));
}

std::string ScriptRequest::start_http(std::vector<lua::HttpCall>& calls) {
  const std::int64_t left = wait_left(*this);
  if (left <= 0) return kWaitLimit;
  if (upstreams)
    for (lua::HttpCall& c : calls) {
      const std::int64_t t = c.timeout_ms > 0 ? c.timeout_ms : (*upstreams)[c.upstream].timeouts.read.count();
      c.timeout_ms = std::min(t, left);
    }
  return io.http(calls, http_results, id);
}

int ScriptRequest::find_upstream(std::string_view name) const {
  if (!upstreams) return -1;
  for (std::size_t i = 0; i < upstreams->size(); ++i)
    if ((*upstreams)[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string ScriptRequest::start_read_body() {
  if (!io.owner()) return "the request body cannot be read here";
  return io.owner()->read_request_body();
}

void ScriptRequest::up_set_body(std::string_view b) {
  up_body.assign(b);
  body_set = true;
}

void ScriptRequest::up_set_method(std::string_view m) {
  up_method.assign(m);
  method_set = true;
}

void ScriptRequest::exit(int st, std::string body, std::string_view content_type,
                         std::vector<std::pair<std::string, std::string>> hs) {
  if (has_exit) return;  // the first answer stands
  has_exit = true;
  exit_status = st;
  exit_body = std::move(body);
  exit_type.assign(content_type);
  exit_headers = std::move(hs);
}

void ScriptRequest::resp_set_header(std::string_view name, std::string_view value) { set_in(resp_edits, name, value); }
void ScriptRequest::resp_clear_header(std::string_view name) { clear_in(resp_edits, name); }

}  // namespace lg
