"""The runnable examples of examples/scripting, as shipped: their config (ports swapped for free
ones) and scripts, against real backends."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

EXAMPLE = os.path.join(lgtest.LG_SOURCE_DIR,
                       "examples", "scripting")


def example_files():
    files = {}
    sdir = os.path.join(EXAMPLE, "scripts")
    for name in os.listdir(sdir):
        with open(os.path.join(sdir, name)) as f:
            files["scripts/" + name] = f.read()
    return files


def example_config():
    with open(os.path.join(EXAMPLE, "gateway.yaml")) as f:
        text = f.read()
    text = text.replace("127.0.0.1:8080", "127.0.0.1:{PORT}").replace("127.0.0.1:9901", "127.0.0.1:{ADMIN_PORT}")
    for port, key in (("9101", "STABLE"), ("9102", "CANARY"), ("9103", "TENANTS")):
        text = text.replace("127.0.0.1:" + port, "127.0.0.1:{%s}" % key)
    return text.replace("workers: 2", "workers: 2\nlog: { access: stdout, error: stderr, level: info }")


class ExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = []
        cls.stable = lgtest.Backend("stable").__enter__()
        cls.canary = lgtest.Backend("canary").__enter__()
        cls.tenants = lgtest.Backend("tenants").__enter__()
        cls.gw = lgtest.Gateway(example_config(), extra_files=example_files(),
                                values={"STABLE": cls.stable.port, "CANARY": cls.canary.port,
                                        "TENANTS": cls.tenants.port}).__enter__()

    @classmethod
    def tearDownClass(cls):
        for x in (cls.gw, cls.tenants, cls.canary, cls.stable):
            x.__exit__(None, None, None)

    def get(self, path, headers=None):
        return lgtest.http(self.gw.port, "GET", path, headers=headers or {})

    def echo_headers(self, body):
        return {k.lower(): v for k, v in lgtest.echo_json(body)["headers"]}

    def test_tenant_header(self):
        st, _, body = self.get("/tenants/echo")
        self.assertEqual(st, 400, body)
        self.assertIn(b"missing or invalid X-Tenant", body)
        st, _, body = self.get("/tenants/echo", {"X-Tenant": "acme", "X-Tenant-ID": "spoofed"})
        self.assertEqual(st, 200, body)
        seen = self.echo_headers(body)
        self.assertEqual(seen.get("x-tenant-id"), "acme")
        self.assertNotIn("x-tenant", seen)

    def test_header_rewrite_is_global(self):
        st, h, body = self.get("/tenants/echo", {"X-Tenant": "t1", "Cookie": "secret=1", "User-Agent": "ua-test"})
        self.assertEqual(st, 200)
        seen = self.echo_headers(body)
        self.assertEqual(seen.get("x-client-agent"), "ua-test")
        self.assertNotIn("cookie", seen)
        self.assertEqual(h.get("x-served-by"), "lunagate")

    def test_canary_by_header_and_share(self):
        st, h, _ = self.get("/app/x", {"X-Canary": "1"})
        self.assertEqual((st, h.get("x-backend")), (200, "canary"))
        st, h, _ = self.get("/app/x", {"X-Canary": "0"})
        self.assertEqual((st, h.get("x-backend")), (200, "stable"))
        canary = sum(self.get("/app/x")[1].get("x-backend") == "canary" for _ in range(200))
        self.assertTrue(2 <= canary <= 50, f"{canary} of 200 went to the canary (configured 10%)")

    def test_json_filter_body_phase(self):
        st, h, body = self.get("/filtered/echo")
        self.assertEqual(st, 200, body)
        obj = __import__("json").loads(body)
        self.assertEqual(obj.get("backend"), "stable")
        self.assertNotIn("headers", obj)
        self.assertNotIn("body", obj)
        self.assertEqual(h.get("content-length"), str(len(body)))
        self.assertEqual(h.get("x-filtered"), "1")
        # the connection stays usable after a buffered response
        st2, _, body2 = self.get("/filtered/echo")
        self.assertEqual(st2, 200)
        st3, _, _ = self.get("/filtered/stream?bytes=100")  # not JSON: passed through unchanged
        self.assertEqual(st3, 200)

    def test_api_key_shared_and_rate_limited(self):
        st, h, body = self.get("/api/echo")
        self.assertEqual(st, 401, body)
        self.assertIn("ApiKey", h.get("www-authenticate", ""))
        self.assertEqual(self.get("/api/echo", {"X-API-Key": "nope"})[0], 401)
        st, _, body = self.get("/api/echo", {"X-API-Key": "k-alice"})
        self.assertEqual(st, 200, body)
        seen = self.echo_headers(body)
        self.assertEqual(seen.get("x-consumer-id"), "alice")
        self.assertNotIn("x-api-key", seen)
        statuses = [self.get("/api/echo", {"X-API-Key": "k-bob"})[0] for _ in range(12)]
        self.assertIn(429, statuses, f"5/s for bob: {statuses}")
        self.assertLessEqual(statuses.count(200), 7)
        found, lines = False, []
        for _ in range(40):  # the access log is flushed on the worker's 50 ms tick
            lines = [l for l in self.gw.access_log_lines() if l.get("path") == "/api/echo" and l.get("status") == 200]
            found = any(l.get("consumer") == "alice" for l in lines)
            if found:
                break
            time.sleep(0.05)
        self.assertTrue(found, lines[-3:])

    def test_bff_fan_out_and_merge(self):
        st, h, body = self.get("/bff/dashboard?user=42")
        self.assertEqual(st, 200, body)
        self.assertEqual(h.get("x-bff-parts"), "2/2")
        obj = __import__("json").loads(body)
        self.assertEqual(obj["profile"]["backend"], "stable")
        self.assertEqual(obj["orders"]["backend"], "tenants")
        self.assertEqual(obj["profile"]["target"], "/echo?user=42")
        self.assertEqual(obj["orders"]["target"], "/echo?user=42")
        self.assertNotIn("errors", obj)
        # both parts carry the client's request id
        for part in ("profile", "orders"):
            ids = [v for n, v in obj[part]["headers"] if n.lower() == "x-request-id"]
            self.assertEqual(ids, [h.get("x-request-id")])

    def test_zz_bff_partial_answer_when_a_backend_is_down(self):  # last: it stops backends
        self.tenants.stop()
        st, h, body = self.get("/bff/dashboard")
        self.assertEqual(st, 200, body)
        self.assertEqual(h.get("x-bff-parts"), "1/2")
        obj = __import__("json").loads(body)
        self.assertEqual(obj["profile"]["backend"], "stable")
        self.assertEqual(obj["errors"], {"orders": "connect failed"})
        self.stable.stop()
        st, h, body = self.get("/bff/dashboard")
        self.assertEqual(st, 502, body)
        self.assertEqual(h.get("x-bff-parts"), "0/2")


if __name__ == "__main__":
    unittest.main()
