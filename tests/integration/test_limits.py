#!/usr/bin/env python3
"""Protocol limits and client timeouts: 431 (head bytes, field count), 414 (target), 413 (declared
and chunked bodies, per-route override), 408 (head / body timeouts), idle keep-alive close and
400 closing the connection.

One gateway (workers: 1, small limits) in front of one recording lg-backend.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, echo_json, req  # noqa: E402

CONFIG = lgtest.CONFIG_HEAD + """\
limits:
  max_header_bytes: 4k
  max_uri_bytes: 1k
  max_headers: 20
  max_body_bytes: 1k
  client_header_timeout: 1s
  client_body_timeout: 1s
  idle_timeout: 1s
  send_timeout: 1s
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ], timeouts: { connect: 1s, read: 5s } }
routes:
  - { name: big,    match: { path: "/big/*" },    upstream: app, strip_prefix: "/big", max_body_bytes: 64k }
  - { name: nobody, match: { path: "/nobody/*" }, upstream: app, strip_prefix: "/nobody", max_body_bytes: 0 }
  - { name: all,    match: { path: "/*" },        upstream: app }
"""


class LimitsTest(lgtest.AppGatewayMixin, unittest.TestCase):
    CONFIG = CONFIG

    def one(self, data, timeout=3.0):
        """Sends data on a fresh connection; -> (single final response, RawResult)."""
        res = lgtest.raw_exchange(self.gw.port, data, timeout=timeout)
        finals = [r for r in res.responses if r.status >= 200]
        self.assertEqual(len(finals), 1, f"expected one response, got {res.data[:500]!r}")
        return finals[0], res

    def assertUpstreamSawNothing(self, mark, what):
        got = self.app.new_bytes(mark)
        self.assertEqual(got, {}, f"{what}: the upstream received {list(got.values())[:1]!r}")

    def assertErrorBody(self, resp, status):
        import json
        obj = json.loads(resp.body)
        self.assertEqual(obj.get("status"), status, resp.body)
        self.assertTrue(obj.get("request_id"), resp.body)

    # ---- 431 / 414 --------------------------------------------------------------------------
    def test_431_head_over_max_header_bytes(self):
        mark = self.app.mark()
        r, _ = self.one(req("GET", "/echo", extra=b"X-Big: " + b"a" * 5000 + b"\r\n"))
        self.assertEqual(r.status, 431)
        self.assertErrorBody(r, 431)
        self.assertUpstreamSawNothing(mark, "431")

    def test_head_just_under_max_header_bytes_passes(self):
        base = len(req("GET", "/echo", extra=b"X-Big: \r\n"))
        r, _ = self.one(req("GET", "/echo", extra=b"X-Big: " + b"a" * (4096 - base - 64) + b"\r\n"))
        self.assertEqual(r.status, 200)

    def test_431_more_than_max_headers_fields(self):
        extra = b"".join(b"X-F%d: v\r\n" % i for i in range(21))  # + Host = 22 fields
        mark = self.app.mark()
        r, _ = self.one(req("GET", "/echo", extra=extra))
        self.assertEqual(r.status, 431)
        self.assertUpstreamSawNothing(mark, "431 (fields)")
        extra = b"".join(b"X-F%d: v\r\n" % i for i in range(19))  # + Host = 20 fields: allowed
        r, _ = self.one(req("GET", "/echo", extra=extra))
        self.assertEqual(r.status, 200)

    def test_414_long_target(self):
        mark = self.app.mark()
        r, _ = self.one(req("GET", "/echo?q=" + "a" * 1100))
        self.assertEqual(r.status, 414)
        self.assertErrorBody(r, 414)
        self.assertUpstreamSawNothing(mark, "414")
        r, _ = self.one(req("GET", "/echo?q=" + "a" * 900))
        self.assertEqual(r.status, 200)

    # ---- 413 ----------------------------------------------------------------------------------
    def test_413_content_length_answered_before_body(self):
        mark = self.app.mark()
        with RawConn(self.gw.port) as c:
            c.send(req("POST", "/echo", extra=b"Content-Length: 2000\r\n"))  # head only, no body
            r = c.read_response(timeout=2.0)
            self.assertEqual(r.status, 413)
            self.assertErrorBody(r, 413)
            self.assertTrue(c.is_closed_by_peer(wait=3.0),
                            "after a 413 for an unread body the connection must close")
        self.assertUpstreamSawNothing(mark, "413 (Content-Length)")

    def test_413_with_expect_100_continue_gets_no_100(self):
        with RawConn(self.gw.port) as c:
            c.send(req("POST", "/echo", extra=b"Expect: 100-continue\r\nContent-Length: 5000\r\n"))
            r = c.read_response(timeout=2.0, allow_interim=True)
            self.assertEqual(r.status, 413, "a body over the limit must not be invited with 100 Continue")

    def test_content_length_at_limit_passes(self):
        body = b"b" * 1024
        r, _ = self.one(req("POST", "/echo", extra=b"Content-Length: 1024\r\n", body=body))
        self.assertEqual(r.status, 200)
        self.assertEqual(echo_json(r.body)["body_bytes"], 1024)

    def test_body_limit_boundaries(self):
        r, _ = self.one(req("POST", "/echo", extra=b"Content-Length: 1025\r\n", body=b"b" * 1025))
        self.assertEqual(r.status, 413, "1025 bytes > max_body_bytes 1k")
        exact = b"400\r\n" + b"c" * 1024 + b"\r\n0\r\n\r\n"
        r, _ = self.one(req("POST", "/echo", extra=b"Transfer-Encoding: chunked\r\n", body=exact))
        self.assertEqual(r.status, 200, "a chunked body of exactly max_body_bytes is allowed")
        self.assertEqual(echo_json(r.body)["body_bytes"], 1024)
        over = b"200\r\n" + b"c" * 512 + b"\r\n201\r\n" + b"c" * 513 + b"\r\n0\r\n\r\n"
        r, _ = self.one(req("POST", "/echo", extra=b"Transfer-Encoding: chunked\r\n", body=over))
        self.assertEqual(r.status, 413, "a chunked body of 1025 bytes")

    def test_header_count_and_uri_boundaries(self):
        extra = b"".join(b"X-F%d: v\r\n" % i for i in range(20))  # + Host = 21 fields
        r, _ = self.one(req("GET", "/echo", extra=extra))
        self.assertEqual(r.status, 431, "21 field lines > max_headers 20")
        base = "/echo?q="
        r, _ = self.one(req("GET", base + "a" * (1024 - len(base))))
        self.assertEqual(r.status, 200, "a target of exactly max_uri_bytes is allowed")
        r, _ = self.one(req("GET", base + "a" * (1025 - len(base))))
        self.assertEqual(r.status, 414, "a target of max_uri_bytes + 1")

    def test_413_chunked_body_over_limit(self):
        chunk = b"%x\r\n%s\r\n" % (600, b"c" * 600)
        body = chunk + chunk + b"0\r\n\r\n"
        r, res = self.one(req("POST", "/echo", extra=b"Transfer-Encoding: chunked\r\n", body=body))
        self.assertEqual(r.status, 413)
        # the upstream must not have answered a complete over-limit request
        for rec in self.app.new_requests():
            if rec.target == "/echo" and rec.method == "POST" and rec.complete:
                self.assertLessEqual(len(rec.body), 1024, "an over-limit chunked body reached the upstream whole")

    def test_route_override_max_body_bytes(self):
        body = b"x" * 2000
        r, _ = self.one(req("POST", "/big/echo", extra=b"Content-Length: 2000\r\n", body=body))
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertEqual(echo_json(r.body)["body_bytes"], 2000)
        chunked = b"7d0\r\n" + body + b"\r\n0\r\n\r\n"
        r, _ = self.one(req("POST", "/big/echo", extra=b"Transfer-Encoding: chunked\r\n", body=chunked))
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertEqual(echo_json(r.body)["body_bytes"], 2000)
        r, _ = self.one(req("POST", "/big/echo", extra=b"Content-Length: 70000\r\n"))
        self.assertEqual(r.status, 413)
        # max_body_bytes: 0 -> no body at all; a bodiless request still passes
        r, _ = self.one(req("POST", "/nobody/echo", extra=b"Content-Length: 1\r\n", body=b"x"))
        self.assertEqual(r.status, 413)
        r, _ = self.one(req("GET", "/nobody/echo"))
        self.assertEqual(r.status, 200)
        r, _ = self.one(req("POST", "/nobody/echo", extra=b"Content-Length: 0\r\n"))
        self.assertEqual(r.status, 200)

    # ---- 408 ----------------------------------------------------------------------------------
    def test_408_head_timeout_closes(self):
        mark = self.app.mark()
        with RawConn(self.gw.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\nHost: gw.test\r\n")  # half a head
            t0 = time.monotonic()
            r = c.read_response(timeout=4.0)
            elapsed = time.monotonic() - t0
            self.assertEqual(r.status, 408)
            self.assertGreater(elapsed, 0.7, "408 came before client_header_timeout (1s)")
            self.assertLess(elapsed, 2.5, "408 came long after client_header_timeout (1s)")
            self.assertTrue(c.is_closed_by_peer(wait=3.0), "connection must be closed after a 408")
        self.assertUpstreamSawNothing(mark, "408")

    def test_408_head_timeout_counts_from_first_byte_despite_trickle(self):
        # dribbling bytes must not extend the head deadline
        with RawConn(self.gw.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\n")
            t0 = time.monotonic()
            got = None
            for i in range(30):
                if time.monotonic() - t0 > 3.0:
                    break
                try:
                    c.send(b"X-T%d: v\r\n" % i)
                except OSError:
                    break
                c.sock.settimeout(0.1)
                try:
                    data = c.sock.recv(4096)
                    c.buf += data
                    if not data or b"\r\n\r\n" in c.buf:
                        got = time.monotonic() - t0
                        break
                except socket.timeout:
                    pass
            self.assertIsNotNone(got, "no answer while the head trickled in for 3 s")
            self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"), c.buf[:100])
            self.assertLess(got, 2.5)

    def test_408_for_partial_second_request_on_keep_alive(self):
        # once a request has begun on a kept-alive connection, the header timeout (408) applies,
        # not a silent idle close
        with RawConn(self.gw.port) as c:
            c.send(req("GET", "/echo"))
            self.assertEqual(c.read_response().status, 200)
            time.sleep(0.5)
            c.send(b"GET /echo HTTP/1.1\r\nHost: gw")
            t0 = time.monotonic()
            try:
                r = c.read_response(timeout=4.0)
            except ConnectionError:
                self.fail("connection closed silently instead of answering 408 to a partial request")
            self.assertEqual(r.status, 408)
            self.assertGreater(time.monotonic() - t0, 0.7, "the partial head got less than client_header_timeout")

    def test_408_body_timeout(self):
        with RawConn(self.gw.port) as c:
            c.send(req("POST", "/echo", extra=b"Content-Length: 10\r\n", body=b"12345"))
            t0 = time.monotonic()
            r = c.read_response(timeout=8.0)
            # the upstream may already have the head: the gateway answers 408 (or 504/502 if it
            # gives up on the upstream side first would be wrong: the client is the slow party)
            self.assertEqual(r.status, 408, r.body[:200])
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertTrue(c.is_closed_by_peer(wait=3.0))

    # ---- idle keep-alive ----------------------------------------------------------------------
    def test_idle_keep_alive_closed_after_idle_timeout(self):
        with RawConn(self.gw.port) as c:
            c.send(req("GET", "/echo"))
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            self.assertFalse(c.is_closed_by_peer(wait=0.6), "closed well before idle_timeout (1s)")
            self.assertTrue(c.is_closed_by_peer(wait=2.5), "idle connection still open 3 s after a 1s idle_timeout")
            self.assertEqual(c.buf, b"", "an idle close should be silent (no 408 for an idle connection)")
            self.assertLess(time.monotonic() - t0, 3.2)

    def test_active_keep_alive_survives_past_idle_timeout(self):
        with RawConn(self.gw.port) as c:
            for i in range(4):  # 4 x 0.5 s = 2 s > idle_timeout, but never idle for 1 s
                c.send(req("GET", f"/echo?i={i}"))
                self.assertEqual(c.read_response().status, 200)
                time.sleep(0.5)
            c.send(req("GET", "/echo?last=1"))
            self.assertEqual(c.read_response().status, 200)

    # ---- send_timeout ---------------------------------------------------------------------------
    def test_send_timeout_closes_a_client_that_stops_reading(self):
        total = 64 << 20
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        s.connect(("127.0.0.1", self.gw.port))
        try:
            s.sendall(req("GET", "/stream?bytes=%d" % total))
            time.sleep(3.0)  # send_timeout is 1s: the gateway must give up on us meanwhile
            got, closed = 0, False
            s.settimeout(2.0)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(1 << 20)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                got += len(chunk)
            self.assertTrue(closed, f"connection still open after a stalled reader ({got} bytes read)")
            self.assertLess(got, total, "the whole body was delivered although the client stalled")
        finally:
            s.close()
        self.assertTrue(self.gw.alive())
        self.assertEqual(lgtest.http(self.gw.port, "GET", "/echo")[0], 200)

    # ---- 400 ----------------------------------------------------------------------------------
    def test_400_malformed_closes_connection(self):
        mark = self.app.mark()
        bad = b"GET /echo HTTP/1.1\r\nHost: gw.test\r\nBad Header Line\r\n\r\n"
        follow = req("GET", "/echo?after-bad=1")
        with RawConn(self.gw.port) as c:
            c.send(bad + follow)
            r = c.read_response(timeout=3.0)
            self.assertEqual(r.status, 400)
            self.assertErrorBody(r, 400)
            self.assertTrue(c.is_closed_by_peer(wait=3.0), "400 must close the connection")
            self.assertEqual(c.buf, b"", f"the pipelined request after a 400 was answered: {c.buf[:200]!r}")
        self.assertUpstreamSawNothing(mark, "400 + pipelined follower")

    def test_400_variants(self):
        cases = {
            "space before colon": b"GET /echo HTTP/1.1\r\nHost : gw.test\r\n\r\n",
            "bad version": b"GET /echo HTTP/1.x\r\nHost: gw.test\r\n\r\n",
            "CL and TE": b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two CL": b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "no host": b"GET /echo HTTP/1.1\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r, res = self.one(data)
                self.assertEqual(r.status, 400, f"{name}: {r.body[:200]!r}")
                self.assertTrue(res.closed, f"{name}: connection left open after 400")

    def test_zz_no_connection_leak(self):
        # runs last (alphabetical order): every connection the other tests opened is closed
        lgtest.assert_no_connection_leak(self, self.gw.admin_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
