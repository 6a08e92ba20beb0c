// Micro-benchmark of the HTTP/1.1 parsers: a typical request head (as sent by wrk / h2load with a
// few headers) and the chunked decoder on a 1 MiB body. Prints ns/op and throughput.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "http/chunked.hpp"
#include "http/request_parser.hpp"
#include "http/response_parser.hpp"

using namespace lg::http;
using Clock = std::chrono::steady_clock;

namespace {

// Keeps the optimiser from discarding results.
template <typename T>
void sink(const T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

const std::string kRequest =
    "GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: wrk/4.2.0 (Linux x86_64)\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Connection: keep-alive\r\n"
    "X-Request-Id: 5f0c6a3e-8a1b-4c2d-9e3f-112233445566\r\n"
    "\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: backend\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 512\r\n"
    "Cache-Control: no-cache\r\n"
    "\r\n";

void bench_request(int iters) {
  RequestLimits limits;
  std::vector<Header> headers;
  headers.reserve(limits.max_headers);
  RequestHead head;
  head.headers = &headers;
  int failures = 0;
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      HeadScan scan;
      ParseResult r = parse_request_head(kRequest, limits, scan, head);
      failures += r.kind != ParseResult::complete;
      sink(head);
    }
  };
  run(iters / 10);  // warm-up
  const auto t0 = Clock::now();
  run(iters);
  const double s = seconds_since(t0);
  std::printf("request head   (%zu B, %zu fields): %8.1f ns/op  %7.0f MB/s  %s\n", kRequest.size(),
              headers.size(), s * 1e9 / iters, kRequest.size() * double(iters) / s / 1e6,
              failures ? "FAILED" : "ok");
}

void bench_request_incremental(int iters) {
  // The same head arriving in 4 reads: measures the resumable scan.
  RequestLimits limits;
  std::vector<Header> headers;
  headers.reserve(limits.max_headers);
  RequestHead head;
  head.headers = &headers;
  int failures = 0;
  const std::size_t cuts[] = {40, 120, 200, kRequest.size()};
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    HeadScan scan;
    ParseResult r = ParseResult::more();
    for (std::size_t cut : cuts)
      r = parse_request_head(std::string_view(kRequest).substr(0, cut), limits, scan, head);
    failures += r.kind != ParseResult::complete;
    sink(head);
  }
  const double s = seconds_since(t0);
  std::printf("request head in 4 reads:             %8.1f ns/op            %s\n", s * 1e9 / iters,
              failures ? "FAILED" : "ok");
}

void bench_response(int iters) {
  std::vector<Header> headers;
  headers.reserve(100);
  ResponseHead head;
  head.headers = &headers;
  int failures = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    HeadScan scan;
    ParseResult r = parse_response_head(kResponse, 64 * 1024, 100, false, scan, head);
    failures += r.kind != ParseResult::complete;
    sink(head);
  }
  const double s = seconds_since(t0);
  std::printf("response head  (%zu B, %zu fields): %8.1f ns/op            %s\n", kResponse.size(),
              headers.size(), s * 1e9 / iters, failures ? "FAILED" : "ok");
}

std::string make_chunked(std::size_t total, std::size_t chunk) {
  std::string out;
  out.reserve(total + total / chunk * 16 + 16);
  char line[24];
  for (std::size_t done = 0; done < total; done += chunk) {
    const std::size_t n = std::min(chunk, total - done);
    out.append(line, write_chunk_header(line, n));
    out.append(n, 'x');
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

void bench_chunked(std::size_t chunk, int iters) {
  const std::size_t total = 1 << 20;
  const std::string body = make_chunked(total, chunk);
  ChunkedDecoder::Limits limits;
  limits.max_body_bytes = 1 << 30;
  int failures = 0;
  std::uint64_t bytes = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    ChunkedDecoder dec(limits);
    std::string_view in = body;
    ParseResult r = ParseResult::more();
    while (!in.empty()) {
      std::size_t consumed = 0;
      std::string_view data;
      r = dec.feed(in, consumed, data);
      bytes += data.size();
      sink(data);
      in.remove_prefix(consumed);
      if (r.kind != ParseResult::incomplete) break;
    }
    failures += r.kind != ParseResult::complete;
  }
  const double s = seconds_since(t0);
  std::printf("chunked 1 MiB in %6zu B chunks:     %8.1f us/body %8.0f MB/s  %s\n", chunk,
              s * 1e6 / iters, double(bytes) / s / 1e6,
              failures || bytes != std::uint64_t(total) * iters ? "FAILED" : "ok");
}

}  // namespace

int main() {
  bench_request(1'000'000);
  bench_request_incremental(1'000'000);
  bench_response(1'000'000);
  bench_chunked(16 * 1024, 2000);
  bench_chunked(1024, 500);
  bench_chunked(64, 100);
  return 0;
}
