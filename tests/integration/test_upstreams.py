#!/usr/bin/env python3
"""Upstream groups: load balancing (round robin, weighted, least_conn, consistent hash by header
and cookie), connect failures and retry on another target, passive health (503), read timeouts
(504, route override), invalid / truncated upstream responses (502), stale pooled connections,
and gateway_backend_errors_total per failure kind.

Every test starts its own gateway (workers: 1) and lg-backends.
"""
import collections
import contextlib
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, get_metrics, metric  # noqa: E402

HEAD = lgtest.CONFIG_HEAD


def closed_port():
    """A port nothing listens on (connect is refused)."""
    return lgtest.free_port()


class UpstreamsTest(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)

    def backends(self, *names, **kw):
        return [self.stack.enter_context(lgtest.Backend(n, **kw)) for n in names]

    def gateway(self, body, **values):
        return self.stack.enter_context(lgtest.Gateway(HEAD + body, values=values))

    def get(self, gw, path, headers=None, timeout=5.0):
        return lgtest.http(gw.port, "GET", path, headers=headers, timeout=timeout)

    def backend_counts(self, gw, n, path="/", headers=None):
        counts = collections.Counter()
        for _ in range(n):
            st, h, body = self.get(gw, path, headers=headers)
            self.assertEqual(st, 200, body[:200])
            counts[h.get("x-backend")] += 1
        return counts

    # ---- balancing ----------------------------------------------------------------------------
    def test_round_robin_spreads_evenly(self):
        a, b = self.backends("a", "b")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}", "127.0.0.1:{B}" ], balance: round_robin }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port)
        counts = self.backend_counts(gw, 20)
        self.assertEqual(set(counts), {"a", "b"}, counts)
        self.assertLessEqual(abs(counts["a"] - counts["b"]), 2, counts)  # each 10 +-1

    def test_round_robin_on_one_keep_alive_connection(self):
        a, b = self.backends("a", "b")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}", "127.0.0.1:{B}" ] }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port)
        counts = collections.Counter()
        with RawConn(gw.port) as c:
            for _ in range(20):
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                counts[lgtest.header(r.headers, "x-backend")] += 1
        self.assertLessEqual(abs(counts["a"] - counts["b"]), 2, counts)

    def test_weighted_round_robin_3_to_1(self):
        a, b = self.backends("a", "b")
        gw = self.gateway("""
upstreams:
  g:
    targets:
      - { address: "127.0.0.1:{A}", weight: 3 }
      - { address: "127.0.0.1:{B}", weight: 1 }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port)
        counts = self.backend_counts(gw, 40)
        self.assertTrue(29 <= counts["a"] <= 31 and 9 <= counts["b"] <= 11, counts)

    def test_least_conn_prefers_idle_backend(self):
        a, b = self.backends("a", "b")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}", "127.0.0.1:{B}" ], balance: least_conn }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port)
        t = lgtest.InThread(self.get, gw, "/delay?ms=1500")
        time.sleep(0.3)
        quick = collections.Counter()
        for _ in range(6):
            st, h, _ = self.get(gw, "/")
            self.assertEqual(st, 200)
            quick[h.get("x-backend")] += 1
        t.join(timeout=5)
        self.assertFalse(t.is_alive())
        st, h, _ = t.value()
        self.assertEqual(st, 200)
        busy = h.get("x-backend")
        self.assertEqual(quick[busy], 0, f"least_conn sent quick requests to the busy backend {busy}: {quick}")
        self.assertEqual(sum(quick.values()), 6)

    def test_consistent_hash_by_header(self):
        a, b, c = self.backends("a", "b", "c")
        gw = self.gateway("""
upstreams:
  g:
    targets: [ "127.0.0.1:{A}", "127.0.0.1:{B}", "127.0.0.1:{C}" ]
    balance: consistent_hash
    hash_on: { header: X-User }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port, C=c.port)
        same = self.backend_counts(gw, 20, headers={"X-User": "alice"})
        self.assertEqual(len(same), 1, f"same header value went to several backends: {same}")
        same_lower = self.backend_counts(gw, 5, headers={"x-user": "alice"})  # name is case-insensitive
        self.assertEqual(set(same_lower), set(same))
        spread = collections.Counter()
        mapping = {}
        for i in range(30):
            st, h, _ = self.get(gw, "/", headers={"X-User": f"user-{i}"})
            self.assertEqual(st, 200)
            spread[h["x-backend"]] += 1
            mapping[i] = h["x-backend"]
        self.assertGreaterEqual(len(spread), 2, f"30 different keys all went to one backend: {spread}")
        for i in range(30):  # stable
            st, h, _ = self.get(gw, "/", headers={"X-User": f"user-{i}"})
            self.assertEqual(h["x-backend"], mapping[i], f"user-{i} moved")

    def test_consistent_hash_by_cookie(self):
        a, b = self.backends("a", "b")
        gw = self.gateway("""
upstreams:
  g:
    targets: [ "127.0.0.1:{A}", "127.0.0.1:{B}" ]
    balance: consistent_hash
    hash_on: { cookie: session }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port, B=b.port)
        same = self.backend_counts(gw, 20, headers={"Cookie": "theme=dark; session=abc123; x=1"})
        self.assertEqual(len(same), 1, same)
        # other cookies changing must not move the session
        moved = self.backend_counts(gw, 5, headers={"Cookie": "session=abc123; theme=light"})
        self.assertEqual(set(moved), set(same))
        spread = collections.Counter()
        for i in range(30):
            st, h, _ = self.get(gw, "/", headers={"Cookie": f"session=s{i}"})
            spread[h["x-backend"]] += 1
        self.assertEqual(len(spread), 2, spread)

    # ---- connect failures, retry, passive health ---------------------------------------------
    def test_502_when_connect_refused(self):
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{DEAD}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", DEAD=closed_port())
        before = metric(get_metrics(gw.admin_port), "gateway_backend_errors_total", upstream="g", kind="connect")
        t0 = time.monotonic()
        st, h, body = self.get(gw, "/")
        self.assertEqual(st, 502, body[:200])
        self.assertLess(time.monotonic() - t0, 1.5)
        obj = json.loads(body)
        self.assertEqual(obj["status"], 502)
        self.assertEqual(obj["request_id"], h.get("x-request-id"))
        after = metric(get_metrics(gw.admin_port), "gateway_backend_errors_total", upstream="g", kind="connect")
        self.assertEqual(after - before, 1)

    def test_retry_other_target_on_connect_failure(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{DEAD}", "127.0.0.1:{A}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", DEAD=closed_port(), A=a.port)
        for i in range(10):
            st, h, body = self.get(gw, "/")
            self.assertEqual(st, 200, f"request {i}: {body[:200]}")
            self.assertEqual(h.get("x-backend"), "a")

    def test_retry_after_connect_failure_keeps_the_body(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{DEAD}", "127.0.0.1:{A}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", DEAD=closed_port(), A=a.port)
        for i, size in enumerate([10, 70_000, 300_000, 10, 70_000, 300_000]):
            body = (b"%06d" % i) * (size // 6)
            st, _, resp = lgtest.http(gw.port, "POST", "/echo", body=body)
            self.assertEqual(st, 200, f"POST {i}: {resp[:200]}")
            e = lgtest.echo_json(resp)
            self.assertEqual(e["body_bytes"], len(body), f"POST {i}: body length changed on the retry")
            self.assertTrue(e["body"].encode() == body, f"POST {i}: body bytes changed on the retry")
        # chunked too
        with RawConn(gw.port) as c:
            for i in range(4):
                c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(lgtest.echo_json(r.body)["body"], "hello world")

    def test_upstream_closing_during_a_large_upload(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
limits: { max_body_bytes: 100m }
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        for path in ("/close", "/garbage"):
            t0 = time.monotonic()
            st, _, body = lgtest.http(gw.port, "POST", path, body=b"z" * (8 << 20), timeout=10)
            self.assertEqual(st, 502, f"{path}: {body[:200]}")
            self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.get(gw, "/echo")[0], 200)

    def test_503_when_only_target_marked_down(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 1, down_for: 2s } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        st, _, _ = self.get(gw, "/echo")
        self.assertEqual(st, 200)
        st, _, body = self.get(gw, "/garbage")  # an invalid response: one failure marks it down
        self.assertEqual(st, 502, body[:200])
        t_down = time.monotonic()
        st, h, body = self.get(gw, "/echo")
        self.assertEqual(st, 503, body[:200])
        self.assertEqual(json.loads(body)["status"], 503)
        self.assertEqual(h.get("retry-after"), "1")
        # back after down_for (2 s)
        time.sleep(max(0.0, 2.3 - (time.monotonic() - t_down)))
        st, _, body = self.get(gw, "/echo")
        self.assertEqual(st, 200, f"target still down after down_for: {body[:200]}")

    def test_passive_health_counts_consecutive_failures(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 2, down_for: 5s } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        seq = [("/garbage", 502), ("/echo", 200), ("/garbage", 502), ("/echo", 200),
               ("/garbage", 502), ("/garbage", 502), ("/echo", 503)]
        got = [(p, self.get(gw, p)[0]) for p, _ in seq]
        self.assertEqual(got, seq, "a success must reset the failure count; two in a row mark the target down")

    def test_503_when_refused_target_marked_down(self):
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{DEAD}" ], health: { passive: { failures: 1, down_for: 5s } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", DEAD=closed_port())
        self.assertEqual(self.get(gw, "/")[0], 502)
        for _ in range(3):
            self.assertEqual(self.get(gw, "/")[0], 503)

    def blackhole_port(self):
        """A port whose accept queue is full: the kernel drops further SYNs, so a connect hangs
        (until timeouts.connect) instead of being refused."""
        import socket
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        self.stack.callback(ls.close)
        port = ls.getsockname()[1]
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self.stack.callback(c.close)
        time.sleep(0.1)
        return port

    def test_504_connect_timeout(self):
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{HOLE}" ], timeouts: { connect: 300ms }, health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", HOLE=self.blackhole_port())
        t0 = time.monotonic()
        st, _, body = self.get(gw, "/")
        self.assertEqual(st, 504, body[:200])
        self.assertLess(time.monotonic() - t0, 1.5)

    def test_retry_other_target_on_connect_timeout(self):
        # a connect that times out sent nothing, like a refused one: another target may serve it
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{HOLE}", "127.0.0.1:{A}" ], timeouts: { connect: 300ms },
       health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", HOLE=self.blackhole_port(), A=a.port)
        statuses = [self.get(gw, "/")[0] for _ in range(4)]
        self.assertEqual(statuses, [200] * 4, "connect timeouts on one target were not retried on the other")

    # ---- timeouts -----------------------------------------------------------------------------
    def test_504_read_timeout_and_route_override(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], timeouts: { read: 500ms }, health: { passive: { failures: 100 } } }
routes:
  - { name: patient, match: { path: "/patient/*" }, upstream: g, strip_prefix: "/patient", timeouts: { read: 3s } }
  - { name: r, match: { path: "/*" }, upstream: g }
""", A=a.port)
        before = metric(get_metrics(gw.admin_port), "gateway_backend_errors_total", upstream="g", kind="timeout")
        t0 = time.monotonic()
        st, _, body = self.get(gw, "/delay?ms=3000")
        elapsed = time.monotonic() - t0
        self.assertEqual(st, 504, body[:200])
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 2.0)
        after = metric(get_metrics(gw.admin_port), "gateway_backend_errors_total", upstream="g", kind="timeout")
        self.assertEqual(after - before, 1)
        st, _, body = self.get(gw, "/patient/delay?ms=1000")
        self.assertEqual(st, 200, f"route timeouts.read: 3s must override the upstream's 500ms: {body[:200]}")
        st, _, _ = self.get(gw, "/delay?ms=100")
        self.assertEqual(st, 200)

    def test_read_timeout_not_counted_while_client_uploads_slowly(self):
        # timeouts.read bounds waiting for the upstream; a client still sending its body is not
        # the upstream's fault
        (a,) = self.backends("a")
        gw = self.gateway("""
limits: { client_body_timeout: 5s }
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], timeouts: { read: 500ms }, health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        with RawConn(gw.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
            for i in range(3):
                time.sleep(0.4)
                c.send(b"%010d" % i)
            r = c.read_response(timeout=5)
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertEqual(lgtest.echo_json(r.body)["body"], "000000000000000000010000000002")

    def test_read_timeout_not_counted_while_client_reads_slowly(self):
        # backpressure from a slow client stalls the upstream: that is not an upstream timeout
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], timeouts: { read: 300ms }, health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        import socket
        total = 6 << 20
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        s.connect(("127.0.0.1", gw.port))
        try:
            s.sendall(b"GET /stream?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % total)
            data = b""
            deadline = time.monotonic() + 20
            s.settimeout(3)
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(64 * 1024)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep and len(body) >= total:
                    break
                time.sleep(0.02)  # ~3 MiB/s at most: the transfer takes >2 s, >> 300ms
            head, _, body = data.partition(b"\r\n\r\n")
        finally:
            s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
        self.assertEqual(len(body), total, "a slow reader's download was cut (upstream read timeout fired?)")

    def test_route_timeout_override_shorter(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], timeouts: { read: 5s } }
routes:
  - { name: hasty, match: { path: "/hasty/*" }, upstream: g, strip_prefix: "/hasty", timeouts: { read: 300ms } }
  - { name: r, match: { path: "/*" }, upstream: g }
""", A=a.port)
        t0 = time.monotonic()
        st, _, _ = self.get(gw, "/hasty/delay?ms=1500")
        self.assertEqual(st, 504)
        self.assertLess(time.monotonic() - t0, 1.2)
        self.assertEqual(self.get(gw, "/delay?ms=700")[0], 200)

    # ---- bad upstream responses ---------------------------------------------------------------
    def test_502_for_garbage_close_and_partial(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        m0 = get_metrics(gw.admin_port)

        def errors(samples, kind):
            return metric(samples, "gateway_backend_errors_total", upstream="g", kind=kind)

        st, _, body = self.get(gw, "/garbage")
        self.assertEqual(st, 502, body[:200])
        m1 = get_metrics(gw.admin_port)
        self.assertEqual(errors(m1, "invalid_response") - errors(m0, "invalid_response"), 1)

        st, _, body = self.get(gw, "/close")
        self.assertEqual(st, 502, body[:200])
        m2 = get_metrics(gw.admin_port)
        total = lambda m: metric(m, "gateway_backend_errors_total", upstream="g")  # noqa: E731
        self.assertGreaterEqual(total(m2) - total(m1), 1, "a closed upstream connection is a backend error")

        # /partial: Content-Length 100, 10 bytes, close. The head may already be on its way to
        # the client: then the client connection must be closed (never a complete 200).
        res = lgtest.raw_exchange(gw.port, b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
        self.assertTrue(res.closed, "truncated upstream body: the client connection must be closed")
        rs = res.responses
        self.assertEqual(len(rs), 1, res.data[:300])
        if rs[0].status == 200:
            self.assertLess(len(rs[0].body), 100, "a truncated body was passed off as complete")
        else:
            self.assertEqual(rs[0].status, 502)
        m3 = get_metrics(gw.admin_port)
        self.assertGreaterEqual(total(m3) - total(m2), 1, "a truncated upstream response is a backend error")
        # the gateway still works
        self.assertEqual(self.get(gw, "/echo")[0], 200)

    def test_502_response_head_too_big(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
limits: { max_response_header_bytes: 8k }
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 100 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        self.assertEqual(self.get(gw, "/headers-big?bytes=4000")[0], 200)
        self.assertEqual(self.get(gw, "/headers-big?bytes=20000")[0], 502)

    def test_client_abort_does_not_poison_the_pool(self):
        (a,) = self.backends("a")
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ] }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        self.assertEqual(self.get(gw, "/echo")[0], 200)
        for path in ("/stream?bytes=50000000", "/stream?bytes=50000000&chunked=1", "/delay?ms=300"):
            with RawConn(gw.port) as c:
                c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if path.startswith("/stream"):
                    c._recv(time.monotonic() + 3)  # a first piece, then walk away
            time.sleep(0.1)
            for i in range(3):
                st, _, body = self.get(gw, f"/echo?after={i}")
                self.assertEqual(st, 200, f"after aborting {path}: {body[:200]!r}")
                self.assertEqual(lgtest.echo_json(body)["target"], f"/echo?after={i}",
                                 f"after aborting {path}, a request got someone else's bytes")
        self.assertTrue(gw.alive())

    # ---- pooled connections -------------------------------------------------------------------
    def upstream_connections(self, backend, mark):
        """[(recording file, [targets])] of the upstream connections used since mark."""
        out = {}
        for path, r in backend.new_requests(mark, with_paths=True):
            out.setdefault(path, []).append(r.target)
        return list(out.values())

    def test_keepalive_max_requests(self):
        (a,) = self.backends("a", record_dir=True)
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], keepalive: { max_requests: 2 } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        mark = a.mark()
        for i in range(6):
            self.assertEqual(self.get(gw, f"/echo?i={i}")[0], 200)
        conns = self.upstream_connections(a, mark)
        self.assertEqual(sorted(len(c) for c in conns), [2, 2, 2], conns)

    def test_keepalive_max_idle_zero_disables_pooling(self):
        (a,) = self.backends("a", record_dir=True)
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], keepalive: { max_idle: 0 } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        mark = a.mark()
        for i in range(4):
            self.assertEqual(self.get(gw, f"/echo?i={i}")[0], 200)
        conns = self.upstream_connections(a, mark)
        self.assertEqual([len(c) for c in conns], [1, 1, 1, 1], conns)

    def test_keepalive_idle_timeout(self):
        (a,) = self.backends("a", record_dir=True)
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], keepalive: { idle_timeout: 300ms } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        mark = a.mark()
        self.assertEqual(self.get(gw, "/echo?i=0")[0], 200)
        self.assertEqual(self.get(gw, "/echo?i=1")[0], 200)
        self.assertEqual(len(self.upstream_connections(a, mark)), 1, "quick requests must share the pooled connection")
        time.sleep(0.8)
        self.assertEqual(self.get(gw, "/echo?i=2")[0], 200)
        conns = self.upstream_connections(a, mark)
        self.assertEqual(len(conns), 2, f"a connection idle past keepalive.idle_timeout was reused: {conns}")

    def test_stale_pooled_connection_is_not_an_error(self):
        (a,) = self.backends("a", idle_close_ms=200)
        gw = self.gateway("""
upstreams:
  g: { targets: [ "127.0.0.1:{A}" ], health: { passive: { failures: 1, down_for: 10s } } }
routes: [ { name: r, match: { path: "/*" }, upstream: g } ]
""", A=a.port)
        for i in range(4):
            st, _, body = self.get(gw, "/echo")
            self.assertEqual(st, 200, f"round {i}: {body[:200]}")
            time.sleep(0.5)  # the backend closes the pooled connection after 200 ms
        # POST with a body (not retryable blindly) must also work after an idle close
        for i in range(2):
            st, _, body = lgtest.http(gw.port, "POST", "/echo", body=b"payload")
            self.assertEqual(st, 200, f"POST round {i}: {body[:200]}")
            time.sleep(0.5)


OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
SCRIPT = {
    # a complete response followed by a second, unrequested one in the same write
    "/smuggle": OK2 + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
    "/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
    "/dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 10\r\n\r\nok",
    "/neg-cl": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    "/bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "/not-http": b"HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/cr-in-value": b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
    "/huge-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc",
    "/early-hints": b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + OK2,
    "/unsolicited-100": b"HTTP/1.1 100 Continue\r\n\r\n" + OK2,
    "/unsolicited-101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "/hop-by-hop": b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
                   b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-End-To-End: yes\r\n"
                   b"Content-Length: 2\r\n\r\nok",
    "/own-request-id": b"HTTP/1.1 200 OK\r\nX-Request-ID: upstream-made-this\r\nContent-Length: 2\r\n\r\nok",
    "/early-413": b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!",
    "/204-with-body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/",
    "/304-with-body": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 20\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
}
CLOSE_AFTER = {"/huge-chunk", "/unsolicited-101", "/hop-by-hop"}


class UpstreamMisbehaviourTest(unittest.TestCase):
    """A scripted upstream (lgtest.ScriptedUpstream) sends what lg-backend never would: the
    gateway must answer 502 (or pass a well-defined response) and never let stray upstream bytes
    reach another request."""

    @classmethod
    def setUpClass(cls):
        # stopped in reverse order after the class, also when this fails part-way
        cls.up = cls.enterClassContext(lgtest.ScriptedUpstream(SCRIPT, close_after=CLOSE_AFTER,
                                                               early={"/early-413"}))
        cls.gw = cls.enterClassContext(lgtest.Gateway(HEAD + """
upstreams:
  s: { targets: [ "127.0.0.1:{S}" ], timeouts: { read: 2s }, health: { passive: { failures: 1000 } } }
routes: [ { name: r, match: { path: "/*" }, upstream: s } ]
""", values={"S": cls.up.port}))

    def exchange(self, path, version=b"HTTP/1.1"):
        res = lgtest.raw_exchange(self.gw.port, lgtest.get(path, host="x", version=version),
                                  timeout=2.5, read_until_close=False)
        return res

    def assertNextRequestClean(self, after):
        for i in range(3):
            st, _, body = lgtest.http(self.gw.port, "GET", f"/plain?i={i}")
            self.assertEqual((st, body), (200, b"default"),
                             f"after {after}: request {i} got {st} {body[:80]!r} (stray upstream bytes?)")

    def assertRejected(self, path, allowed=(502,)):
        res = self.exchange(path)
        finals = [r for r in res.responses if r.status >= 200]
        self.assertEqual(len(finals), 1, f"{path}: {res.data[:300]!r}")
        self.assertIn(finals[0].status, allowed, f"{path}: {res.data[:300]!r}")
        self.assertNotIn(b"smuggled", res.data)
        self.assertNextRequestClean(path)
        return finals[0], res

    def test_extra_response_after_complete_one_is_not_served_later(self):
        r, res = self.assertRejected("/smuggle", allowed=(200,))
        self.assertEqual(r.body, b"ok")

    def test_both_content_length_and_chunked(self):
        r, res = self.assertRejected("/cl-te", allowed=(200, 502))
        if r.status == 200:
            self.assertEqual(r.body, b"hello", "Transfer-Encoding overrides Content-Length")

    def test_conflicting_content_lengths(self):
        self.assertRejected("/dup-cl")

    def test_negative_content_length(self):
        self.assertRejected("/neg-cl")

    def test_bad_status_code(self):
        self.assertRejected("/bad-status")

    def test_unknown_http_version(self):
        self.assertRejected("/not-http")

    def test_bare_cr_in_response_field(self):
        r, res = self.assertRejected("/cr-in-value", allowed=(200, 502))
        head = res.data.split(b"\r\n\r\n", 1)[0]
        self.assertNotIn(b"\rSet-Cookie", head, "a bare CR from the upstream reached the client")
        self.assertIsNone(lgtest.header(r.headers, "set-cookie"), "response splitting via bare CR")

    def test_huge_chunk_size(self):
        res = self.exchange("/huge-chunk")
        rs = res.responses
        self.assertEqual(len(rs), 1, res.data[:300])
        if rs[0].status == 200:  # the head went out before the bad chunk: the body must be cut
            self.assertTrue(res.closed, "an impossible chunk size must end the client connection")
            self.assertFalse(lgtest.parse_responses_detail(res.data)[1], "truncated body passed off as complete")
        else:
            self.assertEqual(rs[0].status, 502)
        self.assertNextRequestClean("/huge-chunk")

    def test_early_hints_then_final(self):
        res = self.exchange("/early-hints")
        finals = [r for r in res.responses if r.status >= 200]
        self.assertEqual([(r.status, r.body) for r in finals], [(200, b"ok")])
        self.assertNextRequestClean("/early-hints")

    def test_unsolicited_100_not_sent_to_http10_client(self):
        res = self.exchange("/unsolicited-100", version=b"HTTP/1.0")
        self.assertTrue(res.data.startswith(b"HTTP/1.1 200") or res.data.startswith(b"HTTP/1.0 200"),
                        f"a 1.0 client got {res.data[:60]!r} (1xx must not be sent to HTTP/1.0 clients)")
        self.assertEqual([r.status for r in res.responses], [200])

    def test_unsolicited_101(self):
        res = self.exchange("/unsolicited-101")
        self.assertEqual([r.status for r in res.responses], [502],
                         f"a 101 the client never asked for must not open a tunnel: {res.data[:200]!r}")
        self.assertNextRequestClean("/unsolicited-101")

    def test_early_upstream_response_during_upload(self):
        # the upstream answers before reading the body and closes: the client gets that answer
        import socket
        total = 4 << 20
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        try:
            s.sendall(b"POST /early-413 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
            sent, data = 0, b""
            block = b"b" * 65536
            deadline = time.monotonic() + 10
            s.setblocking(False)
            while time.monotonic() < deadline:
                if sent < total:
                    try:
                        sent += s.send(block[:min(65536, total - sent)])
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        time.sleep(0.01)
                try:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if lgtest._first_response(data, None, False):
                        break
                except BlockingIOError:
                    time.sleep(0.005 if sent < total else 0.05)
                except ConnectionResetError:
                    break
        finally:
            s.close()
        rs = lgtest.parse_responses(data)
        self.assertEqual([(r.status, r.body) for r in rs], [(413, b"too big!")],
                         f"the upstream's early answer was lost: {data[:200]!r}")
        self.assertNextRequestClean("/early-413")

    def test_response_hop_by_hop_headers_removed(self):
        with RawConn(self.gw.port) as c:
            c.send(b"GET /hop-by-hop HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"ok"))
            names = {n.lower() for n, _ in r.headers}
            for bad in ("x-hop", "keep-alive", "proxy-connection", "upgrade"):
                self.assertNotIn(bad, names, f"upstream hop-by-hop {bad} reached the client: {r.headers}")
            self.assertEqual(lgtest.header(r.headers, "x-end-to-end"), "yes")
            for v in lgtest.header_all(r.headers, "connection"):
                self.assertNotIn("x-hop", v.lower())
            # the upstream's Connection: close is about the upstream connection only
            c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
            r2 = c.read_response()
            self.assertEqual((r2.status, r2.body), (200, b"default"))

    def test_one_request_id_in_the_response(self):
        st, h, body = lgtest.http(self.gw.port, "GET", "/own-request-id", headers={"X-Request-ID": "client-rid-7"})
        self.assertEqual(st, 200)
        res = lgtest.raw_exchange(self.gw.port, b"GET /own-request-id HTTP/1.1\r\nHost: x\r\nX-Request-ID: client-rid-8\r\n\r\n",
                                  timeout=2, read_until_close=False)
        ids = lgtest.header_all(res.responses[0].headers, "x-request-id")
        self.assertEqual(ids, ["client-rid-8"], "the response carries the request's id, once")

    def test_204_and_304_with_content_length_body(self):
        for path, code in (("/204-with-body", 204), ("/304-with-body", 304)):
            with self.subTest(path=path):
                with RawConn(self.gw.port) as c:
                    c.send(lgtest.get(path, host="x"))
                    r = c.read_response()
                    self.assertEqual(r.status, code)
                    time.sleep(0.2)
                    if not c.closed:
                        self.assertEqual(c.buf, b"", f"{path}: bytes after a bodiless response: {c.buf[:60]!r}")
                        c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
                        r2 = c.read_response()
                        self.assertEqual((r2.status, r2.body), (200, b"default"))
                self.assertNextRequestClean(path)

    def test_zz_no_connection_leak(self):
        # runs last (alphabetical order): every connection the other tests opened is closed
        lgtest.assert_no_connection_leak(self, self.gw.admin_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
