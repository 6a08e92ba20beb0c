#!/usr/bin/env python3
"""Access log: one JSON line per request with every documented field; request_id equals the
response's X-Request-ID; 1,000 requests over 8 connections give exactly 1,000 lines after a clean
SIGTERM; log.access to a file path; 404 and 400 are logged too.
"""
import contextlib
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn  # noqa: E402

CONFIG = """\
workers: {WORKERS}
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: {ACCESS}, error: stderr, level: info }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - { name: echo, match: { path: "/echo" }, upstream: app }
  - { name: rest, match: { path: "/api/*" }, upstream: app, strip_prefix: "/api" }
"""

FIELDS = ("time", "request_id", "method", "path", "route", "status", "latency_ms", "upstream", "upstream_addr",
          "upstream_latency_ms", "client_ip", "bytes_in", "bytes_out")


class AccessLogTest(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)
        self.app = self.stack.enter_context(lgtest.Backend("app"))

    def start(self, workers=1, access="stdout"):
        return self.stack.enter_context(lgtest.Gateway(CONFIG, values={
            "WORKERS": workers, "APP_PORT": self.app.port, "ACCESS": access}))

    def stop_clean(self, gw):
        gw.send_signal(signal.SIGTERM)
        rc = gw.wait_exit(timeout=10)
        self.assertEqual(rc, 0, gw.stderr_text()[-1000:])

    def by_id(self, lines):
        out = {}
        for obj in lines:
            out.setdefault(obj.get("request_id"), []).append(obj)
        return out

    def test_fields_of_a_proxied_request(self):
        gw = self.start()
        body = b"x" * 123
        st, h, resp = lgtest.http(gw.port, "POST", "/api/echo?q=1", body=body)
        self.assertEqual(st, 200)
        rid = h["x-request-id"]
        self.stop_clean(gw)
        lines = self.by_id(gw.access_log_lines()).get(rid)
        self.assertIsNotNone(lines, f"no access log line with request_id {rid}:\n{gw.access_log_text()[:1000]}")
        self.assertEqual(len(lines), 1)
        rec = lines[0]
        for f in FIELDS:
            self.assertIn(f, rec, f"field {f} missing: {rec}")
        self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertEqual(rec["method"], "POST")
        self.assertIn(rec["path"], ("/api/echo", "/api/echo?q=1"))
        self.assertEqual(rec["route"], "rest")
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["upstream"], "app")
        self.assertEqual(rec["upstream_addr"], f"127.0.0.1:{self.app.port}")
        self.assertEqual(rec["client_ip"], "127.0.0.1")
        self.assertIsInstance(rec["latency_ms"], (int, float))
        self.assertIsInstance(rec["upstream_latency_ms"], (int, float))
        self.assertGreaterEqual(rec["latency_ms"], rec["upstream_latency_ms"])
        self.assertLess(rec["latency_ms"], 5000)
        self.assertGreaterEqual(rec["bytes_in"], 123, "bytes_in counts at least the body")
        self.assertGreaterEqual(rec["bytes_out"], len(resp), "bytes_out counts at least the body sent")

    def test_404_and_400_logged(self):
        gw = self.start()
        st, h, _ = lgtest.http(gw.port, "GET", "/nowhere")
        self.assertEqual(st, 404)
        rid404 = h["x-request-id"]
        res = lgtest.raw_exchange(gw.port, b"GET /echo HTTP/1.1\r\nHost: x\r\nBad Line\r\n\r\n", timeout=2)
        self.assertEqual([r.status for r in res.responses], [400])
        rid400 = lgtest.header(res.responses[0].headers, "x-request-id")
        self.stop_clean(gw)
        lines = gw.access_log_lines()
        ids = self.by_id(lines)
        self.assertEqual(len(ids.get(rid404, [])), 1, f"404 logged {len(ids.get(rid404, []))} times")
        rec = ids[rid404][0]
        self.assertEqual((rec["status"], rec["path"], rec["route"]), (404, "/nowhere", None))
        s400 = [l for l in lines if l.get("status") == 400]
        self.assertEqual(len(s400), 1, f"400 lines: {s400}")
        if rid400:
            self.assertEqual(s400[0]["request_id"], rid400)
        self.assertEqual(len(lines), 2, f"exactly two requests were made: {lines}")

    def test_request_id_matches_response(self):
        gw = self.start()
        ids = []
        with RawConn(gw.port) as c:
            for i in range(5):
                c.send(b"GET /echo?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                r = c.read_response()
                ids.append(lgtest.header(r.headers, "x-request-id"))
        st, h, _ = lgtest.http(gw.port, "GET", "/echo", headers={"X-Request-ID": "client-chosen-42"})
        ids.append("client-chosen-42")
        self.assertEqual(h["x-request-id"], "client-chosen-42")
        self.stop_clean(gw)
        logged = [l["request_id"] for l in gw.access_log_lines()]
        self.assertEqual(logged, ids)

    def test_thousand_requests_eight_connections_no_drops(self):
        gw = self.start(workers=2)
        errors = []
        seen_ids = []
        lock = threading.Lock()

        def client(k):
            try:
                with RawConn(gw.port, timeout=10) as c:
                    for i in range(125):
                        c.send(b"GET /echo?c=%d&i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (k, i))
                        r = c.read_response(timeout=10)
                        if r.status != 200:
                            raise AssertionError(f"status {r.status}")
                        with lock:
                            seen_ids.append(lgtest.header(r.headers, "x-request-id"))
            except Exception as e:  # noqa: BLE001
                errors.append(f"client {k}: {e!r}")
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        self.assertFalse(any(t.is_alive() for t in threads), "clients did not finish in 40 s")
        self.assertEqual(errors, [])
        self.assertLess(time.monotonic() - t0, 40)
        self.stop_clean(gw)
        text = gw.access_log_text()
        raw_lines = [l for l in text.splitlines() if l.strip()]
        self.assertEqual(len(raw_lines), 1000, f"{len(raw_lines)} access log lines for 1000 requests")
        parsed = gw.access_log_lines()
        self.assertEqual(len(parsed), 1000, "every line must be valid JSON")
        self.assertEqual(sorted(l["request_id"] for l in parsed), sorted(seen_ids))
        self.assertEqual(len(set(seen_ids)), 1000, "request ids must be unique")

    def test_bytes_and_latency_exact(self):
        gw = self.start()
        req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: bytes-1\r\n"
               b"Content-Length: 10\r\n\r\n0123456789")
        res = lgtest.raw_exchange(gw.port, req, timeout=2)
        self.assertEqual([r.status for r in res.responses], [200])
        st, h, _ = lgtest.http(gw.port, "GET", "/echo?x=1", headers={"X-Request-ID": "slow-1"})
        res2 = lgtest.raw_exchange(gw.port, b"GET /api/delay?ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                            b"X-Request-ID: delay-1\r\n\r\n", timeout=3)
        self.assertEqual([r.status for r in res2.responses], [200])
        self.stop_clean(gw)
        ids = self.by_id(gw.access_log_lines())
        rec = ids["bytes-1"][0]
        self.assertEqual(rec["bytes_in"], len(req), "bytes_in = every byte of the request")
        self.assertEqual(rec["bytes_out"], len(res.data), "bytes_out = every byte of the response")
        rec = ids["delay-1"][0]
        self.assertGreaterEqual(rec["latency_ms"], 295)
        self.assertGreaterEqual(rec["upstream_latency_ms"], 295)
        self.assertLess(rec["latency_ms"], 2000)
        self.assertEqual(rec["path"], "/api/delay")

    def test_client_gone_mid_request_logged_once(self):
        gw = self.start()
        c = RawConn(gw.port)
        c.send(b"GET /api/delay?ms=600 HTTP/1.1\r\nHost: x\r\nX-Request-ID: gone-1\r\n\r\n")
        time.sleep(0.15)
        c.close()
        time.sleep(0.8)
        self.stop_clean(gw)
        recs = self.by_id(gw.access_log_lines()).get("gone-1", [])
        self.assertEqual(len(recs), 1, f"a request whose client left must be logged once: {recs}")

    def test_access_to_file_path(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="lg-alog-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "sub-access.log")
        gw = self.start(access=f'"{path}"')
        for i in range(3):
            self.assertEqual(lgtest.http(gw.port, "GET", f"/echo?f={i}")[0], 200)
        self.stop_clean(gw)
        self.assertTrue(os.path.isfile(path), "log.access file not created")
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        self.assertEqual(len(lines), 3)
        self.assertEqual(gw.access_log_text().strip(), "", "with a file path, nothing goes to stdout")

    def test_access_off(self):
        gw = self.start(access="off")
        self.assertEqual(lgtest.http(gw.port, "GET", "/echo")[0], 200)
        self.stop_clean(gw)
        self.assertEqual(gw.access_log_text().strip(), "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
