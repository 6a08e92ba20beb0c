#!/usr/bin/env python3
"""Redis-backed rate limits shared by several gateway instances (issue 4, points 7 and 8).

A real redis-server (started here on a free loopback port, no persistence, stopped by PID) and
two lunagate instances (2 workers each) pointing at it:
  - exact mode: 1,000 requests spread over both instances against 100 per minute -> exactly 100,
    whose RateLimit-Remaining values are 99..0 once each;
  - batch mode: the same load -> within the documented bound (limit + workers x instances x
    batch); the measured overshoot is printed;
  - redis-server killed mid-load: on_failure open -> no 5xx and the bypass counted; closed ->
    503 with Retry-After; redis-server restarted on the same port -> limiting resumes within a
    few seconds.
"""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import Backend, Gateway, http  # noqa: E402

REDIS_BIN = shutil.which("redis-server")
WORKERS = 2
INSTANCES = 2
LIMIT = 100


class RedisServer:
    """redis-server on 127.0.0.1:port without persistence; stop() kills it by PID."""

    def __init__(self, port=None):
        self.fixed_port = port
        self.port = port or lgtest.free_port()
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="lg-redis-")

    def start(self):
        # A port picked by free_port() may be taken by a parallel test before redis binds it; then
        # redis exits at once and a fresh port is tried (bounded). A restart keeps its port.
        for attempt in range(5):
            self.proc = subprocess.Popen([REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", self.dir],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            lgtest.wait_until(lambda: self.proc.poll() is not None or lgtest.port_accepts(self.port), 10,
                              what="redis-server to listen")
            if self.proc.poll() is None:
                self.fixed_port = self.port
                return self
            if self.fixed_port or attempt == 4:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} on port {self.port}")
            self.port = lgtest.free_port()
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def config(route_policies, redis_port, on_failure="open"):
    routes = "".join(f"  - name: {name}\n"
                     f"    match: {{ path: \"/{name}/*\" }}\n"
                     f"    upstream: app\n"
                     f"    policies: [ {{ rate-limit: {policy} }} ]\n" for name, policy in route_policies)
    return (f"workers: {WORKERS}\n"
            "listen: [ { address: \"127.0.0.1:{PORT}\" } ]\n"
            "admin: { address: \"127.0.0.1:{ADMIN_PORT}\" }\n"
            "log: { access: off, error: stderr, level: info }\n"
            f"redis: {{ address: \"127.0.0.1:{redis_port}\", timeout: 100ms, on_failure: {on_failure} }}\n"
            "upstreams:\n  app: { targets: [ \"127.0.0.1:{APP_PORT}\" ] }\n"
            "routes:\n" + routes)


def fire(ports, path, n, threads=16):
    """n requests (a new connection each, so they spread over the workers), alternating between
    the gateways; returns the list of (status, headers)."""
    def one(i):
        try:
            status, headers, _ = http(ports[i % len(ports)], "GET", path)
            return status, headers
        except OSError as e:
            return 0, {"error": str(e)}
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(one, range(n)))


def wait_for_fresh_window(need_s=25):
    """The windows are wall-clock minutes: start a counting run only when it fits in the current one."""
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.2)


@unittest.skipUnless(REDIS_BIN, "redis-server not installed (tools/setup.sh installs it)")
class SharedLimits(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)
        self.app = Backend("app").__enter__()
        self.addCleanup(self.app.stop)

    def gateways(self, route_policies, on_failure="open"):
        gws = []
        for _ in range(INSTANCES):
            gw = Gateway(config(route_policies, self.redis.port, on_failure), values={"APP_PORT": self.app.port})
            gw.__enter__()
            self.addCleanup(gw.close)
            gws.append(gw)
        return gws

    def test_exact_and_batch_over_two_instances(self):
        batch = min(LIMIT // (4 * WORKERS), 100)
        gws = self.gateways([
            ("exact", f"{{ limit: {LIMIT}, per: 1m, algorithm: sliding_window, by: route, store: redis }}"),
            ("batch", f"{{ limit: {LIMIT}, per: 1m, algorithm: sliding_window, by: route, store: redis, mode: batch }}"),
            ("bucket", f"{{ limit: {LIMIT}, per: 1h, by: route, store: redis }}"),
        ])
        ports = [g.port for g in gws]
        wait_for_fresh_window()
        exact = fire(ports, "/exact/x", 1000)
        batched = fire(ports, "/batch/x", 1000)
        bucket = fire(ports, "/bucket/x", 1000)
        for name, results in (("exact", exact), ("batch", batched), ("bucket", bucket)):
            statuses = {s for s, _ in results}
            self.assertLessEqual(statuses, {200, 429}, f"{name}: {statuses}")
        allowed_exact = sum(1 for s, _ in exact if s == 200)
        allowed_batch = sum(1 for s, _ in batched if s == 200)
        allowed_bucket = sum(1 for s, _ in bucket if s == 200)
        bound = WORKERS * INSTANCES * batch
        print(f"\nexact: {allowed_exact} allowed of 1000 (limit {LIMIT}); token bucket: {allowed_bucket}; "
              f"batch: {allowed_batch} allowed (overshoot {allowed_batch - LIMIT:+d}, bound +{bound}: "
              f"{WORKERS} workers x {INSTANCES} instances x batch {batch})", file=sys.stderr)
        self.assertEqual(allowed_exact, LIMIT)
        self.assertEqual(allowed_bucket, LIMIT)  # 100 per hour: < 2 tokens refill during the run
        self.assertLessEqual(allowed_batch, LIMIT + bound)
        self.assertGreaterEqual(allowed_batch, LIMIT - bound)  # unused reserves only expire
        refused = next(h for s, h in exact if s == 429)
        self.assertIn("retry-after", refused)
        self.assertEqual(refused.get("ratelimit-limit"), str(LIMIT))
        # Every admitted request was counted once, in some order: requests of one loop turn that
        # shared a call are told what the later ones of that call leave, so the remaining values
        # are those of 100 calls one by one.
        remaining = sorted(int(h["ratelimit-remaining"]) for s, h in exact if s == 200)
        self.assertEqual(remaining, list(range(LIMIT)))

    def kill_mid_load(self, on_failure):
        gws = self.gateways([("lim", "{ limit: 5, per: 1m, algorithm: sliding_window, by: route, store: redis }"),
                             ("bat", "{ limit: 5, per: 1m, algorithm: sliding_window, by: route, store: redis, "
                                     "mode: batch }")], on_failure)
        ports = [g.port for g in gws]
        wait_for_fresh_window(30)
        results = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                results.extend(fire(ports, "/lim/x", 20, threads=4))
                results.extend(fire(ports, "/bat/x", 20, threads=4))
        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.5)
            before = len(results)
            self.redis.kill()
            time.sleep(1.5)
            during = results[before + 80:]  # past what was in flight when it died
        finally:
            stop.set()
            t.join()
        self.assertTrue(during, "no requests while redis was down")
        return gws, ports, during

    def resumes(self, ports):
        """Restart redis-server on the same port; limiting resumes (a 429 on both routes)."""
        self.redis.start()
        t0 = time.monotonic()
        seen = set()
        while time.monotonic() - t0 < 10 and seen != {"lim", "bat"}:
            for route in ("lim", "bat"):
                if any(s == 429 for s, _ in fire(ports, f"/{route}/x", 12, threads=4)):
                    seen.add(route)
            time.sleep(0.1)
        took = time.monotonic() - t0
        print(f"\nlimiting resumed {took:.2f} s after redis-server restarted", file=sys.stderr)
        self.assertEqual(seen, {"lim", "bat"})
        self.assertLess(took, 6.0)

    def test_fail_open_then_recover(self):
        gws, ports, during = self.kill_mid_load("open")
        statuses = {s for s, _ in during}
        self.assertFalse([s for s in statuses if s >= 500 or s == 0], statuses)
        self.assertIn(200, statuses)
        bypassed = sum(lgtest.metric(lgtest.get_metrics(g.admin_port), "gateway_rate_limit_bypassed_total", route=r)
                       for g in gws for r in ("lim", "bat"))
        self.assertGreater(bypassed, 0)
        print(f"\nfail-open: {len(during)} requests while redis was down, {bypassed:.0f} bypasses counted",
              file=sys.stderr)
        self.resumes(ports)

    def test_fail_closed_then_recover(self):
        gws, ports, during = self.kill_mid_load("closed")
        self.assertTrue(all(s == 503 for s, _ in during), {s for s, _ in during})
        self.assertEqual(during[0][1].get("retry-after"), "1")
        self.resumes(ports)


if __name__ == "__main__":
    unittest.main()
