#!/usr/bin/env python3
"""WebSocket tunnelling: a 101 from the upstream is forwarded and bytes then flow both ways
(lg-backend /ws echoes raw bytes); the client's close ends the tunnel; a route with
websocket: false strips Upgrade; Upgrade: h2c is never tunnelled.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, echo_json, echo_header, get_metrics, header, metric  # noqa: E402

CONFIG = lgtest.CONFIG_HEAD + """\
limits: { idle_timeout: 30s }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ], timeouts: { read: 30s } }
routes:
  - { name: nows, match: { path: "/nows/*" }, upstream: app, strip_prefix: "/nows", websocket: false }
  - { name: all,  match: { path: "/*" },      upstream: app }
"""

WS_HEAD = (b"GET {path} HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def ws_head(path="/ws"):
    return WS_HEAD.replace(b"{path}", path.encode())


def recv_exactly(sock, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(1 << 16, n - len(data)))
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


class WebSocketTest(lgtest.AppGatewayMixin, unittest.TestCase):
    CONFIG = CONFIG

    def open_tunnel(self, c, extra=b""):
        c.send(ws_head() + extra)
        r = c.read_response(timeout=3)
        self.assertEqual(r.status, 101, r)
        self.assertEqual((header(r.headers, "upgrade") or "").lower(), "websocket", r.headers)
        self.assertIn("upgrade", (header(r.headers, "connection") or "").lower(), r.headers)
        return r

    def active(self):
        return metric(get_metrics(self.gw.admin_port), "gateway_active_connections")

    def test_upgrade_and_echo_round_trips(self):
        with RawConn(self.gw.port) as c:
            self.open_tunnel(c)
            self.assertEqual(c.buf, b"")
            for i in range(10):
                msg = b"round-trip-%d-" % i + bytes(range(256))
                c.send(msg)
                got = c.buf + recv_exactly(c.sock, len(msg) - len(c.buf))
                c.buf = b""
                self.assertEqual(got, msg, f"round trip {i}")

    def test_upstream_sees_upgrade_headers(self):
        mark = self.app.mark()
        with RawConn(self.gw.port) as c:
            self.open_tunnel(c)
        reqs = [r for r in self.app.new_requests(mark) if r.target == "/ws"]
        self.assertEqual(len(reqs), 1)
        hs = reqs[0].headers
        self.assertEqual((lgtest.header(hs, "upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", (lgtest.header(hs, "connection") or "").lower())
        self.assertEqual(lgtest.header(hs, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==")
        self.assertEqual(lgtest.header(hs, "sec-websocket-version"), "13")

    def test_large_payload_both_ways(self):
        payload = os.urandom(4 << 20)
        with RawConn(self.gw.port) as c:
            self.open_tunnel(c)
            got = b""
            sent = 0
            c.sock.setblocking(True)
            deadline = time.monotonic() + 20
            # interleave sends and receives so neither side's buffers fill up
            while (sent < len(payload) or len(got) < len(payload)) and time.monotonic() < deadline:
                if sent < len(payload):
                    c.sock.settimeout(2)
                    sent += c.sock.send(payload[sent:sent + 65536])
                c.sock.settimeout(0.01 if sent < len(payload) else 2)
                try:
                    chunk = c.sock.recv(1 << 18)
                    if not chunk:
                        break
                    got += chunk
                except socket.timeout:
                    pass
            self.assertEqual(len(got), len(payload))
            self.assertTrue(got == payload, "echoed bytes differ")

    def test_bytes_right_behind_the_upgrade_request(self):
        with RawConn(self.gw.port) as c:
            self.open_tunnel(c, extra=b"early-bytes")
            got = c.buf + recv_exactly(c.sock, len(b"early-bytes") - len(c.buf), timeout=3)
            self.assertEqual(got, b"early-bytes", "bytes sent with the upgrade request were lost")

    def test_client_half_close_still_gets_echo(self):
        with RawConn(self.gw.port) as c:
            self.open_tunnel(c)
            c.send(b"last words")
            c.sock.shutdown(socket.SHUT_WR)
            data = c.read_until_close(timeout=3)
            self.assertEqual(data, b"last words")
            self.assertTrue(c.closed, "the tunnel must end after both sides closed")

    def test_client_close_ends_tunnel(self):
        base = self.active()
        c = RawConn(self.gw.port)
        self.open_tunnel(c)
        c.send(b"x")
        self.assertEqual(recv_exactly(c.sock, 1), b"x")
        c.close()
        try:
            lgtest.wait_until(lambda: self.active() <= base, 3.0, what="tunnel closed")
        except TimeoutError:
            self.fail(f"gateway_active_connections still {self.active()} (was {base}) 3 s after the client closed")
        # the gateway still serves
        self.assertEqual(lgtest.http(self.gw.port, "GET", "/echo")[0], 200)

    def test_tunnel_is_logged_and_counted(self):
        before = metric(get_metrics(self.gw.admin_port), "gateway_requests_total", route="all", status="101")
        with RawConn(self.gw.port) as c:
            c.send(ws_head().replace(b"\r\n\r\n", b"\r\nX-Request-ID: ws-log-1\r\n\r\n", 1))
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 101)
            c.send(b"0123456789")
            self.assertEqual(recv_exactly(c.sock, 10), b"0123456789")
        lines = lgtest.wait_until(
            lambda: [l for l in self.gw.access_log_lines() if l.get("request_id") == "ws-log-1"], 3.0,
            what="access log line of the tunnel")
        self.assertEqual(len(lines), 1)
        self.assertEqual((lines[0]["status"], lines[0]["route"]), (101, "all"))
        def counted():
            v = metric(get_metrics(self.gw.admin_port), "gateway_requests_total", route="all", status="101")
            return v if v > before else None
        try:
            after = lgtest.wait_until(counted, 3.0, what="101 counted")
        except TimeoutError:
            self.fail("the tunnel was not counted in gateway_requests_total{status=\"101\"}")
        self.assertEqual(after - before, 1)

    def test_websocket_false_strips_upgrade(self):
        with RawConn(self.gw.port) as c:
            c.send(ws_head("/nows/echo"))
            r = c.read_response(timeout=3)
            self.assertNotEqual(r.status, 101)
            self.assertEqual(r.status, 200)
            e = echo_json(r.body)
            self.assertEqual(e["target"], "/echo")
            self.assertIsNone(echo_header(e, "upgrade"), e["headers"])
            for v in lgtest.echo_header_all(e, "connection"):
                self.assertNotIn("upgrade", v.lower())
            # still plain HTTP afterwards
            c.send(b"GET /echo?next=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            self.assertEqual(echo_json(c.read_response().body)["target"], "/echo?next=1")

    def test_websocket_false_ws_endpoint_not_upgraded(self):
        with RawConn(self.gw.port) as c:
            c.send(ws_head("/nows/ws"))
            r = c.read_response(timeout=3)
            self.assertNotEqual(r.status, 101, "websocket: false must never produce a tunnel")

    def test_h2c_never_tunnelled(self):
        h2c = (b"GET /ws HTTP/1.1\r\nHost: gw.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        with RawConn(self.gw.port) as c:
            c.send(h2c)
            r = c.read_response(timeout=3)
            self.assertNotEqual(r.status, 101)
        mark = self.app.mark()
        with RawConn(self.gw.port) as c:
            c.send(h2c.replace(b"/ws", b"/echo"))
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            e = echo_json(r.body)
            self.assertIsNone(echo_header(e, "upgrade"))
            self.assertIsNone(echo_header(e, "http2-settings"))
        self.assertTrue(all(r.target != "/ws" or lgtest.header(r.headers, "upgrade") is None
                            for r in self.app.new_requests(mark)))

    def test_upgrade_refused_by_upstream_stays_http(self):
        # the upstream answers an Upgrade request with a plain 200: no tunnel, keep-alive goes on
        with RawConn(self.gw.port) as c:
            c.send(ws_head("/echo"))
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            c.send(b"GET /echo?after=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            r2 = c.read_response(timeout=3)
            self.assertEqual(r2.status, 200)
            self.assertEqual(echo_json(r2.body)["target"], "/echo?after=1")

    def test_zz_no_connection_leak(self):
        # runs last (alphabetical order): every connection the other tests opened is closed
        lgtest.assert_no_connection_leak(self, self.gw.admin_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
