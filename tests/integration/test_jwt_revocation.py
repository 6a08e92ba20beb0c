#!/usr/bin/env python3
"""JWT revocation by jti shared through Redis (issue 4, points 3 and 7).

One redis-server (started here on a free loopback port, no persistence, stopped by PID) and two
lunagate instances (2 workers each) pointing at it:
  - a jti revoked through instance A's admin API is refused (401) by instance B, another token
    still passes; the Redis entry carries the revocation's TTL; a `revocation: local` route does
    not ask Redis (it sees what its process knows);
  - redis-server killed: on_failure open -> 200 and gateway_jwt_revocation_bypassed_total grows,
    a revocation already seen stays refused, the admin API answers 503 and says the revocation
    only holds in its own instance; on_failure closed -> 503 with Retry-After (a token without jti
    is not looked up: 200);
  - redis-server back on the same port -> lookups resume within seconds;
  - without a redis section the process's blocklist still works, and `revocation: redis` is
    refused by `lunagate check` with file:line.
"""
import json
import os
import socket
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import Backend, Gateway, http  # noqa: E402
from test_policies import SECRET, claims, token  # noqa: E402  (HS256 tokens made with hmac)
from test_redis_limits import REDIS_BIN, RedisServer  # noqa: E402

WORKERS = 2
RESUME_LIMIT_S = 6.0  # reconnect backoff doubles up to 2 s by default


def config(redis_port=None, on_failure="open"):
    jwt = ("jwt: { issuer: \"https://issuer.test\", audience: gateway.test, "
           f"keys: [ {{ kid: hs-1, alg: HS256, secret: \"{SECRET}\" }} ]{{REV}} }}")
    routes = [("jwt", "")]
    if redis_port:
        routes.append(("local", ", revocation: local"))
    text = (f"workers: {WORKERS}\n"
            "listen: [ { address: \"127.0.0.1:{PORT}\" } ]\n"
            "admin: { address: \"127.0.0.1:{ADMIN_PORT}\" }\n"
            "log: { access: off, error: stderr, level: info }\n")
    if redis_port:
        text += f"redis: {{ address: \"127.0.0.1:{redis_port}\", timeout: 200ms, on_failure: {on_failure} }}\n"
    text += "upstreams:\n  app: { targets: [ \"127.0.0.1:{APP_PORT}\" ] }\nroutes:\n"
    for name, rev in routes:
        text += (f"  - name: {name}\n    match: {{ path: \"/{name}/*\" }}\n    upstream: app\n"
                 f"    policies: [ {{ {jwt.replace('{REV}', rev)} }} ]\n")
    return text


def new_token(with_jti=True):
    jti = "t-" + uuid.uuid4().hex[:12]
    return jti, token(claims(jti=jti if with_jti else None))


def get(port, tok, route="jwt"):
    """A new connection each time, so requests spread over the workers."""
    return http(port, "GET", f"/{route}/x", headers={"Authorization": "Bearer " + tok})


def revoke(admin_port, jti, ttl=300):
    st, _, body = http(admin_port, "POST", f"/admin/jwt/revoke?jti={jti}&ttl={ttl}")
    return st, json.loads(body)


def redis_command(port, *args):
    """One RESP command on a fresh connection; returns the reply line (integers and statuses)."""
    req = f"*{len(args)}\r\n" + "".join(f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(req.encode())
        return s.recv(4096).decode().split("\r\n")[0]


def bypassed(gw):
    return lgtest.metric(lgtest.get_metrics(gw.admin_port), "gateway_jwt_revocation_bypassed_total", route="jwt")


@unittest.skipUnless(REDIS_BIN, "redis-server not installed (tools/setup.sh installs it)")
class SharedRevocation(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.close)
        self.app = Backend("app").__enter__()
        self.addCleanup(self.app.stop)

    def gateways(self, on_failure="open", n=2):
        gws = []
        for _ in range(n):
            gw = Gateway(config(self.redis.port, on_failure), values={"APP_PORT": self.app.port})
            gw.__enter__()
            self.addCleanup(gw.close)
            gws.append(gw)
        return gws

    def wait_for_redis(self, gws, tok):
        """Every worker connected: a token passes on every instance (closed mode gives 503 before)."""
        for gw in gws:
            lgtest.wait_until(lambda: all(get(gw.port, tok)[0] == 200 for _ in range(4)), 10,
                              what="the workers' redis connections")

    def test_revoked_through_one_instance_refused_by_the_other(self):
        a, b = self.gateways("closed")
        jti1, t1 = new_token()
        _, t2 = new_token()
        self.wait_for_redis([a, b], t2)
        self.assertEqual(get(b.port, t1)[0], 200)
        self.assertEqual(revoke(a.admin_port, jti1), (200, {"revoked": True}))
        ttl = int(redis_command(self.redis.port, "TTL", f"lunagate:jwt:revoked:{jti1}")[1:])
        self.assertTrue(290 <= ttl <= 300, ttl)
        # Revoking again with a shorter TTL keeps the longer one; a longer TTL extends it.
        self.assertEqual(revoke(b.admin_port, jti1, ttl=5), (200, {"revoked": True}))
        ttl = int(redis_command(self.redis.port, "TTL", f"lunagate:jwt:revoked:{jti1}")[1:])
        self.assertTrue(290 <= ttl <= 300, ttl)
        self.assertEqual(revoke(b.admin_port, jti1, ttl=900), (200, {"revoked": True}))
        ttl = int(redis_command(self.redis.port, "TTL", f"lunagate:jwt:revoked:{jti1}")[1:])
        self.assertTrue(890 <= ttl <= 900, ttl)
        for _ in range(6):  # both workers of both instances
            st, h, _ = get(b.port, t1)
            self.assertEqual(st, 401)
            self.assertIn("invalid_token", h.get("www-authenticate", ""))
            self.assertEqual(get(a.port, t1)[0], 401)
            self.assertEqual(get(b.port, t2)[0], 200)
        # revocation: local asks nobody: a revocation B never saw passes there, until B learns it
        jti3, t3 = new_token()
        self.assertEqual(revoke(a.admin_port, jti3)[0], 200)
        self.assertEqual(get(b.port, t3, "local")[0], 200)
        self.assertEqual(get(b.port, t3)[0], 401)
        self.assertEqual(get(b.port, t3, "local")[0], 401)  # B's process blocklist has it now

    def kill_redis(self, gws, tok):
        self.wait_for_redis(gws, tok)
        self.redis.kill()

    def resumes(self, a, b):
        """redis-server back on its port: a jti revoked through A is refused by B within seconds."""
        self.redis.start()
        t0 = time.monotonic()
        jti, tok = new_token()
        lgtest.wait_until(lambda: revoke(a.admin_port, jti)[0] == 200, 5, what="the admin's redis write")
        refused = 0
        while time.monotonic() - t0 < 15 and refused < 4:
            refused = refused + 1 if get(b.port, tok)[0] == 401 else 0  # every worker, in a row
            time.sleep(0.02)
        took = time.monotonic() - t0
        print(f"\nrevocation lookups resumed {took:.2f} s after redis-server restarted", file=sys.stderr)
        self.assertEqual(refused, 4)
        self.assertLess(took, RESUME_LIMIT_S)

    def test_fail_open_then_recover(self):
        a, b = self.gateways("open")
        jti_old, t_old = new_token()
        _, t_ok = new_token()
        self.assertEqual(revoke(a.admin_port, jti_old)[0], 200)
        self.wait_for_redis([a, b], t_ok)
        self.assertEqual(get(b.port, t_old)[0], 401)  # B learns it from Redis and keeps it
        before = bypassed(b)
        self.kill_redis([a, b], t_ok)
        statuses = [get(b.port, t_ok)[0] for _ in range(10)]
        self.assertEqual(statuses, [200] * 10)
        counted = bypassed(b) - before
        print(f"\nfail-open: 10 tokens accepted unchecked, {counted:.0f} bypasses counted", file=sys.stderr)
        self.assertGreaterEqual(counted, 10)
        self.assertEqual(get(b.port, t_old)[0], 401)  # the positive cache still refuses it
        # The admin API cannot reach Redis: 503, says so, and its own instance refuses the token.
        jti_new, t_new = new_token()
        st, body = revoke(a.admin_port, jti_new)
        self.assertEqual(st, 503)
        self.assertFalse(body["revoked"])
        self.assertTrue(body["local"])
        self.assertIn("redis", body["error"])
        self.assertEqual(get(a.port, t_new)[0], 401)
        self.resumes(a, b)

    def test_fail_closed_then_recover(self):
        a, b = self.gateways("closed")
        _, t_ok = new_token()
        _, no_jti = new_token(with_jti=False)
        self.kill_redis([a, b], t_ok)
        for _ in range(6):
            st, h, body = get(b.port, t_ok)
            self.assertEqual(st, 503, body)
            self.assertEqual(h.get("retry-after"), "1")
            self.assertEqual(get(b.port, no_jti)[0], 200)  # nothing to look up
        self.assertEqual(bypassed(b), 0)
        self.resumes(a, b)
        self.assertEqual(get(b.port, t_ok)[0], 200)


class WithoutRedis(unittest.TestCase):
    def test_process_blocklist(self):
        with Backend("app") as app, Gateway(config(), values={"APP_PORT": app.port}) as gw:
            jti1, t1 = new_token()
            _, t2 = new_token()
            self.assertEqual(get(gw.port, t1)[0], 200)
            self.assertEqual(revoke(gw.admin_port, jti1), (200, {"revoked": True}))
            for _ in range(4):
                self.assertEqual(get(gw.port, t1)[0], 401)
                self.assertEqual(get(gw.port, t2)[0], 200)

    def test_revoke_takes_a_percent_encoded_jti(self):
        with Backend("app") as app, Gateway(config(), values={"APP_PORT": app.port}) as gw:
            jti = "a b/ü+" + uuid.uuid4().hex[:6]  # a jti is any string (RFC 7519)
            tok = token(claims(jti=jti))
            self.assertEqual(get(gw.port, tok)[0], 200)
            self.assertEqual(revoke(gw.admin_port, urllib.parse.quote(jti, safe="")), (200, {"revoked": True}))
            self.assertEqual(get(gw.port, tok)[0], 401)
            for bad in ("%zz", "abc%2", "x%0Ay", ""):
                st, body = revoke(gw.admin_port, bad)
                self.assertEqual(st, 400, bad)
                self.assertIn("jti", body["error"])

    def test_revocation_redis_needs_a_redis_section(self):
        text = config().replace("keys:", "revocation: redis, keys:")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gw.yaml")
            with open(path, "w") as f:
                f.write(lgtest.fill(text, {"PORT": 1, "ADMIN_PORT": 2, "APP_PORT": 3}))
            rc, out, err = lgtest.run_cli(["check", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn("gw.yaml:11: routes[0].policies[0].jwt.revocation: revocation: redis needs a top-level "
                      "redis section", out + err)


if __name__ == "__main__":
    unittest.main()
