// Strict chunked decoder: sizes, extensions, CRLFs, trailers, limits, arbitrary input splits.
#include "http/chunked.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace lg::http;
using namespace std::string_literals;

namespace {

struct Decoded {
  ParseResult::Kind kind = ParseResult::incomplete;
  std::uint16_t status = 0;
  std::string data;
  std::size_t consumed = 0;  // bytes of the input used up
  bool operator==(const Decoded&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Decoded& d) {
  return os << "{kind=" << int(d.kind) << " status=" << d.status << " data=" << d.data.size()
            << "B consumed=" << d.consumed << "}";
}

// Feeds `in` in pieces whose sizes come from `next_size` (0 = all the rest); stops at the first
// non-incomplete result. Unconsumed bytes are kept and fed again with the next piece.
template <typename NextSize>
Decoded decode_with(std::string_view in, ChunkedDecoder::Limits lim, NextSize next_size) {
  ChunkedDecoder dec(lim);
  Decoded d;
  std::string pending;
  std::size_t pos = 0;
  while (pos < in.size() || !pending.empty()) {
    if (pos < in.size()) {
      std::size_t n = next_size();
      if (n == 0 || n > in.size() - pos) n = in.size() - pos;
      pending.append(in.substr(pos, n));
      pos += n;
    }
    while (!pending.empty()) {
      std::size_t consumed = 0;
      std::string_view data;
      ParseResult r = dec.feed(pending, consumed, data);
      REQUIRE(consumed <= pending.size());
      d.data.append(data);
      d.consumed += consumed;
      pending.erase(0, consumed);
      if (r.kind != ParseResult::incomplete) {
        d.kind = r.kind;
        d.status = r.status;
        if (r.kind == ParseResult::complete) {
          CHECK(dec.done());
          CHECK(dec.body_bytes() == d.data.size());
        }
        return d;
      }
      if (consumed == 0) break;  // needs more input
    }
    if (pos >= in.size()) break;
  }
  return d;
}

ChunkedDecoder::Limits default_limits() { return ChunkedDecoder::Limits{}; }

Decoded decode_all(std::string_view in, ChunkedDecoder::Limits lim = default_limits()) {
  return decode_with(in, lim, [] { return std::size_t{0}; });
}

// All at once, one byte at a time and three random splittings must give the same outcome.
Decoded decode(std::string_view in, ChunkedDecoder::Limits lim = default_limits()) {
  Decoded once = decode_all(in, lim);
  Decoded bytewise = decode_with(in, lim, [] { return std::size_t{1}; });
  CHECK(bytewise == once);
  for (unsigned seed = 1; seed <= 3; ++seed) {
    std::mt19937 rng(seed);
    Decoded random = decode_with(
        in, lim, [&] { return std::uniform_int_distribution<std::size_t>(1, 40)(rng); });
    CHECK(random == once);
  }
  return once;
}

std::uint16_t status_of(std::string_view in, ChunkedDecoder::Limits lim = default_limits()) {
  Decoded d = decode(in, lim);
  return d.kind == ParseResult::error ? d.status : 0;
}

}  // namespace

TEST_CASE("chunked: basic decoding", "[http]") {
  Decoded d = decode("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
  CHECK(d.kind == ParseResult::complete);
  CHECK(d.data == "hello world");
  CHECK(d.consumed == std::string_view("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").size());

  Decoded hex = decode("A\r\n0123456789\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0000\r\n\r\n");
  CHECK(hex.kind == ParseResult::complete);
  CHECK(hex.data == "0123456789abcdefghijklmnopqrstuvwxyz");

  Decoded zeros = decode("0005\r\nhello\r\n0\r\n\r\n");
  CHECK(zeros.kind == ParseResult::complete);
  CHECK(zeros.data == "hello");

  Decoded empty = decode("0\r\n\r\n");
  CHECK(empty.kind == ParseResult::complete);
  CHECK(empty.data.empty());

  // Binary data, including CR, LF and NUL, passes untouched.
  const std::string bin("\r\n\0\r\n", 5);
  Decoded b = decode("5\r\n" + bin + "\r\n0\r\n\r\n");
  CHECK(b.data == bin);

  CHECK(decode("5\r\nhel").kind == ParseResult::incomplete);
  CHECK(decode("5\r\nhello\r\n0\r\n").kind == ParseResult::incomplete);
}

TEST_CASE("chunked: data comes back as views into the input, one span per call", "[http]") {
  const std::string payload(1 << 20, 'x');
  const std::string in = "100000\r\n" + payload + "\r\n3\r\nabc\r\n0\r\n\r\n";
  ChunkedDecoder dec;
  std::size_t consumed = 0;
  std::string_view data;
  ParseResult r = dec.feed(in, consumed, data);
  CHECK(r.kind == ParseResult::incomplete);
  CHECK(data.data() == in.data() + 8);  // not copied
  CHECK(data.size() == payload.size());
  CHECK(consumed == 8 + payload.size() + 2 + 3);  // stopped before the next data span
  std::string_view rest = std::string_view(in).substr(consumed);
  r = dec.feed(rest, consumed, data);
  CHECK(r.kind == ParseResult::complete);
  CHECK(data == "abc");
  CHECK(consumed == rest.size());
  CHECK(dec.done());
  CHECK(dec.body_bytes() == payload.size() + 3);

  // After completion nothing more is consumed.
  r = dec.feed("junk", consumed, data);
  CHECK(r.kind == ParseResult::complete);
  CHECK(consumed == 0);
  dec.reset();
  CHECK_FALSE(dec.done());
  CHECK(dec.body_bytes() == 0);
}

TEST_CASE("chunked: chunk-size syntax", "[http]") {
  for (const char* bad :
       {" 5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n", "\r\nhello\r\n0\r\n\r\n", "g\r\n", "5 \r\nhello\r\n0\r\n\r\n",
        "5\t\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n", "5\rhello\r\n0\r\n\r\n",
        "5\r\r\nhello\r\n0\r\n\r\n", ";a\r\n", "5_\r\nhello\r\n0\r\n\r\n"}) {
    INFO(bad);
    CHECK(status_of(bad) == 400);
  }
  CHECK(status_of(std::string(32, '0') + "5\r\n") == 400);  // unbounded leading zeros
  CHECK(status_of(std::string(31, '0') + "5\r\nhello\r\n0\r\n\r\n") == 0);
}

TEST_CASE("chunked: size overflow and body limit", "[http]") {
  CHECK(status_of("ffffffffffffffff\r\nhello\r\n0\r\n\r\n") == 413);
  CHECK(status_of("10000000000000005\r\nhello\r\n0\r\n\r\n") == 413);
  ChunkedDecoder::Limits unlimited;
  unlimited.max_body_bytes = UINT64_MAX;
  // 16 significant digits fit; the 17th overflows whatever the limit.
  CHECK(decode_all("ffffffffffffffff\r\nab", unlimited).kind == ParseResult::incomplete);
  CHECK(status_of("10000000000000005\r\nhello\r\n0\r\n\r\n", unlimited) == 413);
  CHECK(status_of("00000000000000010000000000000005\r\n", unlimited) == 413);

  ChunkedDecoder::Limits small;
  small.max_body_bytes = 10;
  CHECK(status_of("a\r\n0123456789\r\n0\r\n\r\n", small) == 0);
  CHECK(status_of("b\r\n0123456789a\r\n0\r\n\r\n", small) == 413);
  CHECK(status_of("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", small) == 413);
  CHECK(status_of("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", small) == 0);
  // The size is refused before any of its data is read.
  Decoded d = decode_all("5\r\nhello\r\n6\r\n", small);
  CHECK(d.status == 413);
  CHECK(d.data == "hello");
}

TEST_CASE("chunked: extensions", "[http]") {
  for (const char* ok :
       {"5;a\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5 ; a = b ; c\r\nhello\r\n0\r\n\r\n", "5;a=\"q \\\"x\\\" ;=\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\"\r\nhello\r\n0\r\n\r\n",
        "5\t;\ta\t=\t\"\xC3\xA9\"\r\nhello\r\n0;last=1\r\n\r\n"}) {
    INFO(ok);
    Decoded d = decode(ok);
    CHECK(d.kind == ParseResult::complete);
    CHECK(d.data == "hello");
  }
  for (const char* bad :
       {"5;\r\nhello\r\n0\r\n\r\n", "5;a=\r\nhello\r\n0\r\n\r\n", "5;a b\r\nhello\r\n0\r\n\r\n",
        "5;a=b c\r\nhello\r\n0\r\n\r\n", "5;a \r\nhello\r\n0\r\n\r\n",
        "5;a=b \r\nhello\r\n0\r\n\r\n", "5;a=\"open\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", "5;a=b\nhello\r\n0\r\n\r\n",
        "5;a=b\rhello\r\n0\r\n\r\n", "5;a=b\r\r\nhello\r\n0\r\n\r\n",
        "5;a\x01\r\nhello\r\n0\r\n\r\n", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
        "5;(\r\nhello\r\n0\r\n\r\n", "5;a=@\r\nhello\r\n0\r\n\r\n"}) {
    INFO(bad);
    CHECK(status_of(bad) == 400);
  }
  ChunkedDecoder::Limits lim;
  lim.max_ext_bytes = 16;
  CHECK(status_of("5;" + std::string(14, 'a') + "\r\nhello\r\n0\r\n\r\n", lim) == 0);
  CHECK(status_of("5;" + std::string(15, 'a') + "\r\nhello\r\n0\r\n\r\n", lim) == 400);
  // A 100 KiB extension fails as soon as the limit is passed, not at its end.
  Decoded d = decode_all("5;x=" + std::string(100 * 1024, 'a'));
  CHECK(d.status == 400);
  CHECK(d.consumed <= 1 + 4096);
}

TEST_CASE("chunked: CRLF after chunk data", "[http]") {
  CHECK(status_of("5\r\nhelloX\r\n0\r\n\r\n") == 400);
  CHECK(status_of("5\r\nhello\rX0\r\n\r\n") == 400);
  CHECK(status_of("5\r\nhello\n0\r\n\r\n") == 400);
  CHECK(status_of("5\r\nhello0\r\n\r\n") == 400);
  CHECK(status_of("5\r\nhello\r\n\r\n0\r\n\r\n") == 400);
  // The data is delivered before the bad framing is seen; the caller then closes.
  Decoded d = decode_all("5\r\nhelloXY");
  CHECK(d.kind == ParseResult::error);
  CHECK(d.data == "hello");
}

TEST_CASE("chunked: trailer section", "[http]") {
  Decoded t = decode("5\r\nhello\r\n0\r\nContent-Length: 50\r\nX-T:\tv a\r\nEmpty:\r\n\r\nNEXT");
  CHECK(t.kind == ParseResult::complete);
  CHECK(t.data == "hello");  // trailers are dropped
  CHECK(t.consumed == std::string_view("5\r\nhello\r\n0\r\nContent-Length: 50\r\nX-T:\tv a\r\n"
                                       "Empty:\r\n\r\n")
                          .size());
  for (const char* bad :
       {"0\r\n: v\r\n\r\n", "0\r\nX v\r\n\r\n", "0\r\nX : v\r\n\r\n", "0\r\nNoColon\r\n\r\n",
        "0\r\n X: v\r\n\r\n", "0\r\nX: a\r\n b\r\n\r\n", "0\r\nX: a\x01\r\n\r\n",
        "0\r\nX: a\x7f\r\n\r\n", "0\r\nX: a\nY: b\r\n\r\n", "0\r\nX: a\rY: b\r\n\r\n", "0\r\n\n",
        "0\r\n\rX", "0\r\nX\xC3\xA9: v\r\n\r\n"}) {
    INFO(bad);
    CHECK(status_of(bad) == 400);
  }
  CHECK(status_of("0\r\nX: caf\xC3\xA9\r\n\r\n") == 0);
  ChunkedDecoder::Limits lim;
  lim.max_trailer_bytes = 20;
  CHECK(status_of("0\r\nX: 0123456789abc\r\n\r\n", lim) == 0);  // 20 bytes incl. the last CRLF
  CHECK(status_of("0\r\nX: 0123456789abcd\r\n\r\n", lim) == 400);
  Decoded endless = decode_all("0\r\n" + std::string(100000, 'a'));
  CHECK(endless.status == 400);
  CHECK(endless.consumed <= 3 + 8192);
}

TEST_CASE("chunked: random streams survive any split", "[http]") {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::string in, expected;
    const int chunks = std::uniform_int_distribution<int>(0, 6)(rng);
    for (int c = 0; c < chunks; ++c) {
      const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 3000)(rng);
      std::string data(n, '\0');
      for (char& ch : data) ch = static_cast<char>(rng());
      char head[24];
      const std::size_t hl = write_chunk_header(head, n);
      std::string line(head, hl);
      if (rng() % 3 == 0) line.insert(hl - 2, ";ext=\"v\"");
      in += line + data + "\r\n";
      expected += data;
    }
    in += "0\r\n";
    if (rng() % 2) in += "Trailer-Field: value\r\n";
    in += "\r\n";
    INFO("round " << round);
    Decoded d = decode(in + "tail");
    CHECK(d.kind == ParseResult::complete);
    CHECK(d.data == expected);
    CHECK(d.consumed == in.size());
  }
}

TEST_CASE("chunked: write_chunk_header", "[http]") {
  char buf[24];
  auto w = [&](std::size_t n) { return std::string(buf, write_chunk_header(buf, n)); };
  CHECK(w(0) == "0\r\n");
  CHECK(w(1) == "1\r\n");
  CHECK(w(26) == "1a\r\n");
  CHECK(w(255) == "ff\r\n");
  CHECK(w(4096) == "1000\r\n");
  CHECK(w(0xdeadbeef) == "deadbeef\r\n");
  CHECK(w(SIZE_MAX) == "ffffffffffffffff\r\n");
}
