#!/usr/bin/env python3
"""jwt keys fetched from a JWKS URL over HTTPS (issue 4): a tiny HTTPS server started here on
127.0.0.1 (python http.server + ssl, certificates from the openssl CLI) serves a JWK Set of HMAC
("oct") keys and counts its hits. Keys from the URL verify tokens, alone or next to static keys;
a token with a new kid makes the gateway refresh and the request waits for it; a flood of unknown
kids costs at most one fetch per minimum interval; a stopped server or an invalid document keeps
the last good keys (counted in gateway_jwks_fetches_total{result="error"}); a wrong CA loads
nothing; the gateway starts without the server and its tokens pass once a fetch succeeds; a
server that never answers bounds a waiting request by jwks_timeout; a reload keeps the fetched keys; `lunagate check` refuses http:// URLs with file:line.
"""
import base64
import hashlib
import hmac
import http.server as http_server
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
import tls_support  # noqa: E402
from lgtest import Backend, Gateway, echo_json, get_metrics, http, metric, wait_until  # noqa: E402

SECRETS = {k: (k * 40)[:40] for k in ("k1", "k2", "k3", "static-1")}  # HS256: >= 32 bytes
CERTS = {}


def setUpModule():
    d = tempfile.mkdtemp(prefix="lg-jwks-certs-")
    CERTS["dir"] = d
    CERTS["ca"], ca_key = tls_support.make_ca(d, "ca", "/CN=JWKS Test CA")
    CERTS["cert"], CERTS["key"] = tls_support.make_signed(d, CERTS["ca"], ca_key, "idp", "/CN=127.0.0.1",
                                                          "subjectAltName=IP:127.0.0.1")
    CERTS["other_ca"], _ = tls_support.make_ca(d, "other-ca", "/CN=Another CA")


def tearDownModule():
    if not lgtest.KEEP_TMP:
        shutil.rmtree(CERTS.get("dir", ""), ignore_errors=True)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks(*kids):
    return json.dumps({"keys": [{"kty": "oct", "kid": k, "alg": "HS256", "use": "sig",
                                 "k": b64u(SECRETS[k].encode())} for k in kids]}).encode()


def token(kid, secret=None, sub="alice", jti=None):
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = {"iss": "https://idp.test", "sub": sub, "iat": now, "exp": now + 300}
    if jti:
        claims["jti"] = jti
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    sig = hmac.new((secret or SECRETS.get(kid, "x" * 40)).encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(sig)


class JwksServer:
    """HTTPS on 127.0.0.1 (port picked at bind, or `port`): GET /jwks.json answers `self.body`
    with `self.status`; `self.hits` counts requests. stop() closes the socket."""

    def __init__(self, body, port=0):
        self.body, self.status, self.hits = body, 200, 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http_server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with owner.lock:
                    owner.hits += 1
                    body, status = owner.body, owner.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http_server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERTS["cert"], CERTS["key"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def set(self, body=None, status=None):
        with self.lock:
            if body is not None:
                self.body = body
            if status is not None:
                self.status = status

    def count(self):
        with self.lock:
            return self.hits

    def stop(self):
        if self.thread:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def config(jwks_port, extra="", static=False, scheme="https", symmetric=True):
    # The test's keys are HMAC ("oct") keys: accepted from a URL only when configured to.
    sym = ", jwks_allow_symmetric: true" if symmetric else ""
    keys = f"keys: [ {{ kid: static-1, alg: HS256, secret: \"{SECRETS['static-1']}\" }} ], " if static else ""
    return lgtest.CONFIG_HEAD.replace("workers: 1", "workers: 2") + f"""\
upstreams:
  app: {{ targets: [ "127.0.0.1:{{APP_PORT}}" ] }}
routes:
  - name: api
    match: {{ path: "/*" }}
    upstream: app
    policies:
      - jwt: {{ issuer: "https://idp.test", {keys}jwks_url: "{scheme}://127.0.0.1:{jwks_port}/jwks.json",
                jwks_ca_file: certs/ca.pem{sym}{extra} }}
"""


def ca_files(ca="ca"):
    return {"certs/ca.pem": tls_support.read(CERTS[ca])}


def call(gw, kid, secret=None, jti=None):
    return http(gw.port, "GET", "/echo", headers={"Authorization": "Bearer " + token(kid, secret, jti=jti)})


def fetches(gw, result):
    return metric(get_metrics(gw.admin_port), "gateway_jwks_fetches_total", result=result)


class JwksUrl(unittest.TestCase):
    def setUp(self):
        self.app = self.enterContext(Backend("app"))

    def gateway(self, cfg, ca="ca"):
        return self.enterContext(Gateway(cfg, extra_files=ca_files(ca), values={"APP_PORT": self.app.port}))

    def test_keys_from_url(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port, static=True))
            self.assertEqual(idp.count(), 1, "one bounded fetch at startup")
            st, _, body = call(gw, "k1")
            self.assertEqual(st, 200, body)
            up = {k.lower(): v for k, v in echo_json(body)["headers"]}
            self.assertEqual(up.get("x-consumer-id"), "alice")
            self.assertEqual(call(gw, "static-1")[0], 200, "static keys work next to the URL's")
            self.assertEqual(call(gw, "k1", secret="w" * 40)[0], 401, "a wrong signature")
            self.assertEqual(fetches(gw, "ok"), 1)
            self.assertEqual(fetches(gw, "error"), 0)
            self.assertIn("keys loaded", gw.stderr_text())

    def test_rotation_refreshes_for_a_new_kid(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port))
            self.assertEqual(call(gw, "k1")[0], 200)
            idp.set(body=jwks("k1", "k2"))  # the identity provider rotates
            t0 = time.monotonic()
            st, _, body = call(gw, "k2")  # waits for the refresh it triggered
            self.assertEqual(st, 200, body)
            self.assertLess(time.monotonic() - t0, 4.0)
            self.assertEqual(idp.count(), 2)
            self.assertEqual(call(gw, "k1")[0], 200)
            self.assertEqual(call(gw, "k2")[0], 200, "the other worker sees the new set too")
            self.assertEqual(idp.count(), 2)

    def test_rotation_then_redis_revocation_lookup(self):
        # Two waits in one policy: the refresh for the new kid, then the jti's lookup in Redis.
        from test_redis_limits import RedisServer
        redis = RedisServer().start()
        self.addCleanup(redis.close)
        with JwksServer(jwks("k1")) as idp:
            cfg = config(idp.port, ", revocation: redis, jwks_min_refresh_interval: 1s").replace(
                "upstreams:", f'redis: {{ address: "127.0.0.1:{redis.port}", timeout: 1s, on_failure: closed }}\nupstreams:', 1)
            gw = self.gateway(cfg)
            self.assertEqual(call(gw, "k1", jti="j-ok")[0], 200)
            st, _, body = http(gw.admin_port, "POST", "/admin/jwt/revoke?jti=j-revoked&ttl=300")
            self.assertEqual(st, 200, body)
            idp.set(body=jwks("k1", "k2"))
            st, _, body = call(gw, "k2", jti="j-fresh")  # waits for the keys, then for Redis
            self.assertEqual(st, 200, body)
            self.assertEqual(idp.count(), 2)
            # A revoked jti under a kid the gateway has not seen yet: refreshed, then refused.
            time.sleep(1.2)  # past the minimum interval between kid-triggered refreshes
            idp.set(body=jwks("k1", "k2", "k3"))
            st, h, body = call(gw, "k3", jti="j-revoked")
            self.assertEqual(st, 401, body)
            self.assertIn("invalid_token", h.get("www-authenticate", ""))
            self.assertEqual(idp.count(), 3)

    def test_symmetric_keys_from_a_url_are_refused_by_default(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port, symmetric=False))
            self.assertEqual(call(gw, "k1")[0], 401)
            wait_until(lambda: "symmetric" in gw.stderr_text(), 5, what="the skipped key logged")
            self.assertGreaterEqual(fetches(gw, "error"), 1, "a set with no usable key is a failed fetch")

    def test_unknown_kid_flood_is_bounded(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port, ", jwks_min_refresh_interval: 30s"))
            base = idp.count()
            results = []

            def burst(n):
                for i in range(n):
                    results.append(call(gw, f"unknown-{threading.get_ident()}-{i}")[0])
            threads = [threading.Thread(target=burst, args=(15,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            self.assertEqual(results, [401] * 60)
            self.assertLessEqual(idp.count() - base, 1, "at most one fetch per minimum interval")
            self.assertEqual(call(gw, "k1")[0], 200)

    def test_server_stopped_keeps_last_keys(self):
        idp = JwksServer(jwks("k1"))
        try:
            gw = self.gateway(config(idp.port, ", jwks_refresh: 1s, jwks_timeout: 500ms"))
            self.assertEqual(call(gw, "k1")[0], 200)
        finally:
            idp.stop()
        wait_until(lambda: fetches(gw, "error") >= 2, 15, what="failed periodic fetches")
        self.assertEqual(call(gw, "k1")[0], 200)
        self.assertIn("keeping the 1 keys fetched before", gw.stderr_text())

    def test_invalid_document_keeps_last_keys(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port, ", jwks_refresh: 1s"))
            self.assertEqual(call(gw, "k1")[0], 200)
            idp.set(body=b"{ this is not json")
            wait_until(lambda: fetches(gw, "error") >= 1, 10, what="an invalid document counted")
            self.assertEqual(call(gw, "k1")[0], 200)
            self.assertIn("not a usable JWK Set", gw.stderr_text())
            idp.set(body=b"gone", status=500)
            errors = fetches(gw, "error")
            wait_until(lambda: fetches(gw, "error") > errors, 10, what="a 500 counted")
            self.assertIn("HTTP status 500", gw.stderr_text())
            self.assertEqual(call(gw, "k1")[0], 200)

    def test_wrong_ca_loads_nothing(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port), ca="other_ca")
            self.assertEqual(call(gw, "k1")[0], 401)
            self.assertGreaterEqual(fetches(gw, "error"), 1)
            self.assertEqual(fetches(gw, "ok"), 0)
            self.assertIn("certificate", gw.stderr_text())
            self.assertIn("no keys yet", gw.stderr_text())

    def test_starts_without_server_then_loads(self):
        port = lgtest.free_port()
        gw = self.gateway(config(port, ", jwks_timeout: 500ms, jwks_min_refresh_interval: 1s"))
        self.assertEqual(call(gw, "k1")[0], 401, "no keys yet: 401, the gateway serves anyway")
        with JwksServer(jwks("k1"), port=port):
            wait_until(lambda: call(gw, "k1")[0] == 200, 15, interval=0.3, what="keys after the server came up")
        self.assertGreaterEqual(fetches(gw, "ok"), 1)

    def test_hanging_server_bounds_the_wait(self):
        # Accepts and never answers: each fetch ends at jwks_timeout, and so does a request waiting for one.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        held = []
        lsock.settimeout(0.2)
        stop = threading.Event()

        def accept():
            while not stop.is_set():
                try:
                    held.append(lsock.accept()[0])
                except OSError:
                    pass
        t = threading.Thread(target=accept, daemon=True)
        t.start()
        try:
            gw = self.gateway(config(lsock.getsockname()[1], ", jwks_timeout: 1s"))
            t0 = time.monotonic()
            st, _, _ = call(gw, "k1")  # no keys: asks for a fetch, waits for it, then 401
            elapsed = time.monotonic() - t0
            self.assertEqual(st, 401)
            self.assertGreater(elapsed, 0.5, "the request waited for the fetch")
            self.assertLess(elapsed, 3.0, "and no longer than about jwks_timeout")
            self.assertIn("timed out", gw.stderr_text())
        finally:
            stop.set()
            t.join(timeout=5)
            for c in held:
                c.close()
            lsock.close()

    def test_reload_keeps_fetched_keys(self):
        with JwksServer(jwks("k1")) as idp:
            gw = self.gateway(config(idp.port))
            self.assertEqual(call(gw, "k1")[0], 200)
            hits = idp.count()
            idp.stop()  # a reload must not need the server: the cache is kept by URL
            with open(gw.config_path, "a") as f:
                f.write("# touched\n")
            gw.send_signal(signal.SIGHUP)
            wait_until(lambda: "version 2" in gw.stderr_text(), 10, what="the reload")
            self.assertEqual(call(gw, "k1")[0], 200)
            self.assertEqual(idp.count(), hits)

    def test_check_refuses_http_url(self):
        d = tempfile.mkdtemp(prefix="lg-jwks-check-")
        try:
            path = os.path.join(d, "gateway.yaml")
            for bad, needle in ((config(1, scheme="http"), "https://"),
                                (config(1).replace("jwks_url", "jwks_file: x.json, jwks_x"), "unknown key")):
                with open(path, "w") as f:
                    f.write(lgtest.fill(bad, {"PORT": 1, "ADMIN_PORT": 2, "APP_PORT": 3}))
                rc, _, err = lgtest.run_cli(["check", "-c", path])
                self.assertEqual(rc, 1, err)
                self.assertRegex(err, r"gateway\.yaml:1[0-9]: ")
                self.assertIn(needle, err)
            # a valid URL with a CA file that is not there: also file:line
            with open(path, "w") as f:
                f.write(lgtest.fill(config(1), {"PORT": 1, "ADMIN_PORT": 2, "APP_PORT": 3}))
            rc, _, err = lgtest.run_cli(["check", "-c", path])
            self.assertEqual(rc, 1, err)
            self.assertRegex(err, r"gateway\.yaml:1[0-9]: .*jwks_ca_file")
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
