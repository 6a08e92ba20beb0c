#!/usr/bin/env python3
"""limits.max_pipelined: how many requests a client may queue ahead on one connection.

The contract (runtime/proxy/client_connection.cpp, `pipelined_`): a request counts as pipelined
when it was already buffered as the previous one finished; the count goes back to 0 whenever the
connection has to wait for the client. The request that finds the count at max_pipelined is
answered with `Connection: close`, then the connection closes: the requests behind it get no
response and are never forwarded. So N > max_pipelined requests in one send get exactly
max_pipelined + 1 responses.

Two gateways (workers: 1; max_pipelined 3 and 16) in front of one recording lg-backend; the
recordings tell what the upstream was sent.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, echo_json, get, header  # noqa: E402

CONFIG = lgtest.CONFIG_HEAD + """\
limits: { max_pipelined: {MAX_PIPELINED}, idle_timeout: 30s }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ], timeouts: { connect: 1s, read: 5s } }
routes:
  - { name: all, match: { path: "/*" }, upstream: app }
"""


def connection_of(r):
    return (header(r.headers, "connection") or "").lower()


class PipeliningBoundTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # stopped in reverse order after the class, also when this fails part-way
        cls.app = cls.enterClassContext(lgtest.Backend("app", record_dir=True))

        def gateway(max_pipelined):
            values = {"APP_PORT": cls.app.port, "MAX_PIPELINED": max_pipelined}
            return cls.enterClassContext(lgtest.Gateway(CONFIG, values=values))
        cls.gw3, cls.gw16 = gateway(3), gateway(16)

    def setUp(self):
        for gw in (self.gw3, self.gw16):
            self.assertTrue(gw.alive(), "gateway died:\n" + gw.stderr_text()[-2000:])

    def send_pipelined(self, c, paths):
        """Sends GETs for `paths` back to back in one send on `c`; -> the upstream's mark from before."""
        mark = self.app.mark()
        c.send(b"".join(get(p) for p in paths))
        return mark

    def forwarded_targets(self, mark, at_least):
        """Targets the upstream received since `mark` (waits, bounded, for `at_least` of them,
        then a little longer so that a request forwarded late would be seen too)."""
        try:
            lgtest.wait_until(lambda: len(self.app.new_requests(mark)) >= at_least, 3.0,
                              what=f"{at_least} requests at the upstream")
        except TimeoutError:
            pass
        time.sleep(0.3)
        return [r.target for r in self.app.new_requests(mark)]

    # ---- max_pipelined: 3 ---------------------------------------------------------------------
    def test_six_pipelined_get_four_responses_then_close(self):
        paths = [f"/echo?i={i}" for i in range(6)]
        with RawConn(self.gw3.port) as c:
            mark = self.send_pipelined(c, paths)
            data = c.read_until_close(timeout=5)
            self.assertTrue(c.closed, f"the connection is still open after the bound: {data[-300:]!r}")
        responses, complete, rest = lgtest.parse_responses_detail(data)
        self.assertTrue(complete, f"a response was cut short: {data[-300:]!r}")
        self.assertEqual(rest, b"")
        # requests 0..2 were answered keep-alive; request 3 was the third one already buffered
        # when reached (max_pipelined: 3), so it is answered with Connection: close
        self.assertEqual([r.status for r in responses], [200] * 4, data[:500])
        self.assertEqual([echo_json(r.body)["target"] for r in responses], paths[:4])
        self.assertEqual([connection_of(r) == "close" for r in responses], [False, False, False, True],
                         [r.headers for r in responses])
        # requests 4 and 5 were dropped with the connection, not forwarded
        self.assertEqual(self.forwarded_targets(mark, 4), paths[:4])

    def test_exactly_at_the_bound(self):
        # four requests in one send: the fourth reaches the bound, is answered and closes
        paths = [f"/echo?n={i}" for i in range(4)]
        with RawConn(self.gw3.port) as c:
            mark = self.send_pipelined(c, paths)
            rs = [c.read_response(timeout=3) for _ in paths]
            self.assertEqual([echo_json(r.body)["target"] for r in rs], paths)
            self.assertEqual(connection_of(rs[-1]), "close", rs[-1].headers)
            self.assertTrue(c.is_closed_by_peer(wait=2.0), "connection left open after Connection: close")
            self.assertEqual(c.buf, b"", "bytes after the response that closed the connection")
        self.assertEqual(self.forwarded_targets(mark, 4), paths)

    def test_requests_in_turn_are_not_pipelined(self):
        # waiting for each response resets the count: six requests in turn all stay keep-alive
        mark = self.app.mark()
        paths = [f"/echo?seq={i}" for i in range(6)]
        with RawConn(self.gw3.port) as c:
            for p in paths:
                c.send(get(p))
                r = c.read_response(timeout=3)
                self.assertEqual(r.status, 200)
                self.assertEqual(echo_json(r.body)["target"], p)
                self.assertNotEqual(connection_of(r), "close", f"{p}: {r.headers}")
            self.assertFalse(c.is_closed_by_peer(wait=0.3))
        self.assertEqual(self.forwarded_targets(mark, 6), paths)

    # ---- max_pipelined: 16 --------------------------------------------------------------------
    def test_three_pipelined_under_the_bound_keep_the_connection_open(self):
        paths = [f"/echo?u={i}" for i in range(3)]
        with RawConn(self.gw16.port) as c:
            mark = self.send_pipelined(c, paths)
            rs = [c.read_response(timeout=3) for _ in paths]
            self.assertEqual([r.status for r in rs], [200] * 3)
            self.assertEqual([echo_json(r.body)["target"] for r in rs], paths)
            self.assertEqual([connection_of(r) for r in rs if connection_of(r) == "close"], [],
                             [r.headers for r in rs])
            self.assertEqual(c.buf, b"", "bytes after the third response")
            self.assertFalse(c.is_closed_by_peer(wait=0.5), "the connection closed under the bound")
            # a fourth request later on the same connection works
            c.send(get("/echo?later=1"))
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 200)
            self.assertEqual(echo_json(r.body)["target"], "/echo?later=1")
            self.assertNotEqual(connection_of(r), "close", r.headers)
        self.assertEqual(self.forwarded_targets(mark, 4), paths + ["/echo?later=1"])

    def test_zz_no_connection_leak(self):
        # runs last (alphabetical order): every connection the other tests opened is closed
        for gw in (self.gw3, self.gw16):
            lgtest.assert_no_connection_leak(self, gw.admin_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
