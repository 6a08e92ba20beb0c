#!/usr/bin/env python3
"""Native route policies end to end (issue 4): consumers with key-auth (header or query, plain or
sha256-stored keys, 401 + WWW-Authenticate), acl by consumer groups (403), jwt (HS256 tokens
made here; 401 for missing/invalid/expired/alg none, 403 for a missing scope, claims to upstream
headers), identity headers never spoofable, cors (preflight answered at the gateway, fields on
actual responses, disallowed origins), ip-restriction behind a trusted proxy (X-Forwarded-For),
rate limits (token bucket and sliding window, several limits per route, 429 with Retry-After and
RateLimit-* fields, the metric), and a config with a bad policy rejected with file:line.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import Backend, Gateway, echo_json, http  # noqa: E402

SECRET = "0123456789abcdef0123456789abcdef"  # HS256 needs at least 32 bytes
BOB_KEY = "bob-key-0002"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims, alg="HS256", kid="hs-1", secret=SECRET):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(sig)


def claims(**over):
    now = int(time.time())
    c = {"iss": "https://issuer.test", "aud": "gateway.test", "sub": "alice", "iat": now, "exp": now + 300,
         "scope": "read write"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def route(name, policies):
    return (f"  - name: {name}\n"
            f"    match: {{ host: [ {name}.test ], path: \"/*\" }}\n"
            f"    upstream: app\n"
            f"    policies: {policies}\n")


CONFIG = lgtest.CONFIG_HEAD + f"""\
consumers:
  - {{ id: alice, keys: [ alice-key-0001 ], groups: [ partner, beta ], tenant: acme }}
  - {{ id: bob, keys: [ "sha256:{hashlib.sha256(BOB_KEY.encode()).hexdigest()}" ], groups: [ basic ] }}
upstreams:
  app: {{ targets: [ "127.0.0.1:{{APP_PORT}}" ] }}
routes:
  - name: plain
    match: {{ host: [ plain.test ], path: "/*" }}
    upstream: app
""" + "".join([
    route("keyed", "[ { key-auth: { header: X-API-Key, query: apikey } } ]"),
    route("partners", "[ { key-auth: {} }, { acl: { allow: [ partner ] } } ]"),
    route("jwt", "[ { jwt: { issuer: \"https://issuer.test\", audience: gateway.test, leeway: 30s, max_lifetime: 1h, "
                 f"keys: [ {{ kid: hs-1, alg: HS256, secret: \"{SECRET}\" }} ], "
                 "claims_to_headers: { scope: X-Scopes, email: X-Email }, required_scopes: [ read ] } }, "
                 "{ acl: { allow: [ partner ] } } ]"),
    route("cors", "[ { cors: { origins: [ \"https://app.example\" ], credentials: true, "
                  "headers: [ Content-Type, X-API-Key ], expose: [ X-Request-ID ], max_age: 10m } } ]"),
    route("ipr", "[ { ip-restriction: { allow: [ 10.0.0.0/8, \"2001:db8::/32\" ], deny: [ 10.9.0.0/16 ], "
                 "trusted_proxies: [ 127.0.0.1 ] } } ]"),
    route("limited", "[ { key-auth: {} }, { rate-limit: { limits: [ { limit: 3, per: 1m }, { limit: 100, per: 1d } ], "
                     "by: consumer, legacy_headers: true } } ]"),
    route("window", "[ { rate-limit: { limit: 2, per: 1m, algorithm: sliding_window, by: header, header: X-Client } } ]"),
    route("hdrset", "[ { headers: { response: { set: { X-Backend: policy } } } } ]"),
    route("byip", "[ { rate-limit: { limit: 1, per: 1m, by: ip, trusted_proxies: [ 127.0.0.1 ] } } ]"),
    route("tiered", "[ { key-auth: {} }, { rate-limit: { limit: 1, per: 1m, "
                    "consumers: { alice: [ { limit: 3, per: 1m } ] } } }, "
                    "{ headers: { request: { set: { X-Gateway: lunagate }, remove: [ X-Remove-Me ] }, "
                    "response: { set: { X-Served-By: lunagate } } } } ]"),
])


class Policies(lgtest.AppGatewayMixin, unittest.TestCase):
    CONFIG = CONFIG

    def get(self, host, path="/echo", headers=None, method="GET"):
        h = {"Host": host}
        h.update(headers or {})
        return http(self.gw.port, method, path, headers=h)

    def upstream_headers(self, body):
        return {k.lower(): v for k, v in echo_json(body)["headers"]}

    # ---- key-auth ----------------------------------------------------------------------------
    def test_key_auth(self):
        st, h, body = self.get("keyed.test")
        self.assertEqual(st, 401, body)
        self.assertIn("ApiKey", h.get("www-authenticate", ""))
        self.assertEqual(json.loads(body)["error"], "missing API key")
        st, _, body = self.get("keyed.test", headers={"X-API-Key": "nope-nope-nope"})
        self.assertEqual((st, json.loads(body)["error"]), (401, "invalid API key"))
        st, _, body = self.get("keyed.test", headers={"X-API-Key": "alice-key-0001", "X-Consumer-ID": "mallory",
                                                      "X-Tenant-ID": "evil", "X-Consumer-Groups": "admin"})
        self.assertEqual(st, 200, body)
        up = self.upstream_headers(body)
        self.assertEqual(up.get("x-consumer-id"), "alice")
        self.assertEqual(up.get("x-tenant-id"), "acme")
        self.assertEqual(up.get("x-consumer-groups"), "partner,beta")
        self.assertNotIn("x-api-key", up)  # hide_credentials
        # a key stored as its sha256, and a key in the query string
        st, _, body = self.get("keyed.test", "/echo?a=1&apikey=" + BOB_KEY + "&b=2")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.upstream_headers(body).get("x-consumer-id"), "bob")
        self.assertEqual(echo_json(body)["target"], "/echo?a=1&b=2")  # the key left the query
        # the access log names the consumer
        lines = lgtest.wait_until(lambda: [l for l in self.gw.access_log_lines() if l.get("consumer") == "bob"], 3,
                                  what="access log line with consumer bob")
        self.assertEqual(lines[-1]["status"], 200)

    def test_acl_by_group(self):
        self.assertEqual(self.get("partners.test", headers={"X-API-Key": "alice-key-0001"})[0], 200)
        st, _, body = self.get("partners.test", headers={"X-API-Key": BOB_KEY})
        self.assertEqual(st, 403, body)
        self.assertEqual(self.get("partners.test")[0], 401)

    def test_identity_headers_are_never_spoofed(self):
        st, _, body = self.get("plain.test", headers={"X-Consumer-ID": "mallory", "X-Tenant-ID": "evil",
                                                      "X-Scopes": "admin", "X-Consumer-Groups": "root",
                                                      "X_Consumer_ID": "mallory", "x_tenant_id": "evil"})
        self.assertEqual(st, 200)
        up = self.upstream_headers(body)
        for name in ("x-consumer-id", "x-tenant-id", "x-scopes", "x-consumer-groups", "x_consumer_id", "x_tenant_id"):
            self.assertNotIn(name, up)

    def test_duplicate_credentials_are_refused(self):
        with lgtest.RawConn(self.gw.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\nHost: keyed.test\r\nX-API-Key: alice-key-0001\r\n"
                   b"X-API-Key: " + BOB_KEY.encode() + b"\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)

    # ---- jwt ---------------------------------------------------------------------------------
    def test_jwt(self):
        st, h, body = self.get("jwt.test")
        self.assertEqual((st, json.loads(body)["error"]), (401, "missing bearer token"), body)
        self.assertTrue(h.get("www-authenticate", "").startswith("Bearer"))
        good = token(claims(email="alice@example.test"))
        st, _, body = self.get("jwt.test", headers={"Authorization": "Bearer " + good, "X-Email": "spoofed",
                                                    "X-Scopes": "admin"})
        self.assertEqual(st, 200, body)
        up = self.upstream_headers(body)
        self.assertEqual(up.get("x-consumer-id"), "alice")  # sub -> consumer alice (acl: partner)
        self.assertEqual(up.get("x-scopes"), "read write")
        self.assertEqual(up.get("x-email"), "alice@example.test")
        self.assertEqual(up.get("authorization"), "Bearer " + good)
        # no email claim: the client's X-Email does not pass either
        st, _, body = self.get("jwt.test", headers={"Authorization": "bearer " + token(claims()), "X-Email": "x"})
        self.assertEqual(st, 200, body)
        self.assertNotIn("x-email", self.upstream_headers(body))
        bad = {
            "expired": token(claims(exp=int(time.time()) - 120)),
            "wrong secret": token(claims(), secret="another-secret-another-secret-32b"),
            "alg none": token(claims(), alg="none"),
            "wrong audience": token(claims(aud="other")),
            "wrong issuer": token(claims(iss="https://evil.test")),
            "too long lived": token(claims(exp=int(time.time()) + 7200)),
            "unknown kid": token(claims(), kid="hs-9"),
            "garbage": "abc.def.ghi",
        }
        for what, t in bad.items():
            st, h, body = self.get("jwt.test", headers={"Authorization": "Bearer " + t})
            self.assertEqual(st, 401, what)
            self.assertIn('error="invalid_token"', h.get("www-authenticate", ""), what)
        st, h, body = self.get("jwt.test", headers={"Authorization": "Bearer " + token(claims(scope="write"))})
        self.assertEqual(st, 403, body)
        self.assertIn("insufficient_scope", h.get("www-authenticate", ""))
        # a subject that is no header value (CR LF) is refused, not forwarded
        st, _, _ = self.get("jwt.test", headers={"Authorization": "Bearer " + token(claims(sub="a\r\nX-Evil: 1"))})
        self.assertEqual(st, 401)
        # a valid token of a consumer outside the acl's groups
        st, _, _ = self.get("jwt.test", headers={"Authorization": "Bearer " + token(claims(sub="bob"))})
        self.assertEqual(st, 403)

    def test_jwt_revocation_by_jti(self):
        t1, t2 = token(claims(jti="tok-1")), token(claims(jti="tok-2"))
        self.assertEqual(self.get("jwt.test", headers={"Authorization": "Bearer " + t1})[0], 200)
        st, _, body = http(self.gw.admin_port, "POST", "/admin/jwt/revoke?jti=tok-1&ttl=300")
        self.assertEqual(st, 200, body)
        self.assertEqual(self.get("jwt.test", headers={"Authorization": "Bearer " + t1})[0], 401)
        self.assertEqual(self.get("jwt.test", headers={"Authorization": "Bearer " + t2})[0], 200)
        self.assertEqual(http(self.gw.admin_port, "POST", "/admin/jwt/revoke")[0], 400)
        self.assertEqual(http(self.gw.admin_port, "GET", "/admin/jwt/revoke?jti=x")[0], 405)

    # ---- cors --------------------------------------------------------------------------------
    def test_cors(self):
        mark = self.app.mark()
        st, h, body = self.get("cors.test", "/echo", method="OPTIONS", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(st, 204, body)
        self.assertEqual(h.get("access-control-allow-origin"), "https://app.example")
        self.assertEqual(h.get("access-control-allow-credentials"), "true")
        self.assertIn("PUT", h.get("access-control-allow-methods", ""))
        self.assertEqual(h.get("access-control-allow-headers"), "Content-Type, X-API-Key")
        self.assertEqual(h.get("access-control-max-age"), "600")
        self.assertEqual(self.app.new_requests(mark), [])  # answered at the gateway
        st, h, _ = self.get("cors.test", "/echo", headers={"Origin": "https://app.example"})
        self.assertEqual(st, 200)
        self.assertEqual(h.get("access-control-allow-origin"), "https://app.example")
        self.assertEqual(h.get("access-control-expose-headers"), "X-Request-ID")
        self.assertIn("Origin", h.get("vary", ""))
        st, h, _ = self.get("cors.test", "/echo", headers={"Origin": "https://evil.example"})
        self.assertEqual(st, 200)
        self.assertNotIn("access-control-allow-origin", h)
        self.assertIn("Origin", h.get("vary", ""))  # caches must keep answers per origin
        self.assertIn("Origin", self.get("cors.test", "/echo")[1].get("vary", ""))
        st, _, _ = self.get("cors.test", "/echo", method="OPTIONS", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        self.assertEqual(st, 403)
        st, _, _ = self.get("cors.test", "/echo", method="OPTIONS", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "CONNECT"})
        self.assertEqual(st, 403)

    # ---- ip-restriction ----------------------------------------------------------------------
    def test_ip_restriction_behind_a_trusted_proxy(self):
        ok = lambda xff: self.get("ipr.test", headers={"X-Forwarded-For": xff} if xff else {})[0]  # noqa: E731
        self.assertEqual(ok("10.1.2.3"), 200)
        self.assertEqual(ok("8.8.8.8, 10.1.2.3"), 200)   # the right-most untrusted hop decides
        self.assertEqual(ok("10.1.2.3, 8.8.8.8"), 403)   # a forged left-most entry is not believed
        self.assertEqual(ok("10.9.1.1"), 403)            # deny wins
        self.assertEqual(ok("2001:db8::7"), 200)
        self.assertEqual(ok(None), 403)                  # the peer itself (127.0.0.1) is not allowed

    # ---- rate limits -------------------------------------------------------------------------
    def test_rate_limit_token_bucket_by_consumer(self):
        alice = {"X-API-Key": "alice-key-0001"}
        got = [self.get("limited.test", headers=alice) for _ in range(4)]
        self.assertEqual([g[0] for g in got], [200, 200, 200, 429])
        h = got[0][1]
        self.assertEqual(h.get("ratelimit-limit"), "3")
        self.assertEqual(h.get("ratelimit-remaining"), "2")
        self.assertEqual(h.get("x-ratelimit-limit-minute"), "3")
        st, h, body = got[3]
        self.assertEqual(json.loads(body)["error"], "rate limit exceeded")
        self.assertGreaterEqual(int(h.get("retry-after", "0")), 1)
        self.assertEqual(h.get("ratelimit-remaining"), "0")
        # another consumer has its own budget
        self.assertEqual(self.get("limited.test", headers={"X-API-Key": BOB_KEY})[0], 200)
        m = lgtest.get_metrics(self.gw.admin_port)
        self.assertGreaterEqual(lgtest.metric(m, "gateway_rate_limit_exceeded_total", route="limited"), 1)

    def test_rate_limit_sliding_window_by_header(self):
        got = [self.get("window.test", headers={"X-Client": "c1"})[0] for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])
        self.assertEqual(self.get("window.test", headers={"X-Client": "c2"})[0], 200)

    def test_rate_limit_by_ip_behind_a_trusted_proxy(self):
        xff = lambda ip: {"X-Forwarded-For": ip}  # noqa: E731
        self.assertEqual(self.get("byip.test", headers=xff("10.0.0.1"))[0], 200)
        self.assertEqual(self.get("byip.test", headers=xff("10.0.0.1"))[0], 429)
        self.assertEqual(self.get("byip.test", headers=xff("10.0.0.2"))[0], 200)  # another client

    def test_per_consumer_limits_and_header_rules(self):
        st, h, body = self.get("tiered.test", headers={"X-API-Key": "alice-key-0001", "X-Remove-Me": "x",
                                                       "X-Gateway": "spoofed"})
        self.assertEqual(st, 200, body)
        up = self.upstream_headers(body)
        self.assertEqual(up.get("x-gateway"), "lunagate")
        self.assertNotIn("x-remove-me", up)
        self.assertEqual(h.get("x-served-by"), "lunagate")
        # set replaces what the upstream sent under that name (lg-backend sends X-Backend)
        st, h, _ = self.get("hdrset.test")
        self.assertEqual((st, h.get("x-backend")), (200, "policy"))
        alice = [self.get("tiered.test", headers={"X-API-Key": "alice-key-0001"})[0] for _ in range(3)]
        self.assertEqual(alice, [200, 200, 429])  # her own limit: 3 per minute
        bob = [self.get("tiered.test", headers={"X-API-Key": BOB_KEY})[0] for _ in range(2)]
        self.assertEqual(bob, [200, 429])  # the route's: 1 per minute


class BadPolicyConfig(unittest.TestCase):
    def test_bad_policies_are_rejected_with_file_and_line(self):
        import tempfile
        cfg = lgtest.CONFIG_HEAD.replace("{PORT}", "1").replace("{ADMIN_PORT}", "2") + """\
upstreams:
  app: { targets: [ "127.0.0.1:1" ] }
routes:
  - name: r
    match: { path: "/*" }
    upstream: app
    policies:
      - ip-restriction: { allow: [ 10.0.0.0/33 ] }
      - jwt: { keys: [ { kid: k, alg: HS256, secret: short } ] }
"""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gw.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            rc, out, err = lgtest.run_cli(["check", "-c", path])
        text = out + err
        self.assertNotEqual(rc, 0, text)
        self.assertIn("gw.yaml:12: routes[0].policies[0]", text)
        self.assertIn("10.0.0.0/33", text)
        self.assertIn("gw.yaml:13: routes[0].policies[1]", text)  # an HMAC secret shorter than the hash
        # and the reader's own checks, with the key's line
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gw.yaml")
            with open(path, "w") as f:
                f.write(cfg.replace("      - jwt: { keys: [ { kid: k, alg: HS256, secret: short } ] }\n",
                                    "      - rate-limit: { limit: 0, per: 1s }\n      - nope: {}\n"
                                    "      - headers: { request: { set: { Content-Length: \"0\" } } }\n"))
            rc, out, err = lgtest.run_cli(["check", "-c", path])
        self.assertNotEqual(rc, 0)
        self.assertIn("gw.yaml:13: routes[0].policies[1].rate-limit.limit", out + err)
        self.assertIn("gw.yaml:14: routes[0].policies[2]: unknown policy 'nope'", out + err)
        self.assertIn("'Content-Length' (framing, hop-by-hop and gateway fields cannot be set)", out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
