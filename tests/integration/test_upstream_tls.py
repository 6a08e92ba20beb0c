#!/usr/bin/env python3
"""Upstream TLS: a front lunagate speaks TLS to its upstream, a second lunagate with a TLS listener
that proxies to lg-backend.

    plain client -> front -> TLS -> back (TLS listener) -> lg-backend /echo

Certificates are made at run time with the openssl CLI (EC P-256): a test CA, a server
certificate it signed (SAN DNS:up.test, IP:127.0.0.1), a client certificate it signed, and an
unrelated CA. Three backs: `plain` (no client certificates), `ka` (for counting handshakes) and
`mtls` (client certificate required; a script passes the verified subject on). One front with a
route per case. Every wait is bounded; processes are started and stopped by PID through lgtest.
"""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from tls_support import SUBJECT_SCRIPT, make_ca, make_signed, read  # noqa: E402




BACK = """\
workers: 1
listen:
  - address: "127.0.0.1:{PORT}"
    tls:
      certificates: [ { cert: server.pem, key: server.key } ]
{CLIENT_CA}
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
scripts: { dir: scripts }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - { name: all, match: { path: "/*" }, upstream: app, scripts: [ subject ] }
"""


SUB_SCRIPT = """\
return {
  name = "sub",
  version = "1",
  access = function(conf)
    local r, err = gw.http.request("withcert", { path = "/echo", timeout = 5 })
    local bad, berr = gw.http.request("mismatch", { path = "/echo", timeout = 5 })
    if not r then return gw.response.exit(502, { err = err }) end
    local e = gw.json.decode(r.body)
    local hs = {}
    for _, h in ipairs(e.headers) do hs[string.lower(h[1])] = h[2] end
    return gw.response.exit(200, { status = r.status, subject = hs["x-seen-subject"],
                                   bad = bad and bad.status or "failed", berr = berr })
  end,
}
"""

FRONT = """\
workers: 1
listen:
  - address: "127.0.0.1:{PORT}"
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
scripts: { dir: scripts }
upstreams:
  ok:        { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: ca.pem, sni: up.test } }
  by_ip:     { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: ca.pem } }
  by_name:   { targets: [ "localhost:{PLAIN}" ], tls: { ca: ca.pem } }
  host_sni:  { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: ca.pem, sni: host } }
  wrong_ca:  { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: other.pem, sni: up.test },
               health: { passive: { failures: 3, down_for: 30s } } }
  no_verify: { targets: [ "127.0.0.1:{PLAIN}" ], tls: { verify: false, ca: other.pem, sni: up.test } }
  mismatch:  { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: ca.pem, sni: other.test },
               health: { passive: { failures: 1000 } } }
  reload_ca: { targets: [ "127.0.0.1:{PLAIN}" ], tls: { ca: reload.pem, sni: up.test },
               health: { passive: { failures: 1000 } } }
  plain:     { targets: [ "127.0.0.1:{PLAIN}" ] }
  ka:        { targets: [ "127.0.0.1:{KA}" ], tls: { ca: ca.pem, sni: up.test } }
  nocert:    { targets: [ "127.0.0.1:{MTLS}" ], tls: { ca: ca.pem, sni: up.test } }
  withcert:  { targets: [ "127.0.0.1:{MTLS}" ], tls: { ca: ca.pem, sni: up.test, cert: certs/client.pem, key: certs/client.key } }
routes:
  - { name: ok, match: { path: "/ok/*" }, upstream: ok, strip_prefix: /ok }
  - { name: sub, match: { path: "/sub" }, upstream: ok, scripts: [ sub ] }
  - { name: by_ip, match: { path: "/by_ip/*" }, upstream: by_ip, strip_prefix: /by_ip }
  - { name: by_name, match: { path: "/by_name/*" }, upstream: by_name, strip_prefix: /by_name }
  - { name: host_sni, match: { path: "/host_sni/*" }, upstream: host_sni, strip_prefix: /host_sni }
  - { name: wrong_ca, match: { path: "/wrong_ca/*" }, upstream: wrong_ca, strip_prefix: /wrong_ca }
  - { name: no_verify, match: { path: "/no_verify/*" }, upstream: no_verify, strip_prefix: /no_verify }
  - { name: mismatch, match: { path: "/mismatch/*" }, upstream: mismatch, strip_prefix: /mismatch }
  - { name: reload_ca, match: { path: "/reload_ca/*" }, upstream: reload_ca, strip_prefix: /reload_ca }
  - { name: plain, match: { path: "/plain/*" }, upstream: plain, strip_prefix: /plain }
  - { name: ka, match: { path: "/ka/*" }, upstream: ka, strip_prefix: /ka }
  - { name: nocert, match: { path: "/nocert/*" }, upstream: nocert, strip_prefix: /nocert }
  - { name: withcert, match: { path: "/withcert/*" }, upstream: withcert, strip_prefix: /withcert }
"""


class UpstreamTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lg-uptls-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        d = cls.tmp
        cls.ca, cls.ca_key = make_ca(d, "ca", "/CN=Lunagate Upstream Test CA")
        cls.other, _ = make_ca(d, "other", "/CN=Some Other CA")
        cls.server, cls.server_key = make_signed(d, cls.ca, cls.ca_key, "server", "/CN=up.test",
                                                 "subjectAltName=DNS:up.test,IP:127.0.0.1\n"
                                                 "extendedKeyUsage=serverAuth")
        cls.client, cls.client_key = make_signed(d, cls.ca, cls.ca_key, "client", "/CN=front gateway/O=Lunagate Tests",
                                                 "extendedKeyUsage=clientAuth")
        cls.app = lgtest.Backend("app")
        cls.addClassCleanup(cls.app.stop)
        cls.app.start()
        back_files = {"server.pem": read(cls.server), "server.key": read(cls.server_key), "ca.pem": read(cls.ca),
                      "scripts/subject.lua": SUBJECT_SCRIPT}
        cls.backs = {}
        for name, client_ca in (("plain", ""), ("ka", ""),
                                ("mtls", "      client_ca: ca.pem\n      client_verify: required")):
            gw = lgtest.Gateway(BACK, values={"APP_PORT": cls.app.port, "CLIENT_CA": client_ca}, extra_files=back_files)
            cls.addClassCleanup(gw.close)
            gw.start()
            cls.backs[name] = gw
        cls.front = lgtest.Gateway(FRONT, values={"PLAIN": cls.backs["plain"].port, "KA": cls.backs["ka"].port,
                                                  "MTLS": cls.backs["mtls"].port}, extra_files={
            "ca.pem": read(cls.ca), "other.pem": read(cls.other), "reload.pem": read(cls.other),
            "certs/client.pem": read(cls.client), "certs/client.key": read(cls.client_key),
            "scripts/sub.lua": SUB_SCRIPT})
        cls.addClassCleanup(cls.front.close)
        cls.front.start()

    def tearDown(self):
        for gw in [self.front, *self.backs.values()]:
            self.assertTrue(gw.alive(), "gateway died:\n" + gw.stderr_text()[-3000:])

    def get(self, path, headers=None):
        return lgtest.http(self.front.port, "GET", path, headers=headers, timeout=10)

    def echo(self, path, headers=None):
        status, _, body = self.get(path, headers)
        self.assertEqual(status, 200, body)
        echo = json.loads(body)
        return echo, {k.lower(): v for k, v in echo["headers"]}

    def test_verified_tls_to_the_upstream(self):
        echo, headers = self.echo("/ok/echo?x=1")
        self.assertEqual(echo["target"], "/echo?x=1")
        self.assertEqual(headers["x-seen-scheme"], "https")  # the back terminated TLS
        self.assertEqual(headers["x-seen-subject"], "none")
        status, _, body = self.get("/ok/echo", headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 200)

    def test_ip_target_is_verified_by_ip(self):
        """No name: no SNI, and the certificate must carry the target's IP (it does)."""
        _, headers = self.echo("/by_ip/echo")
        self.assertEqual(headers["x-seen-scheme"], "https")

    def test_default_sni_is_the_target_name(self):
        """Target localhost:...: the certificate must name localhost; it names up.test -> 502."""
        status, _, _ = self.get("/by_name/echo")
        self.assertEqual(status, 502)

    def test_sni_host_uses_the_clients_host(self):
        _, headers = self.echo("/host_sni/echo", headers={"Host": "up.test"})
        self.assertEqual(headers["host"], "up.test")
        status, _, _ = self.get("/host_sni/echo", headers={"Host": "other.test"})
        self.assertEqual(status, 502)

    def test_wrong_ca_is_a_connect_failure(self):
        status, _, body = self.get("/wrong_ca/echo")
        self.assertEqual(status, 502, body)
        lgtest.wait_until(lambda: "certificate verify failed" in self.front.stderr_text(), 5,
                          what="the verification failure logged")
        # passive health counts it: after 3 failures the target is down (503: no target available)
        for _ in range(2):
            self.assertEqual(self.get("/wrong_ca/echo")[0], 502)
        self.assertEqual(self.get("/wrong_ca/echo")[0], 503)

    def test_subrequests_use_upstream_tls(self):
        """gw.http sub-requests go through the same upstream connections: mTLS works, a mismatch fails."""
        status, _, body = self.get("/sub")
        self.assertEqual(status, 200, body)
        out = json.loads(body)
        self.assertEqual(out["status"], 200)
        self.assertEqual(out["subject"], "O=Lunagate Tests,CN=front gateway")
        self.assertEqual(out["bad"], "failed")

    def test_verify_off_accepts_any_certificate(self):
        _, headers = self.echo("/no_verify/echo")
        self.assertEqual(headers["x-seen-scheme"], "https")

    def test_name_mismatch_is_refused(self):
        status, _, body = self.get("/mismatch/echo")
        self.assertEqual(status, 502, body)
        lgtest.wait_until(lambda: "name other.test" in self.front.stderr_text(), 5, what="the mismatch logged")

    def test_plain_http_to_a_tls_upstream_fails(self):
        # The TLS back end (lunagate) answers a plain-HTTP request with a clear-text 400 and
        # closes, as nginx does; the front passes that answer on. Never a 200.
        status, _, body = self.get("/plain/echo")
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["error"], "plain HTTP request sent to the HTTPS port")

    def test_mtls_without_a_client_certificate(self):
        status, _, body = self.get("/nocert/echo")
        self.assertEqual(status, 502, body)

        lgtest.wait_until(lambda: "certificate required" in self.front.stderr_text(), 5, what="the refusal logged")

    def test_mtls_with_a_client_certificate(self):
        _, headers = self.echo("/withcert/echo")
        self.assertEqual(headers["x-seen-subject"], "O=Lunagate Tests,CN=front gateway")

    def test_keepalive_reuses_one_tls_connection(self):
        for i in range(6):
            echo, _ = self.echo(f"/ka/echo?i={i}")
            self.assertEqual(echo["target"], f"/echo?i={i}")
        body = "x" * 100000
        status, _, data = lgtest.http(self.front.port, "POST", "/ka/echo", body=body, timeout=10)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data)["body_bytes"], len(body))
        m = lgtest.get_metrics(self.backs["ka"].admin_port)
        self.assertEqual(lgtest.metric(m, "gateway_tls_handshakes_total", result="ok"), 1)

    def test_zz_ca_file_change_is_reloaded(self):
        """The client context is built per snapshot: a CA file replaced on disk is used after the
        change is seen (inotify), without restart."""
        self.assertEqual(self.get("/reload_ca/echo")[0], 502)
        tmp = os.path.join(self.front.dir, "reload.pem.tmp")
        shutil.copy(self.ca, tmp)
        os.rename(tmp, os.path.join(self.front.dir, "reload.pem"))
        lgtest.wait_until(lambda: self.get("/reload_ca/echo")[0] == 200, 8, interval=0.2, what="the new CA in use")
        self.echo("/ok/echo")  # the other upstreams are unaffected

    def test_config_errors(self):
        d = tempfile.mkdtemp(prefix="cfg-", dir=self.tmp)
        cfg = os.path.join(d, "gw.yaml")

        def check(tls):
            with open(cfg, "w") as f:
                f.write("listen:\n  - address: \"127.0.0.1:1\"\nupstreams:\n  app:\n    targets: [ \"127.0.0.1:2\" ]\n"
                        "    tls:\n" + tls + "routes:\n  - { name: all, match: { path: \"/*\" }, upstream: app }\n")
            rc, out, err = lgtest.run_cli(["check", "-c", cfg], timeout=20)
            self.assertNotEqual(rc, 0)
            return out + err

        self.assertRegex(check("      ca: missing.pem\n"), r"gw\.yaml:7: upstreams\.app\.tls\.ca: .*missing\.pem: cannot read")
        shutil.copy(self.client_key, os.path.join(d, "c.key"))
        shutil.copy(self.server, os.path.join(d, "s.pem"))
        self.assertRegex(check("      cert: s.pem\n      key: c.key\n"), r"gw\.yaml:8: upstreams\.app\.tls\.key: .*key does not match")
        self.assertIn("gw.yaml:7: upstreams.app.tls.cert: needs key", check("      cert: s.pem\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
