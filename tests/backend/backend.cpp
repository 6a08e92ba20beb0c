// lg-backend: a small HTTP/1.1 upstream for lunagate's integration tests, examples and benchmarks.
//
//   lg-backend --listen 127.0.0.1:PORT [--name NAME] [--record DIR] [--idle-close-ms N]
//
// Prints "listening HOST:PORT" once bound (PORT 0 = any free port). One thread, one io_context,
// keep-alive and pipelining, a lenient parser (Content-Length and chunked bodies, obs-fold, bare LF).
// Endpoints (path before '?'): default {"ok":true}; /echo; /delay?ms=; /stream?bytes=&chunked=1&chunk=;
// /sink; /close; /garbage; /status?code=; /partial; /http10; /slowhead?ms=; /headers-big?bytes=;
// /ws (raw echo after 101); /chunked-trailer. --record DIR appends every byte received on
// connection <seq> to DIR/conn-<seq>.raw (seq zero-padded to 6 digits, flushed after each read).
#include <utility>
#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_text.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string name = "backend";
  std::string record_dir;
  long idle_close_ms = 0;
};

constexpr std::size_t kMaxHead = 1 << 20;           // larger request heads get 431
constexpr std::size_t kMaxStoredBody = 64u << 20;    // /echo keeps at most this much of the body
constexpr std::size_t kMaxChunkLine = 64 * 1024;
constexpr std::string_view kPattern = "0123456789abcdef";
unsigned long g_connection_seq = 0;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Does the comma-separated list contain `token` (case-insensitive)?
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Value of `key` in "a=1&b=2", or "" when absent.
std::string_view query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (pair.size() == query.size()) break;
    query.remove_prefix(pair.size() + 1);
  }
  return {};
}

bool parse_uint(std::string_view s, std::uint64_t& out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

std::uint64_t param_uint(std::string_view query, std::string_view key, std::uint64_t def) {
  std::uint64_t v;
  return parse_uint(query_param(query, key), v) ? v : def;
}

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";          case 101: return "Switching Protocols";
    case 200: return "OK";                case 201: return "Created";
    case 204: return "No Content";        case 301: return "Moved Permanently";
    case 302: return "Found";             case 304: return "Not Modified";
    case 400: return "Bad Request";       case 401: return "Unauthorized";
    case 403: return "Forbidden";         case 404: return "Not Found";
    case 429: return "Too Many Requests"; case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error"; case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";   case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

struct Request {
  std::string method, target, version;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;               // kept only for /echo
  std::uint64_t body_bytes = 0;

  std::string_view header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (iequals(n, name)) return v;
    return {};
  }
  std::string_view path() const { return std::string_view(target).substr(0, target.find('?')); }
  std::string_view query() const {
    std::size_t q = target.find('?');
    return q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
  }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const Options& opts)
      : socket_(std::move(socket)), opts_(opts), idle_timer_(socket_.get_executor()),
        delay_timer_(socket_.get_executor()), seq_(++g_connection_seq) {}
  ~Connection() { if (record_) std::fclose(record_); }

  void start() { do_read(); }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailer };
  enum class Step { kNeedMore, kComplete, kBad, kTooBig, kContinue, kProceed };
  enum class After { kFinish, kClose, kParse, kTunnel, kStream };

  // ---- reading --------------------------------------------------------------------------------
  void do_read() {
    if (opts_.idle_close_ms > 0 && !tunnel_ && req_.method.empty() && pos_ == in_.size()) {
      std::uint64_t gen = ++idle_gen_;
      idle_timer_.expires_after(std::chrono::milliseconds(opts_.idle_close_ms));
      idle_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
        if (!ec && gen == self->idle_gen_) self->close();
      });
    }
    socket_.async_read_some(asio::buffer(rbuf_), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(error_code ec, std::size_t n) {
    ++idle_gen_;  // any completion ends the idle period
    if (ec) {
      if (tunnel_) half_close();
      else close();
      return;
    }
    record(n);
    if (tunnel_) {
      out_.assign(rbuf_.data(), n);
      return send(After::kTunnel);
    }
    in_.append(rbuf_.data(), n);
    process();
  }

  void record(std::size_t n) {
    if (opts_.record_dir.empty()) return;
    if (!record_) {
      char name[32];
      std::snprintf(name, sizeof name, "/conn-%06lu.raw", seq_);
      record_ = std::fopen((opts_.record_dir + name).c_str(), "ab");
      if (!record_) return;
    }
    std::fwrite(rbuf_.data(), 1, n, record_);
    std::fflush(record_);
  }

  // ---- parsing --------------------------------------------------------------------------------
  // Takes the next line (without CRLF or bare LF) from the buffer.
  bool next_line(std::string_view& line) {
    std::size_t nl = in_.find('\n', pos_);
    if (nl == std::string::npos) return false;
    line = std::string_view(in_).substr(pos_, nl - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = nl + 1;
    return true;
  }

  void take_body(std::uint64_t max) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(max, in_.size() - pos_));
    if (store_body_ && req_.body.size() + n <= kMaxStoredBody) req_.body.append(in_, pos_, n);
    req_.body_bytes += n;
    remaining_ -= n;
    pos_ += n;
  }

  // Advances the parser as far as the buffered bytes allow (a loop, not recursion: a head may
  // hold thousands of lines).
  Step parse_step() {
    std::string_view line;
    for (;;) switch (state_) {
      case State::kHead:
        if (!next_line(line)) return in_.size() - pos_ + head_bytes_ > kMaxHead ? Step::kTooBig : Step::kNeedMore;
        head_bytes_ += line.size() + 2;
        if (head_bytes_ > kMaxHead) return Step::kTooBig;
        if (req_.method.empty()) {
          if (line.empty()) continue;  // blank lines before a request line are ignored
          std::size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
          if (sp1 == std::string_view::npos || sp2 == sp1 || sp1 == 0) return Step::kBad;
          req_.method = line.substr(0, sp1);
          req_.target = trim(line.substr(sp1 + 1, sp2 - sp1 - 1));
          req_.version = line.substr(sp2 + 1);
          if (req_.target.empty()) return Step::kBad;
          continue;
        }
        if (line.empty()) {
          if (Step s = end_of_head(); s != Step::kProceed) return s;
          continue;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !req_.headers.empty()) {  // obs-fold
          req_.headers.back().second += ' ';
          req_.headers.back().second += trim(line);
        } else {
          std::size_t colon = line.find(':');
          if (colon == std::string_view::npos || colon == 0) return Step::kBad;
          req_.headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
        }
        continue;
      case State::kBody:
      case State::kChunkData:
        take_body(remaining_);
        if (remaining_ > 0) return Step::kNeedMore;
        if (state_ == State::kBody) return Step::kComplete;
        state_ = State::kChunkDataEnd;
        continue;
      case State::kChunkDataEnd:
        if (!next_line(line)) return in_.size() - pos_ > 2 ? Step::kBad : Step::kNeedMore;
        if (!line.empty()) return Step::kBad;
        state_ = State::kChunkSize;
        continue;
      case State::kChunkSize: {
        if (!next_line(line)) return in_.size() - pos_ > kMaxChunkLine ? Step::kBad : Step::kNeedMore;
        std::string_view size = trim(line.substr(0, line.find(';')));
        if (size.size() > 15 || !parse_uint(size, remaining_, 16)) return Step::kBad;
        state_ = remaining_ == 0 ? State::kTrailer : State::kChunkData;
        continue;
      }
      case State::kTrailer:  // trailer fields are read and dropped
        if (!next_line(line)) return in_.size() - pos_ > kMaxHead ? Step::kTooBig : Step::kNeedMore;
        if (line.empty()) return Step::kComplete;
        continue;
    }
  }

  // Decides the body framing once the head is complete.
  Step end_of_head() {
    std::string_view connection = req_.header("connection");
    keep_alive_ = req_.version == "HTTP/1.0" ? has_token(connection, "keep-alive") : !has_token(connection, "close");
    store_body_ = req_.path() == "/echo";
    remaining_ = 0;
    std::string_view te = req_.header("transfer-encoding"), cl = req_.header("content-length");
    if (!te.empty() && has_token(te, "chunked")) {
      state_ = State::kChunkSize;
    } else if (!cl.empty()) {
      if (!parse_uint(trim(cl.substr(0, cl.find(','))), remaining_)) return Step::kBad;
      state_ = State::kBody;
    } else {
      return Step::kComplete;
    }
    if (pos_ == in_.size() && has_token(req_.header("expect"), "100-continue") &&
        (state_ == State::kChunkSize || remaining_ > 0))
      return Step::kContinue;
    return Step::kProceed;
  }

  void process() {
    Step step = parse_step();
    if (pos_ == in_.size()) { in_.clear(); pos_ = 0; }
    else if (pos_ > 64 * 1024) { in_.erase(0, pos_); pos_ = 0; }
    switch (step) {
      case Step::kNeedMore: return do_read();
      case Step::kComplete: return dispatch();
      case Step::kContinue: out_ = "HTTP/1.1 100 Continue\r\n\r\n"; return send(After::kParse);
      case Step::kBad: keep_alive_ = false; return respond_json(400, "{\"error\":\"bad request\"}");
      case Step::kTooBig: keep_alive_ = false; return respond_json(431, "{\"error\":\"head too large\"}");
      case Step::kProceed: return;  // not returned by parse_step
    }
  }

  // ---- responses ------------------------------------------------------------------------------
  void begin_response(int status) {
    out_.clear();
    out_ += "HTTP/1.1 ";
    out_ += std::to_string(status);
    out_ += ' ';
    out_ += reason(status);
    out_ += "\r\nX-Backend: ";
    out_ += opts_.name;
    out_ += "\r\nX-Request-Id-Seen: ";
    std::string_view rid = req_.header("x-request-id");
    if (rid.empty()) out_ += '-';
    for (char c : rid) out_ += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    out_ += "\r\n";
    if (!keep_alive_) out_ += "Connection: close\r\n";
    else if (req_.version == "HTTP/1.0") out_ += "Connection: keep-alive\r\n";
  }

  void respond_json(int status, std::string_view body) {
    begin_response(status);
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
      out_ += "\r\n";
    } else {
      out_ += "Content-Type: application/json\r\nContent-Length: ";
      out_ += std::to_string(body.size());
      out_ += "\r\n\r\n";
      if (req_.method != "HEAD") out_ += body;
    }
    send(keep_alive_ ? After::kFinish : After::kClose);
  }

  void dispatch() {
    std::string_view path = req_.path(), query = req_.query();
    if (path == "/echo") return respond_echo();
    if (path == "/delay" || path == "/slowhead") {
      delay_timer_.expires_after(std::chrono::milliseconds(param_uint(query, "ms", 0)));
      return delay_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec) return self->close();
        self->respond_json(200, "{\"ok\":true}");
      });
    }
    if (path == "/stream") return start_stream(query);
    if (path == "/sink") return respond_json(200, "{\"bytes\":" + std::to_string(req_.body_bytes) + "}");
    if (path == "/close") return close();
    if (path == "/garbage") { out_ = "THIS IS NOT HTTP\r\n\r\n"; return send(After::kClose); }
    if (path == "/status") {
      std::uint64_t code = param_uint(query, "code", 200);
      if (code < 100 || code > 999) code = 400;
      return respond_json(static_cast<int>(code), "{\"status\":" + std::to_string(code) + "}");
    }
    if (path == "/partial") {
      keep_alive_ = false;
      begin_response(200);
      out_ += "Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789";
      return send(After::kClose);
    }
    if (path == "/http10") {
      keep_alive_ = false;
      begin_response(200);
      out_.replace(0, 8, "HTTP/1.0");
      out_ += "Content-Type: text/plain\r\n\r\nhttp10 body";  // no Content-Length: the close ends it
      return send(After::kClose);
    }
    if (path == "/headers-big") {
      begin_response(200);
      out_ += "X-Big: ";
      out_.append(std::min<std::uint64_t>(param_uint(query, "bytes", 1024), 64u << 20), 'x');
      out_ += "\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
      return send(keep_alive_ ? After::kFinish : After::kClose);
    }
    if (path == "/ws" && iequals(req_.header("upgrade"), "websocket")) {
      out_ = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: " +
             opts_.name + "\r\n\r\n";
      out_.append(in_, pos_);  // bytes that arrived right behind the request are echoed too
      in_.clear();
      pos_ = 0;
      tunnel_ = true;
      return send(After::kTunnel);
    }
    if (path == "/chunked-trailer") {
      begin_response(200);
      out_ += "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n"
              "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: done\r\n\r\n";
      return send(keep_alive_ ? After::kFinish : After::kClose);
    }
    respond_json(200, "{\"ok\":true}");
  }

  void respond_echo() {
    std::string json = "{\"backend\":";
    lgb::append_json_string(json, opts_.name);
    json += ",\"method\":";
    lgb::append_json_string(json, req_.method);
    json += ",\"target\":";
    lgb::append_json_string(json, req_.target);
    json += ",\"version\":";
    lgb::append_json_string(json, req_.version);
    json += ",\"headers\":[";
    for (std::size_t i = 0; i < req_.headers.size(); ++i) {
      json += i ? ",[" : "[";
      lgb::append_json_string(json, req_.headers[i].first);
      json += ',';
      lgb::append_json_string(json, req_.headers[i].second);
      json += ']';
    }
    json += "],\"body\":";
    lgb::append_json_string(json, req_.body);
    json += ",\"body_bytes\":" + std::to_string(req_.body_bytes) + "}";
    respond_json(200, json);
  }

  void start_stream(std::string_view query) {
    stream_left_ = param_uint(query, "bytes", 0);
    stream_sent_ = 0;
    stream_chunked_ = query_param(query, "chunked") == "1";
    stream_piece_ = std::clamp<std::uint64_t>(param_uint(query, "chunk", 64 * 1024), 1, 16u << 20);
    begin_response(200);
    out_ += "Content-Type: application/octet-stream\r\n";
    if (stream_chunked_) out_ += "Transfer-Encoding: chunked\r\n\r\n";
    else out_ += "Content-Length: " + std::to_string(stream_left_) + "\r\n\r\n";
    if (req_.method == "HEAD") {
      stream_left_ = 0;
      stream_chunked_ = false;
    }
    send(After::kStream);
  }

  void stream_next() {
    if (stream_left_ == 0 && !stream_chunked_) return finish_response();
    out_.clear();
    std::size_t n = static_cast<std::size_t>(std::min(stream_left_, stream_piece_));
    if (n == 0) {  // chunked: the last chunk
      stream_chunked_ = false;
      out_ = "0\r\n\r\n";
      return send(After::kStream);
    }
    if (stream_chunked_) {
      char size[24];
      out_.append(size, static_cast<std::size_t>(std::snprintf(size, sizeof size, "%zx\r\n", n)));
    }
    for (std::size_t i = 0; i < n; ++i) out_ += kPattern[(stream_sent_ + i) % kPattern.size()];
    if (stream_chunked_) out_ += "\r\n";
    stream_sent_ += n;
    stream_left_ -= n;
    send(After::kStream);
  }

  // ---- writing and lifetime -------------------------------------------------------------------
  void send(After after) {
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this(), after](error_code ec, std::size_t) {
      if (ec) return self->close();
      switch (after) {
        case After::kFinish: return self->finish_response();
        case After::kClose: return self->half_close();
        case After::kParse: return self->process();
        case After::kTunnel: return self->do_read();
        case After::kStream: return self->stream_next();
      }
    });
  }

  void finish_response() {
    if (!keep_alive_) return half_close();
    req_ = Request{};
    state_ = State::kHead;
    head_bytes_ = 0;
    process();  // a pipelined request may already be buffered
  }

  // Graceful close: FIN after the response, then drop the socket.
  void half_close() {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    close();
  }

  void close() {
    error_code ec;
    ++idle_gen_;
    idle_timer_.cancel();
    delay_timer_.cancel();
    socket_.close(ec);
  }

  tcp::socket socket_;
  const Options& opts_;
  asio::steady_timer idle_timer_, delay_timer_;
  std::uint64_t idle_gen_ = 0;
  unsigned long seq_;
  std::FILE* record_ = nullptr;
  std::array<char, 64 * 1024> rbuf_;
  std::string in_, out_;
  std::size_t pos_ = 0;  // parse position in in_
  State state_ = State::kHead;
  Request req_;
  std::size_t head_bytes_ = 0;
  std::uint64_t remaining_ = 0;  // body or chunk bytes still to read
  bool keep_alive_ = true, store_body_ = false, tunnel_ = false;
  std::uint64_t stream_left_ = 0, stream_sent_ = 0, stream_piece_ = 0;
  bool stream_chunked_ = false;
};

class Server {
 public:
  Server(asio::io_context& ioc, tcp::acceptor& acceptor, const Options& opts)
      : acceptor_(acceptor), retry_(ioc), opts_(opts) {}

  void do_accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {  // e.g. EMFILE: back off briefly instead of spinning
        retry_.expires_after(std::chrono::milliseconds(20));
        return retry_.async_wait([this](error_code) { do_accept(); });
      }
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Connection>(std::move(socket), opts_)->start();
      do_accept();
    });
  }

 private:
  tcp::acceptor& acceptor_;
  asio::steady_timer retry_;
  const Options& opts_;
};

int usage() {
  std::fprintf(stderr, "usage: lg-backend --listen HOST:PORT [--name NAME] [--record DIR] [--idle-close-ms N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc) return usage();
    std::string_view val = argv[++i];
    std::uint64_t n = 0;
    if (arg == "--listen") {
      std::size_t colon = val.rfind(':');
      if (colon == std::string_view::npos || !parse_uint(val.substr(colon + 1), n) || n > 65535) return usage();
      opts.host = val.substr(0, colon);
      if (opts.host.size() > 2 && opts.host.front() == '[') opts.host = opts.host.substr(1, opts.host.size() - 2);
      opts.port = static_cast<unsigned short>(n);
    } else if (arg == "--name") {
      opts.name = val;
    } else if (arg == "--record") {
      opts.record_dir = val;
    } else if (arg == "--idle-close-ms") {
      if (!parse_uint(val, n)) return usage();
      opts.idle_close_ms = static_cast<long>(n);
    } else {
      return usage();
    }
  }

  asio::io_context ioc(1);
  error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(opts.host, ec), opts.port);
  if (ec) return std::fprintf(stderr, "lg-backend: bad address %s\n", opts.host.c_str()), 2;
  tcp::acceptor acceptor(ioc);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "lg-backend: cannot listen on %s:%u: %s\n", opts.host.c_str(), opts.port, ec.message().c_str());
    return 1;
  }
  unsigned short port = acceptor.local_endpoint(ec).port();
  std::printf("listening %s:%u\n", opts.host.c_str(), port);
  std::fflush(stdout);

  Server server(ioc, acceptor, opts);
  server.do_accept();
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
