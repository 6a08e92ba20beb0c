#!/usr/bin/env python3
"""HTTP/1.1 proxying through the real gateway: keep-alive and upstream connection reuse,
pipelining, request body framings, response re-framing (chunked / close-delimited / HTTP/1.0
upstream), Expect: 100-continue, HTTP/1.0 clients, bodiless responses, hop-by-hop header removal,
X-Forwarded-*, Host handling, X-Request-ID and traceparent.

One gateway (workers: 1) in front of one recording lg-backend serves every test.
"""
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, echo_json, echo_header, echo_header_all, get, header, header_all  # noqa: E402

CONFIG = lgtest.CONFIG_HEAD + """\
limits: { client_header_timeout: 5s, idle_timeout: 30s }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ], timeouts: { connect: 1s, read: 5s } }
routes:
  - { name: nohost, match: { path: "/nohost/echo" }, upstream: app, rewrite: "/echo", preserve_host: false }
  - { name: all,    match: { path: "/*" },           upstream: app }
"""

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
PATTERN = b"0123456789abcdef"


def pattern(n):
    return (PATTERN * (n // 16 + 1))[:n]


class ProxyHttpTest(lgtest.AppGatewayMixin, unittest.TestCase):
    CONFIG = CONFIG

    def echo(self, headers=None, method="GET", path="/echo", body=None):
        status, h, data = lgtest.http(self.gw.port, method, path, headers=headers or {}, body=body)
        self.assertEqual(status, 200, data[:300])
        return h, echo_json(data)

    # ---- connections ----------------------------------------------------------------------
    def test_keep_alive_reuses_client_and_upstream_connection(self):
        # prime the pool, then check that three requests on one client connection use one
        # upstream connection (the backend records each connection in its own file)
        with RawConn(self.gw.port) as c:
            c.send(get("/echo?prime=1"))
            self.assertEqual(c.read_response().status, 200)
            mark = self.app.mark()
            for i in range(3):
                c.send(get(f"/echo?i={i}"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(echo_json(r.body)["target"], f"/echo?i={i}")
                self.assertNotEqual((header(r.headers, "connection") or "").lower(), "close")
            self.assertFalse(c.closed)
        reqs = self.app.new_requests(mark, with_paths=True)
        self.assertEqual([r.target for _, r in reqs], ["/echo?i=0", "/echo?i=1", "/echo?i=2"])
        self.assertEqual(len({p for p, _ in reqs}), 1,
                         f"expected one pooled upstream connection, got {sorted({p for p, _ in reqs})}")

    def test_pipelining_three_requests_answered_in_order(self):
        data = (get("/delay?ms=200") + get("/echo?second=1") + get("/stream?bytes=10"))
        with RawConn(self.gw.port) as c:
            c.send(data)
            r1, r2, r3 = (c.read_response(timeout=5) for _ in range(3))
        self.assertEqual([r1.status, r2.status, r3.status], [200, 200, 200])
        self.assertEqual(r1.body, b'{"ok":true}')
        self.assertEqual(echo_json(r2.body)["target"], "/echo?second=1")
        self.assertEqual(r3.body, pattern(10))

    def test_pipelining_mixed_bodies_and_head(self):
        data = (b"POST /echo?p=1 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n\r\nabcde"
                + b"HEAD /stream?bytes=300 HTTP/1.1\r\nHost: gw.test\r\n\r\n"
                + b"POST /echo?p=3 HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nxyz\r\n0\r\n\r\n"
                + get("/echo?p=4"))
        with RawConn(self.gw.port) as c:
            c.send(data)
            r1 = c.read_response()
            r2 = c.read_response(method="HEAD")
            r3 = c.read_response()
            r4 = c.read_response()
        self.assertEqual([r.status for r in (r1, r2, r3, r4)], [200] * 4)
        e1, e3, e4 = echo_json(r1.body), echo_json(r3.body), echo_json(r4.body)
        self.assertEqual((e1["target"], e1["body"]), ("/echo?p=1", "abcde"))
        self.assertEqual(r2.body, b"")
        self.assertEqual((e3["target"], e3["body"]), ("/echo?p=3", "xyz"))
        self.assertEqual((e4["target"], e4["body"]), ("/echo?p=4", ""))

    def test_pipelining_bound_max_pipelined(self):
        # docs/config.md: the request that reaches limits.max_pipelined (16) is answered with
        # Connection: close; later ones are dropped with the connection
        n = 40
        data = b"".join(get(f"/echo?n={i}") for i in range(n))
        res = lgtest.raw_exchange(self.gw.port, data, timeout=2)
        rs = res.responses
        self.assertTrue(res.closed)
        self.assertIn(len(rs), (16, 17), f"{len(rs)} responses")
        self.assertEqual([echo_json(r.body)["target"] for r in rs], [f"/echo?n={i}" for i in range(len(rs))])
        self.assertEqual((header(rs[-1].headers, "connection") or "").lower(), "close")

    def test_pipelined_batches_below_the_bound_go_on(self):
        # the bound is on requests queued ahead, not on requests per connection
        with RawConn(self.gw.port) as c:
            for batch in range(4):
                c.send(b"".join(get(f"/echo?b={batch}&i={i}") for i in range(10)))
                for i in range(10):
                    r = c.read_response(timeout=5)
                    self.assertEqual(echo_json(r.body)["target"], f"/echo?b={batch}&i={i}")
                    self.assertNotEqual((header(r.headers, "connection") or "").lower(), "close",
                                        f"batch {batch} request {i}: connection closed below the bound")

    def test_pipelining_with_local_error_in_the_middle(self):
        data = get("/echo?a=1") + b"GET /%2f HTTP/1.1\r\nHost: gw.test\r\n\r\n" + get("/echo?a=3")
        with RawConn(self.gw.port) as c:
            c.send(get("/echo?a=0") + b"OPTIONS * HTTP/1.1\r\nHost: gw.test\r\n\r\n" + get("/echo?a=2"))
            r0 = c.read_response()
            r1 = c.read_response()
            self.assertEqual(r0.status, 200)
            self.assertIn(r1.status, (400, 404, 405, 501))
            if r1.status != 400:  # a non-fatal local answer: the next request is served
                r2 = c.read_response()
                self.assertEqual(echo_json(r2.body)["target"], "/echo?a=2")
        del data

    def test_pipelined_body_behind_a_slow_request(self):
        body = bytes(range(65, 91)) * 40330  # ~1 MiB of A..Z
        data = get("/delay?ms=300") + (b"POST /echo?big=1 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: %d\r\n\r\n"
                                       % len(body)) + body + get("/echo?last=1")
        with RawConn(self.gw.port, timeout=10) as c:
            import threading
            t = threading.Thread(target=c.send, args=(data,))
            t.start()  # the send may block on backpressure while the first request is slow
            r1 = c.read_response(timeout=10)
            r2 = c.read_response(timeout=10)
            r3 = c.read_response(timeout=10)
            t.join(timeout=10)
        self.assertEqual((r1.status, r1.body), (200, b'{"ok":true}'))
        e2 = echo_json(r2.body)
        self.assertEqual((e2["target"], e2["body_bytes"]), ("/echo?big=1", len(body)))
        self.assertTrue(e2["body"].encode() == body, "pipelined body corrupted")
        self.assertEqual(echo_json(r3.body)["target"], "/echo?last=1")

    def test_pipelined_after_upstream_errors(self):
        data = get("/garbage") + get("/echo?e=1") + get("/close") + get("/echo?e=2")
        with RawConn(self.gw.port) as c:
            c.send(data)
            r1 = c.read_response()
            self.assertEqual(r1.status, 502)
            if (header(r1.headers, "connection") or "").lower() == "close":
                return  # closing after a 502 is allowed; then nothing else may follow
            r2 = c.read_response()
            self.assertEqual(echo_json(r2.body)["target"], "/echo?e=1")
            r3 = c.read_response()
            self.assertEqual(r3.status, 502)
            if (header(r3.headers, "connection") or "").lower() == "close":
                return
            r4 = c.read_response()
            self.assertEqual(echo_json(r4.body)["target"], "/echo?e=2")

    def test_pipelined_connection_close_stops_there(self):
        data = get("/echo?p=1") + get("/echo?p=2", extra=b"Connection: close\r\n") + get("/echo?p=3")
        res = lgtest.raw_exchange(self.gw.port, data, timeout=2)
        rs = res.responses
        self.assertEqual([echo_json(r.body)["target"] for r in rs], ["/echo?p=1", "/echo?p=2"])
        self.assertTrue(res.closed)
        self.assertEqual((header(rs[1].headers, "connection") or "").lower(), "close")

    def test_many_concurrent_connections(self):
        import threading
        errors = []

        def client(k):
            try:
                with RawConn(self.gw.port, timeout=10) as c:
                    for i in range(5):
                        c.send(get(f"/echo?k={k}&i={i}"))
                        r = c.read_response(timeout=10)
                        if r.status != 200 or echo_json(r.body)["target"] != f"/echo?k={k}&i={i}":
                            raise AssertionError(f"{r.status} {r.body[:100]!r}")
            except Exception as e:  # noqa: BLE001
                errors.append(f"client {k}: {e!r}")
        threads = [threading.Thread(target=client, args=(k,)) for k in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])

    # ---- request bodies -------------------------------------------------------------------
    def test_content_length_body_reaches_upstream_intact(self):
        body = bytes(range(32, 127)) * 50  # 4750 bytes of printable ASCII
        h, e = self.echo(method="POST", body=body, headers={"Content-Type": "text/plain"})
        self.assertEqual(e["body"].encode("latin-1"), body)
        self.assertEqual(e["body_bytes"], len(body))
        self.assertEqual(echo_header(e, "content-length"), str(len(body)))
        self.assertIsNone(echo_header(e, "transfer-encoding"))

    def test_chunked_body_reaches_upstream_intact(self):
        parts = [b"hello ", b"chunked ", b"x" * 3000, b" world"]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        req = (b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: text/plain\r\n\r\n")
        with RawConn(self.gw.port) as c:
            c.send(req)
            for i in range(0, 70, 7):  # dribble the first chunks in small pieces
                c.send(body[i:i + 7])
                time.sleep(0.01)
            c.send(body[70:])
            r = c.read_response()
        self.assertEqual(r.status, 200, r.body[:300])
        e = echo_json(r.body)
        self.assertEqual(e["body"].encode(), b"".join(parts))
        self.assertEqual(e["body_bytes"], sum(map(len, parts)))
        # re-framed upstream: either chunked or a Content-Length, never both
        te, cl = echo_header(e, "transfer-encoding"), echo_header(e, "content-length")
        self.assertTrue((te and "chunked" in te.lower()) != (cl is not None), f"te={te!r} cl={cl!r}")

    def test_chunked_body_with_extensions_and_trailers(self):
        body = (b"4;name=value\r\nWiki\r\n5;x\r\npedia\r\n0\r\nX-Trailer-A: 1\r\nX-Trailer-B: 2\r\n\r\n")
        with RawConn(self.gw.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            r = c.read_response()
            self.assertEqual(r.status, 200, r.body[:200])
            self.assertEqual(echo_json(r.body)["body"], "Wikipedia")
            c.send(get("/echo?after-trailers=1"))
            r2 = c.read_response()
            self.assertEqual(echo_json(r2.body)["target"], "/echo?after-trailers=1",
                             "trailer bytes leaked into the next request")

    def test_get_with_body_and_empty_post(self):
        with RawConn(self.gw.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\n\r\nbody")
            e = echo_json(c.read_response().body)
            self.assertEqual((e["method"], e["body"]), ("GET", "body"))
            c.send(b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n\r\n")
            e = echo_json(c.read_response().body)
            self.assertEqual((e["method"], e["body"], e["body_bytes"]), ("POST", "", 0))
            c.send(b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            e = echo_json(c.read_response().body)
            self.assertEqual((e["method"], e["body_bytes"]), ("POST", 0))

    # ---- response framing -----------------------------------------------------------------
    def test_chunked_response_rechunked_for_http11_client(self):
        n = 200_000
        with RawConn(self.gw.port) as c:
            c.send(get(f"/stream?bytes={n}&chunked=1&chunk=5000"))
            r = c.read_response(timeout=10)
            self.assertEqual(r.status, 200)
            self.assertIn("chunked", (header(r.headers, "transfer-encoding") or "").lower())
            self.assertIsNone(header(r.headers, "content-length"))
            self.assertEqual(r.body, pattern(n))
            # the connection is still usable afterwards
            c.send(get("/echo?after=1"))
            self.assertEqual(c.read_response().status, 200)

    def test_chunked_response_close_delimited_for_http10_client(self):
        # Repeated: the upstream's last chunk sometimes arrives in a read of its own, and the
        # gateway must still end (close) the 1.0 response at once, not at timeouts.read (5 s).
        for i, n in enumerate([100_000, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 100_000, 5, 5, 5]):
            res = lgtest.raw_exchange(self.gw.port, get(f"/stream?bytes={n}&chunked=1", version=b"HTTP/1.0"),
                                      timeout=1.5)
            head, _, body = res.data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1."), head[:100])
            self.assertIn(b" 200 ", head.split(b"\r\n")[0])
            self.assertNotIn(b"transfer-encoding", head.lower(), "1.0 clients don't understand chunked")
            self.assertEqual(body, pattern(n), f"attempt {i}")
            self.assertTrue(res.closed, f"attempt {i} (bytes={n}): all body bytes arrived but the gateway did "
                                        "not close the close-delimited response to the 1.0 client within 1.5 s")

    def test_http10_upstream_rechunked_for_http11_client(self):
        with RawConn(self.gw.port) as c:
            c.send(get("/http10"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"http10 body")
            te = (header(r.headers, "transfer-encoding") or "").lower()
            self.assertTrue("chunked" in te or header(r.headers, "content-length") == "11",
                            f"response to a 1.1 client must be length-delimited, headers: {r.headers}")
            self.assertNotEqual((header(r.headers, "connection") or "").lower(), "close",
                                "the upstream's Connection: close is hop-by-hop")
            c.send(get("/echo?after-http10=1"))
            r2 = c.read_response()
            self.assertEqual(r2.status, 200)
            self.assertEqual(echo_json(r2.body)["target"], "/echo?after-http10=1")

    def test_chunked_trailer_response_body(self):
        with RawConn(self.gw.port) as c:
            c.send(get("/chunked-trailer"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"hello world"))
            c.send(get("/echo?after-trailer=1"))
            self.assertEqual(c.read_response().status, 200)

    # ---- Expect: 100-continue -------------------------------------------------------------
    def test_expect_100_continue(self):
        body = b"continued-body"
        head = (b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nContent-Type: text/plain\r\n"
                b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        with RawConn(self.gw.port) as c:
            c.send(head)
            t0 = time.monotonic()
            interim = c.read_response(timeout=1.0, allow_interim=True)
            self.assertEqual(interim.status, 100, "expected 100 Continue before the body is sent")
            self.assertLess(time.monotonic() - t0, 1.0)
            c.send(body)
            r = c.read_response()
        self.assertEqual(r.status, 200)
        e = echo_json(r.body)
        self.assertEqual(e["body"], body.decode())
        self.assertIsNone(echo_header(e, "expect"), "Expect is hop-by-hop for the gateway")

    def test_unknown_expectation_417(self):
        res = lgtest.raw_exchange(self.gw.port, b"POST /echo HTTP/1.1\r\nHost: gw.test\r\nExpect: teapot\r\n"
                                                b"Content-Length: 2\r\n\r\nhi", timeout=2, read_until_close=False)
        self.assertEqual([r.status for r in res.responses], [417])

    def test_expect_100_from_http10_client_gets_no_100(self):
        with RawConn(self.gw.port) as c:
            c.send(b"POST /echo HTTP/1.0\r\nHost: gw.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            time.sleep(0.5)
            self.assertFalse(c.buf.startswith(b"HTTP/1.1 100"), "a 1.0 client must not get 100 Continue")
            c.send(b"hi")
            r = c.read_response(allow_interim=True)
            self.assertEqual(r.status, 200)
            self.assertEqual(echo_json(r.body)["body"], "hi")

    # ---- HTTP/1.0 clients -----------------------------------------------------------------
    def test_http10_client_without_keep_alive_is_closed(self):
        res = lgtest.raw_exchange(self.gw.port, get("/echo", version=b"HTTP/1.0"), timeout=3)
        self.assertTrue(res.closed)
        rs = res.responses
        self.assertEqual(len(rs), 1)
        self.assertEqual(rs[0].status, 200)
        self.assertEqual(echo_json(rs[0].body)["target"], "/echo")

    def test_http10_client_with_keep_alive(self):
        with RawConn(self.gw.port) as c:
            for i in range(2):
                c.send(get(f"/echo?ka={i}", version=b"HTTP/1.0", extra=b"Connection: keep-alive\r\n"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(echo_json(r.body)["target"], f"/echo?ka={i}")
                self.assertEqual((header(r.headers, "connection") or "").lower(), "keep-alive")
                self.assertIsNotNone(header(r.headers, "content-length"),
                                     "a kept-alive 1.0 response needs Content-Length")
            self.assertFalse(c.is_closed_by_peer(wait=0.3))

    def test_http10_keep_alive_client_with_unknown_length_response(self):
        # chunked can't go to a 1.0 client: the gateway must fall back to a close-delimited body
        # (and then not promise keep-alive)
        for path in ("/stream?bytes=5000&chunked=1", "/http10"):
            with self.subTest(path=path):
                res = lgtest.raw_exchange(self.gw.port, get(path, version=b"HTTP/1.0",
                                                            extra=b"Connection: keep-alive\r\n"), timeout=2)
                head, _, body = res.data.partition(b"\r\n\r\n")
                lower = head.lower()
                self.assertNotIn(b"transfer-encoding", lower)
                if b"content-length" not in lower:
                    self.assertNotIn(b"connection: keep-alive", lower,
                                     "keep-alive promised on a close-delimited 1.0 response")
                    self.assertTrue(res.closed)
                want = pattern(5000) if path.startswith("/stream") else b"http10 body"
                self.assertEqual(body, want)

    # ---- bodiless responses ---------------------------------------------------------------
    def test_head_has_no_body(self):
        with RawConn(self.gw.port) as c:
            c.send(b"HEAD /stream?bytes=5000 HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            r = c.read_response(method="HEAD")
            self.assertEqual(r.status, 200)
            time.sleep(0.2)
            c.send(get("/echo?after-head=1"))
            r2 = c.read_response()
            self.assertEqual(r2.status, 200, "bytes after the HEAD response (a body?) broke framing")
            self.assertEqual(echo_json(r2.body)["target"], "/echo?after-head=1")

    def test_head_of_chunked_upstream_response(self):
        with RawConn(self.gw.port) as c:
            for path in ("/stream?bytes=3000&chunked=1", "/chunked-trailer", "/http10"):
                c.send(f"HEAD {path} HTTP/1.1\r\nHost: gw.test\r\n\r\n".encode())
                r = c.read_response(method="HEAD")
                self.assertEqual(r.status, 200, path)
                if path == "/http10":
                    break  # the 1.0 upstream closes; whether the client conn stays is not asserted
                time.sleep(0.2)
                self.assertEqual(c.buf, b"", f"HEAD {path}: body bytes followed the head: {c.buf[:80]!r}")
                c.send(get(f"/echo?after-head={path}"))
                r2 = c.read_response()
                self.assertEqual(echo_json(r2.body)["target"], f"/echo?after-head={path}")

    def test_204_and_304_have_no_body(self):
        for code in (204, 304):
            with RawConn(self.gw.port) as c:
                c.send(get(f"/status?code={code}"))
                r = c.read_response()
                self.assertEqual(r.status, code)
                self.assertIsNone(header(r.headers, "transfer-encoding"))
                time.sleep(0.2)
                self.assertEqual(c.buf, b"", f"bytes after a {code} head: {c.buf[:100]!r}")
                c.send(get(f"/echo?after={code}"))
                r2 = c.read_response()
                self.assertEqual(r2.status, 200)

    # ---- hop-by-hop -----------------------------------------------------------------------
    def test_hop_by_hop_request_headers_removed(self):
        extra = (b"Connection: close, X-Foo\r\nX-Foo: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nProxy-Connection: keep-alive\r\n"
                 b"X-Keep: yes\r\n")
        res = lgtest.raw_exchange(self.gw.port, get("/echo", extra=extra), timeout=3)
        rs = res.responses
        self.assertEqual(len(rs), 1)
        self.assertNotEqual(rs[0].status, 101, "Upgrade: h2c must never be honoured")
        self.assertEqual(rs[0].status, 200)
        self.assertTrue(res.closed, "client sent Connection: close")
        e = echo_json(rs[0].body)
        names = [n.lower() for n, _ in e["headers"]]
        for bad in ("x-foo", "keep-alive", "te", "upgrade", "http2-settings", "proxy-connection"):
            self.assertNotIn(bad, names, f"{bad} reached the upstream: {e['headers']}")
        for v in echo_header_all(e, "connection"):
            self.assertNotIn("x-foo", v.lower())
            self.assertNotIn("upgrade", v.lower())
        self.assertEqual(echo_header(e, "x-keep"), "yes")

    def test_hop_by_hop_response_headers_not_forwarded(self):
        # /http10 and /partial answer with "Connection: close"; the client's connection is
        # keep-alive, so the upstream's Connection must not reach the client verbatim.
        with RawConn(self.gw.port) as c:
            c.send(get("/http10"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            for v in header_all(r.headers, "connection"):
                self.assertNotEqual(v.lower(), "close", f"upstream hop-by-hop forwarded: {r.headers}")
            self.assertIsNone(header(r.headers, "keep-alive"))

    # ---- X-Forwarded-* and Host -----------------------------------------------------------
    def test_x_forwarded_for_appended(self):
        _, e = self.echo(headers={"X-Forwarded-For": "1.2.3.4"})
        self.assertEqual(echo_header_all(e, "x-forwarded-for"), ["1.2.3.4, 127.0.0.1"])
        _, e = self.echo()
        self.assertEqual(echo_header_all(e, "x-forwarded-for"), ["127.0.0.1"])

    def test_x_forwarded_for_several_fields_combined(self):
        # several X-Forwarded-For fields are one comma-separated list (RFC 9110 5.3)
        res = lgtest.raw_exchange(self.gw.port, get("/echo", extra=b"X-Forwarded-For: 1.1.1.1\r\n"
                                                                 b"X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"),
                                  timeout=2, read_until_close=False)
        e = echo_json(res.responses[0].body)
        self.assertEqual(echo_header_all(e, "x-forwarded-for"), ["1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1"])

    def test_x_forwarded_proto_host_and_real_ip(self):
        _, e = self.echo(headers={"Host": "api.example.com:8443", "X-Real-IP": "6.6.6.6",
                                  "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
        self.assertEqual(echo_header_all(e, "x-forwarded-proto"), ["http"])
        self.assertEqual(echo_header_all(e, "x-forwarded-host"), ["api.example.com:8443"])
        self.assertEqual(echo_header_all(e, "x-real-ip"), ["127.0.0.1"])

    def test_host_preserved_by_default(self):
        _, e = self.echo(headers={"Host": "api.example.com"})
        self.assertEqual(echo_header_all(e, "host"), ["api.example.com"])

    def test_host_replaced_when_preserve_host_false(self):
        _, e = self.echo(path="/nohost/echo", headers={"Host": "api.example.com"})
        self.assertEqual(e["target"], "/echo")
        self.assertEqual(echo_header_all(e, "host"), [f"127.0.0.1:{self.app.port}"])

    # ---- request id -----------------------------------------------------------------------
    def test_request_id_generated(self):
        h, e = self.echo()
        rid = h.get("x-request-id")
        self.assertIsNotNone(rid, "response lacks X-Request-ID")
        self.assertRegex(rid, UUID_RE)
        self.assertEqual(echo_header_all(e, "x-request-id"), [rid])
        self.assertEqual(h.get("x-request-id-seen"), rid)
        h2, _ = self.echo()
        self.assertNotEqual(h2.get("x-request-id"), rid, "ids must be unique")

    def test_request_id_valid_kept(self):
        mine = "client-Id_1.2:3+4/5=6"
        h, e = self.echo(headers={"X-Request-ID": mine})
        self.assertEqual(h.get("x-request-id"), mine)
        self.assertEqual(echo_header_all(e, "x-request-id"), [mine])

    def test_request_id_invalid_replaced(self):
        for bad in ("has space", "x" * 200, "semi;colon", "quote\"d"):
            with self.subTest(bad=bad[:20]):
                h, e = self.echo(headers={"X-Request-ID": bad})
                rid = h.get("x-request-id")
                self.assertRegex(rid or "", UUID_RE)
                self.assertEqual(echo_header_all(e, "x-request-id"), [rid])

    # ---- traceparent ----------------------------------------------------------------------
    def test_traceparent_generated(self):
        _, e = self.echo()
        tps = echo_header_all(e, "traceparent")
        self.assertEqual(len(tps), 1, e["headers"])
        m = TRACEPARENT_RE.match(tps[0])
        self.assertIsNotNone(m, tps[0])
        self.assertEqual(m.group(1), "00")
        self.assertNotEqual(m.group(2), "0" * 32)
        self.assertNotEqual(m.group(3), "0" * 16)

    def test_traceparent_continued(self):
        trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        _, e = self.echo(headers={"traceparent": f"00-{trace}-{parent}-01"})
        tps = echo_header_all(e, "traceparent")
        self.assertEqual(len(tps), 1, e["headers"])
        m = TRACEPARENT_RE.match(tps[0])
        self.assertIsNotNone(m, tps[0])
        self.assertEqual(m.group(2), trace, "trace id must be kept")

    def test_traceparent_invalid_replaced(self):
        _, e = self.echo(headers={"traceparent": "00-zzzz-not-valid"})
        tps = echo_header_all(e, "traceparent")
        self.assertEqual(len(tps), 1, e["headers"])
        self.assertRegex(tps[0], TRACEPARENT_RE)

    def test_zz_no_connection_leak(self):
        # runs last (alphabetical order): every connection the other tests opened is closed
        lgtest.assert_no_connection_leak(self, self.gw.admin_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
