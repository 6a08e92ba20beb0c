#!/usr/bin/env python3
"""Process lifecycle: SIGHUP reload (new routes served, version/sha256, in-flight requests finish
on the old snapshot, bad files rejected with file:line while the old config keeps serving) and
SIGTERM drain (/ready 503, in-flight finishes, listener closed, exit 0, drain_timeout bound,
idle keep-alive connections don't hold the drain, second signal stops at once).
"""
import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, get_metrics, metric  # noqa: E402

TEMPLATE = lgtest.CONFIG_HEAD + """\
limits: { drain_timeout: {DRAIN} }
upstreams:
  a: { targets: [ "127.0.0.1:{A}" ] }
  b: { targets: [ "127.0.0.1:{B}" ] }
routes:
  - name: main
    match: { path: "/*" }
    upstream: {TARGET}
"""


def admin_json(gw, path="/admin/config"):
    st, _, body = lgtest.http(gw.admin_port, "GET", path)
    if st != 200:
        raise AssertionError(f"{path} -> {st}")
    return json.loads(body)


def connect_refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            # accepted by a listener that still exists: try a request
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(0.5)
            return s.recv(1) == b""
    except ConnectionRefusedError:
        return True
    except (socket.timeout, OSError):
        return False


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)
        self.a = self.stack.enter_context(lgtest.Backend("a"))
        self.b = self.stack.enter_context(lgtest.Backend("b"))

    def start(self, target="a", drain="5s"):
        self.values = {"A": self.a.port, "B": self.b.port, "TARGET": target, "DRAIN": drain}
        gw = lgtest.Gateway(TEMPLATE, values=dict(self.values))
        return self.stack.enter_context(gw)

    def rewrite(self, gw, text=None, **changes):
        """Writes a new config file (TEMPLATE with changes, or raw text) without signalling."""
        if text is None:
            vals = {**self.values, **changes, "PORT": gw.port, "ADMIN_PORT": gw.admin_port}
            text = lgtest.fill(TEMPLATE, vals)
        with open(gw.config_path, "w") as f:
            f.write(text)

    def backend_of(self, gw, path="/"):
        st, h, body = lgtest.http(gw.port, "GET", path)
        self.assertEqual(st, 200, body[:200])
        return h.get("x-backend")

    def reloads(self, gw, result):
        return metric(get_metrics(gw.admin_port), "gateway_config_reloads_total", result=result)

    def wait_backend(self, gw, name, timeout=3.0):
        try:
            lgtest.wait_until(lambda: self.backend_of(gw) == name, timeout, what=f"requests reaching {name}")
        except TimeoutError:
            self.fail(f"after SIGHUP, requests still don't reach backend {name!r} within {timeout} s")

    # ---- reload -------------------------------------------------------------------------------
    def test_sighup_reload_switches_backend(self):
        gw = self.start("a")
        self.assertEqual(self.backend_of(gw), "a")
        c1 = admin_json(gw)
        self.assertRegex(c1["sha256"], r"^[0-9a-f]{64}$")
        ok0 = self.reloads(gw, "ok")
        self.rewrite(gw, TARGET="b")
        gw.send_signal(signal.SIGHUP)
        self.wait_backend(gw, "b")
        for _ in range(5):
            self.assertEqual(self.backend_of(gw), "b")
        c2 = admin_json(gw)
        self.assertEqual(c2["version"], c1["version"] + 1)
        self.assertRegex(c2["sha256"], r"^[0-9a-f]{64}$")
        self.assertNotEqual(c2["sha256"], c1["sha256"])
        self.assertEqual(self.reloads(gw, "ok") - ok0, 1)

    def test_keep_alive_connection_sees_new_config_after_reload(self):
        gw = self.start("a")
        with RawConn(gw.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(lgtest.header(r.headers, "x-backend"), "a")
            self.rewrite(gw, TARGET="b")
            gw.send_signal(signal.SIGHUP)
            self.wait_backend(gw, "b")
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(lgtest.header(r.headers, "x-backend"), "b",
                             "a request started after the reload must use the new snapshot")

    def check_rejected(self, gw, bad_text, line_re):
        c1 = admin_json(gw)
        err0 = self.reloads(gw, "error")
        ok0 = self.reloads(gw, "ok")
        self.rewrite(gw, text=bad_text)
        gw.send_signal(signal.SIGHUP)
        try:
            lgtest.wait_until(lambda: self.reloads(gw, "error") > err0, 3.0, what="reload error counted")
        except TimeoutError:
            self.fail("gateway_config_reloads_total{result=\"error\"} did not increase after a bad SIGHUP")
        self.assertEqual(self.reloads(gw, "error") - err0, 1)
        self.assertEqual(self.reloads(gw, "ok"), ok0)
        self.assertTrue(gw.alive(), "a bad config on SIGHUP killed the gateway")
        for _ in range(3):
            self.assertEqual(self.backend_of(gw), "a", "old routes must keep serving")
        c2 = admin_json(gw)
        self.assertEqual((c2["version"], c2["sha256"]), (c1["version"], c1["sha256"]))
        try:
            lgtest.wait_until(lambda: re.search(line_re, gw.stderr_text()), 2.0, what="error line")
        except TimeoutError:
            self.fail(f"stderr lacks an error matching {line_re!r}:\n{gw.stderr_text()[-1500:]}")

    def test_bad_config_syntax_rejected(self):
        gw = self.start("a")
        good = lgtest.fill(TEMPLATE, {**self.values, "PORT": gw.port, "ADMIN_PORT": gw.admin_port})
        lines = good.splitlines()
        lines.insert(7, "  c: { targets: [ \"127.0.0.1:1\" ]")  # line 8: unclosed flow map
        bad = "\n".join(lines) + "\n"
        self.check_rejected(gw, bad, r"gateway\.yaml:\d+: ")

    def test_unknown_upstream_rejected_with_line(self):
        gw = self.start("a")
        self.rewrite(gw, TARGET="nope")
        with open(gw.config_path) as f:
            text = f.read()
        lineno = text.splitlines().index("    upstream: nope") + 1
        self.check_rejected(gw, text, rf"gateway\.yaml:{lineno}: routes\[0\]\.upstream: .*nope")

    def test_inflight_request_finishes_on_old_upstream(self):
        gw = self.start("a")
        t = lgtest.InThread(lgtest.http, gw.port, "GET", "/delay?ms=1500", timeout=6)
        time.sleep(0.3)
        self.rewrite(gw, TARGET="b")
        gw.send_signal(signal.SIGHUP)
        self.wait_backend(gw, "b", timeout=1.0)
        t.join(timeout=6)
        self.assertFalse(t.is_alive())
        st, h, body = t.value()
        self.assertEqual(st, 200, body[:200])
        self.assertEqual(h.get("x-backend"), "a", "the in-flight request must finish on the old upstream")

    def test_reload_storm_under_traffic(self):
        gw = self.start("a")
        stop = threading.Event()
        errors, seen = [], set()

        def traffic():
            for _ in range(5000):
                if stop.is_set():
                    return
                try:
                    with RawConn(gw.port, timeout=5) as c:
                        for _ in range(5):
                            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                            r = c.read_response(timeout=5)
                            if r.status != 200:
                                errors.append(r.status)
                            seen.add(lgtest.header(r.headers, "x-backend"))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            v0 = admin_json(gw)["version"]
            for i in range(10):
                self.rewrite(gw, TARGET="b" if i % 2 == 0 else "a")
                gw.send_signal(signal.SIGHUP)
                want = v0 + i + 1
                lgtest.wait_until(lambda: admin_json(gw)["version"] >= want, 3.0, what=f"version {want}")
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        self.assertEqual(admin_json(gw)["version"], v0 + 10)
        self.assertEqual(errors, [], "requests failed during reloads")
        self.assertEqual(seen, {"a", "b"})
        self.assertEqual(self.backend_of(gw), "a")  # the last reload (i = 9) points to a

    def test_reload_changes_targets_of_the_same_upstream(self):
        # upstream "a" keeps its name but now points to backend b: pooled connections to the
        # old address must not serve the new config
        gw = self.start("a")
        with RawConn(gw.port) as c:
            for _ in range(3):
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(lgtest.header(c.read_response().headers, "x-backend"), "a")
        text = lgtest.fill(TEMPLATE, {**self.values, "PORT": gw.port, "ADMIN_PORT": gw.admin_port})
        text = text.replace(f'a: {{ targets: [ "127.0.0.1:{self.a.port}" ] }}',
                            f'a: {{ targets: [ "127.0.0.1:{self.b.port}" ] }}')
        self.assertIn(f'a: {{ targets: [ "127.0.0.1:{self.b.port}" ] }}', text)
        self.rewrite(gw, text=text)
        gw.send_signal(signal.SIGHUP)
        self.wait_backend(gw, "b")
        for _ in range(5):
            self.assertEqual(self.backend_of(gw), "b")

    def test_reload_applies_new_limits_and_removed_routes(self):
        gw = self.start("a")
        self.assertEqual(lgtest.http(gw.port, "POST", "/x", body=b"y" * 100)[0], 200)
        text = lgtest.fill(TEMPLATE, {**self.values, "PORT": gw.port, "ADMIN_PORT": gw.admin_port})
        text = text.replace("limits: { drain_timeout: 5s }", "limits: { drain_timeout: 5s, max_body_bytes: 10 }")
        text = text.replace('match: { path: "/*" }', 'match: { path: "/only/*" }')
        self.rewrite(gw, text=text)
        v = admin_json(gw)["version"]
        gw.send_signal(signal.SIGHUP)
        lgtest.wait_until(lambda: admin_json(gw)["version"] == v + 1, 3.0, what="reload")
        self.assertEqual(lgtest.http(gw.port, "GET", "/x")[0], 404, "a removed route still serves")
        self.assertEqual(lgtest.http(gw.port, "POST", "/only/x", body=b"y" * 100)[0], 413)
        self.assertEqual(lgtest.http(gw.port, "POST", "/only/x", body=b"y" * 10)[0], 200)

    def test_drain_with_open_websocket_tunnel_bounded(self):
        gw = self.start("a", drain="1s")
        with RawConn(gw.port) as c:
            c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            self.assertEqual(c.read_response().status, 101)
            t0 = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            rc = gw.wait_exit(timeout=4)
            self.assertIsNotNone(rc, "an open tunnel kept the gateway alive past drain_timeout")
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(rc, 0)

    def test_drain_with_two_workers(self):
        self.values = {"A": self.a.port, "B": self.b.port, "TARGET": "a", "DRAIN": "5s"}
        gw = self.stack.enter_context(lgtest.Gateway(TEMPLATE.replace("workers: 1", "workers: 2"),
                                                     values=dict(self.values)))
        results = []

        def slow():
            try:
                results.append(lgtest.http(gw.port, "GET", "/delay?ms=800", timeout=5)[0])
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))
        threads = [threading.Thread(target=slow) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=5)
        rc = gw.wait_exit(timeout=5)
        self.assertEqual(results, [200] * 6)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_restart_only_change_rejected(self):
        gw = self.start("a")
        self.rewrite(gw)
        with open(gw.config_path) as f:
            text = f.read().replace("workers: 1", "workers: 2")
        self.check_rejected(gw, text, r"workers")

    # ---- drain --------------------------------------------------------------------------------
    def test_sigterm_drain(self):
        gw = self.start("a", drain="5s")
        t = lgtest.InThread(lgtest.http, gw.port, "GET", "/delay?ms=1500", timeout=6)
        time.sleep(0.3)
        t_term = time.monotonic()
        gw.send_signal(signal.SIGTERM)

        def not_ready():
            try:
                return lgtest.http(gw.admin_port, "GET", "/ready", timeout=0.5)[0] == 503
            except OSError:
                return True  # the admin stopped: also "not ready"
        try:
            lgtest.wait_until(not_ready, 0.5, what="/ready 503")
        except TimeoutError:
            self.fail("/ready still 200 0.5 s after SIGTERM")
        try:
            lgtest.wait_until(lambda: connect_refused(gw.port), 1.0, what="listener closed")
        except TimeoutError:
            self.fail("new connections still served 1 s after SIGTERM")
        t.join(timeout=6)
        self.assertIsNone(t.error, f"in-flight request failed during drain: {t.error!r}")
        st, h, body = t.result
        self.assertEqual(st, 200, body[:200])
        self.assertEqual(h.get("x-backend"), "a")
        rc = gw.wait_exit(timeout=5.5 - (time.monotonic() - t_term))
        self.assertEqual(rc, 0, f"exit code {rc}\n{gw.stderr_text()[-1500:]}")
        self.assertLess(time.monotonic() - t_term, 2.5, "drain took much longer than the in-flight request")

    def test_drain_response_on_keep_alive_says_close(self):
        gw = self.start("a", drain="5s")
        with RawConn(gw.port) as c:
            c.send(b"GET /delay?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
            gw.send_signal(signal.SIGTERM)
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            self.assertEqual((lgtest.header(r.headers, "connection") or "").lower(), "close",
                             "a response finished during drain must tell the client the connection closes")
            self.assertTrue(c.is_closed_by_peer(wait=2.0))
        self.assertEqual(gw.wait_exit(timeout=3), 0)

    def test_idle_keep_alive_connection_does_not_hold_drain(self):
        gw = self.start("a", drain="5s")
        with RawConn(gw.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            gw.send_signal(signal.SIGTERM)
            rc = gw.wait_exit(timeout=6)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, 1.5, f"an idle keep-alive connection held the drain for {elapsed:.1f} s")

    def test_drain_timeout_bounds_exit(self):
        gw = self.start("a", drain="1s")
        t = lgtest.InThread(lgtest.http, gw.port, "GET", "/delay?ms=5000", timeout=8)
        time.sleep(0.3)
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        rc = gw.wait_exit(timeout=4)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(rc, "still running 4 s after SIGTERM with drain_timeout: 1s")
        self.assertLess(elapsed, 2.0, f"exit took {elapsed:.2f} s with drain_timeout: 1s")
        self.assertGreater(elapsed, 0.8, "exited before drain_timeout although a request was in flight")
        self.assertEqual(rc, 0)
        t.join(timeout=8)

    def test_second_signal_stops_at_once(self):
        gw = self.start("a", drain="10s")
        # an in-flight request; it fails once the gateway stops (InThread keeps the error, unchecked)
        t = lgtest.InThread(lgtest.http, gw.port, "GET", "/delay?ms=5000", timeout=8, daemon=True)
        time.sleep(0.3)
        gw.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        t0 = time.monotonic()
        gw.send_signal(signal.SIGINT)
        rc = gw.wait_exit(timeout=3)
        self.assertIsNotNone(rc, "a second signal must stop the gateway at once")
        self.assertLess(time.monotonic() - t0, 1.0)
        t.join(timeout=8)


if __name__ == "__main__":
    unittest.main(verbosity=2)
