#!/usr/bin/env python3
"""Admin listener: /health, /ready, /admin/config, /metrics (exact request counts by
route/upstream/status, cumulative histograms, active connections, backend errors), admin never
on the public port, and metrics summed across workers.
"""
import contextlib
import datetime
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, get_metrics, metric  # noqa: E402

CONFIG = """\
workers: {WORKERS}
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
upstreams:
  app:  { targets: [ "127.0.0.1:{APP_PORT}" ] }
  dead: { targets: [ "127.0.0.1:{DEAD_PORT}" ], health: { passive: { failures: 100 } } }
routes:
  - { name: one,  match: { path: "/one" },    upstream: app }
  - { name: two,  match: { path: "/two/*" },  upstream: app }
  - { name: down, match: { path: "/down" },   upstream: dead }
  - { name: post, match: { path: "/post", methods: [ POST ] }, upstream: app }
"""


class AdminTest(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)
        self.app = self.stack.enter_context(lgtest.Backend("app"))

    def start(self, workers=1):
        return self.stack.enter_context(lgtest.Gateway(CONFIG, values={
            "WORKERS": workers, "APP_PORT": self.app.port, "DEAD_PORT": lgtest.free_port()}))

    def test_health_and_ready(self):
        gw = self.start()
        st, _, body = lgtest.http(gw.admin_port, "GET", "/health")
        self.assertEqual(st, 200, body)
        st, _, body = lgtest.http(gw.admin_port, "GET", "/ready")
        self.assertEqual(st, 200, body)
        st, _, _ = lgtest.http(gw.admin_port, "GET", "/no-such-admin-path")
        self.assertEqual(st, 404)

    def test_admin_config(self):
        gw = self.start()
        st, h, body = lgtest.http(gw.admin_port, "GET", "/admin/config")
        self.assertEqual(st, 200)
        self.assertIn("json", h.get("content-type", ""))
        obj = json.loads(body)
        self.assertEqual(obj["version"], 1)
        self.assertRegex(obj["sha256"], r"^[0-9a-f]{64}$")
        with open(gw.config_path, "rb") as f:
            import hashlib
            self.assertEqual(obj["sha256"], hashlib.sha256(f.read()).hexdigest(),
                             "sha256 should be the hash of the config file")
        self.assertEqual(obj["routes"], 4)
        loaded = obj["loaded_at"]
        self.assertRegex(loaded, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        t = datetime.datetime.strptime(loaded[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        age = (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()
        self.assertTrue(-5 < age < 120, f"loaded_at {loaded} is {age:.0f} s from now")

    def test_requests_total_counts_exactly(self):
        gw = self.start()
        for _ in range(7):
            self.assertEqual(lgtest.http(gw.port, "GET", "/one")[0], 200)
        for _ in range(3):
            self.assertEqual(lgtest.http(gw.port, "GET", "/two/x")[0], 200)
        self.assertEqual(lgtest.http(gw.port, "GET", "/down")[0], 502)
        self.assertEqual(lgtest.http(gw.port, "GET", "/post")[0], 405)
        self.assertEqual(lgtest.http(gw.port, "GET", "/nowhere")[0], 404)
        m = get_metrics(gw.admin_port)
        self.assertEqual(metric(m, "gateway_requests_total", route="one", upstream="app", status="200"), 7)
        self.assertEqual(metric(m, "gateway_requests_total", route="one"), 7)
        self.assertEqual(metric(m, "gateway_requests_total", route="two", upstream="app", status="200"), 3)
        self.assertEqual(metric(m, "gateway_requests_total", route="down", upstream="dead", status="502"), 1)
        self.assertEqual(metric(m, "gateway_requests_total", status="405"), 1)
        self.assertEqual(metric(m, "gateway_requests_total", status="404"), 1)
        self.assertEqual(metric(m, "gateway_requests_total"), 13, "total over all series")
        self.assertGreaterEqual(metric(m, "gateway_backend_errors_total", upstream="dead", kind="connect"), 1)
        self.assertEqual(metric(m, "gateway_backend_errors_total", upstream="app"), 0)

    def test_histograms_cumulative_and_count(self):
        gw = self.start()
        for _ in range(7):
            lgtest.http(gw.port, "GET", "/one")
        lgtest.http(gw.port, "GET", "/one?x=/delay")  # same route
        m = get_metrics(gw.admin_port)
        for name in ("gateway_request_duration_seconds", "gateway_backend_latency_seconds"):
            with self.subTest(histogram=name):
                buckets = [(l["le"], v) for n, l, v in m if n == name + "_bucket" and l.get("route") == "one"]
                self.assertTrue(buckets, f"no {name} buckets for route one")
                self.assertEqual(buckets[-1][0], "+Inf")
                bounds = [float(le) for le, _ in buckets[:-1]]
                self.assertEqual(bounds, sorted(bounds), "le bounds must increase")
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts), f"buckets must be cumulative: {counts}")
                count = metric(m, name + "_count", route="one")
                self.assertEqual(count, 8)
                self.assertEqual(counts[-1], count)
                self.assertGreater(metric(m, name + "_sum", route="one"), 0)

    def test_active_connections_gauge(self):
        gw = self.start()
        base = metric(get_metrics(gw.admin_port), "gateway_active_connections")
        conns = []
        try:
            for _ in range(3):
                c = RawConn(gw.port)
                c.send(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)
                conns.append(c)
            self.assertEqual(metric(get_metrics(gw.admin_port), "gateway_active_connections"), base + 3)
        finally:
            for c in conns:
                c.close()
        try:
            lgtest.wait_until(lambda: metric(get_metrics(gw.admin_port), "gateway_active_connections") == base,
                              3.0, what="gauge back to base")
        except TimeoutError:
            self.fail("gateway_active_connections did not return to its base value after the clients closed")

    def test_metric_families_present(self):
        gw = self.start()
        lgtest.http(gw.port, "GET", "/one")
        st, h, body = lgtest.http(gw.admin_port, "GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h.get("content-type", "").startswith("text/plain"), h.get("content-type"))
        text = body.decode()
        for fam, typ in (("gateway_requests_total", "counter"), ("gateway_request_duration_seconds", "histogram"),
                         ("gateway_backend_latency_seconds", "histogram"), ("gateway_active_connections", "gauge"),
                         ("gateway_backend_errors_total", "counter"), ("gateway_config_reloads_total", "counter")):
            self.assertIn(f"# TYPE {fam} {typ}\n", text)

    def test_admin_not_on_public_port(self):
        gw = self.start()
        for path in ("/metrics", "/health", "/ready", "/admin/config"):
            with self.subTest(path=path):
                st, _, body = lgtest.http(gw.port, "GET", path)
                self.assertEqual(st, 404, f"{path} on the public port: {st} {body[:200]!r}")
                self.assertNotIn(b"gateway_requests_total", body)
                self.assertNotIn(b"sha256", body)

    def test_admin_disabled(self):
        ap = lgtest.free_port()
        cfg = CONFIG.replace('admin: { address: "127.0.0.1:{ADMIN_PORT}" }',
                             'admin: { address: "127.0.0.1:{AP}", enabled: false }')
        gw = self.stack.enter_context(lgtest.Gateway(cfg, values={
            "WORKERS": 1, "APP_PORT": self.app.port, "DEAD_PORT": lgtest.free_port(), "AP": ap}))
        self.assertEqual(lgtest.http(gw.port, "GET", "/one")[0], 200)
        self.assertFalse(lgtest.port_accepts(ap), "admin.enabled: false still listens")

    def test_workers_2_metrics_summed(self):
        gw = self.start(workers=2)
        st, _, body = lgtest.http(gw.admin_port, "GET", "/admin/config")
        self.assertEqual(json.loads(body)["workers"], 2)
        for i in range(50):  # separate connections: spread over both workers by SO_REUSEPORT
            st, _, _ = lgtest.http(gw.port, "GET", "/one")
            self.assertEqual(st, 200, f"request {i}")
        m = get_metrics(gw.admin_port)
        self.assertEqual(metric(m, "gateway_requests_total", route="one", upstream="app", status="200"), 50)
        self.assertEqual(metric(m, "gateway_request_duration_seconds_count", route="one"), 50)
        # every one of those connections is closed again: the gauge (summed over workers) is 0
        try:
            lgtest.wait_until(lambda: metric(get_metrics(gw.admin_port), "gateway_active_connections") == 0,
                              3.0, what="active connections back to 0")
        except TimeoutError:
            self.fail(f"gateway_active_connections stuck at "
                      f"{metric(get_metrics(gw.admin_port), 'gateway_active_connections')} after all clients left")


if __name__ == "__main__":
    unittest.main(verbosity=2)
