#!/usr/bin/env python3
"""TLS termination on listeners, against real peers (curl, openssl s_client, Python's ssl).

Certificates are made at run time with the openssl CLI (EC P-256): a.test (the default), b.test
with *.wild.test, a test CA and a client certificate it signed. The gateway serves a.test and
b.test on one TLS listener (handshake_timeout 1s); a second gateway requires client certificates.
Every wait is bounded; processes are started and stopped by PID through lgtest.
"""
import concurrent.futures
import http.client as httpclient
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from tls_support import OPENSSL, SUBJECT_SCRIPT, make_self_signed as make_cert, make_signed, read  # noqa: E402

CURL = shutil.which("curl") or "curl"


def run(args, timeout=15, input_bytes=b""):
    p = subprocess.run(args, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def s_client(port, *extra, timeout=10):
    """openssl s_client -> (rc, stdout+stderr). Sends nothing and closes (stdin is empty)."""
    rc, out, err = run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *extra], timeout=timeout)
    return rc, out + err


def handshake_ok(text):
    return "Cipher is (NONE)" not in text and ("New, TLS" in text or "Cipher is" in text)


def subject_of(text):
    for line in text.splitlines():
        if line.startswith("subject="):
            return line[len("subject="):].strip()
    return None


CONFIG = """\
workers: 2
listen:
  - address: "127.0.0.1:{PORT}"
    tls:
      certificates:
        - { cert: a.pem, key: a.key }
        - { cert: b.pem, key: b.key }
      handshake_timeout: 1s
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - { name: all, match: { path: "/*" }, upstream: app }
"""

MTLS_CONFIG = """\
workers: 1
listen:
  - address: "127.0.0.1:{PORT}"
    tls:
      certificates: [ { cert: a.pem, key: a.key } ]
      client_ca: ca.pem
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
scripts: { dir: scripts }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - { name: all, match: { path: "/*" }, upstream: app, scripts: [ subject ] }
"""



class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lg-tls-")
        d = cls.tmp
        cls.a_cert, cls.a_key = make_cert(d, "a", "/CN=a.test/O=Lunagate A", ["a.test"])
        cls.b_cert, cls.b_key = make_cert(d, "b", "/CN=b.test/O=Lunagate B", ["b.test", "*.wild.test"])
        cls.ca_cert, cls.ca_key = make_cert(d, "ca", "/CN=Lunagate Test CA", ["ca.test"])
        cls.c_cert, cls.c_key = make_signed(d, cls.ca_cert, cls.ca_key, "client",
                                                 "/CN=client one/O=Lunagate Tests")
        cls.other_ca_cert, cls.other_ca_key = make_cert(d, "other", "/CN=Other CA", ["other.test"])
        cls.bad_cert, cls.bad_key = make_signed(d, cls.other_ca_cert, cls.other_ca_key, "stranger", "/CN=stranger")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.app = lgtest.Backend("app")
        cls.addClassCleanup(cls.app.stop)  # runs even when setUpClass fails below
        cls.app.start()
        cls.gw = lgtest.Gateway(CONFIG, values={"APP_PORT": cls.app.port}, extra_files={
            "a.pem": read(cls.a_cert), "a.key": read(cls.a_key), "b.pem": read(cls.b_cert), "b.key": read(cls.b_key)})
        cls.addClassCleanup(cls.gw.close)
        cls.gw.start()

    def setUp(self):
        self.assertTrue(self.gw.alive(), self.gw.stderr_text()[-2000:])

    def tearDown(self):
        self.assertTrue(self.gw.alive(), "gateway died:\n" + self.gw.stderr_text()[-3000:])

    def curl(self, host, path="/echo", cacert=None, extra=()):
        port = self.gw.port
        return run([CURL, "-sS", "--max-time", "10", "--cacert", cacert or self.a_cert, "--resolve",
                    f"{host}:{port}:127.0.0.1", *extra, f"https://{host}:{port}{path}"])

    def test_curl_proxied(self):
        rc, out, err = self.curl("a.test")
        self.assertEqual(rc, 0, err)
        echo = json.loads(out)
        self.assertEqual(echo["target"], "/echo")
        headers = {k.lower(): v for k, v in echo["headers"]}
        self.assertEqual(headers["x-forwarded-proto"], "https")

    def test_sni_picks_certificate(self):
        for sni, want in (("b.test", "b.test"), ("a.test", "a.test"), ("x.wild.test", "b.test"),
                          ("unknown.test", "a.test"), ("y.x.wild.test", "a.test"), ("B.TEST", "b.test")):
            rc, text = s_client(self.gw.port, "-servername", sni)
            self.assertTrue(handshake_ok(text), text)
            self.assertIn("CN = " + want, subject_of(text) or "", f"SNI {sni}: {subject_of(text)}")
        rc, text = s_client(self.gw.port, "-noservername")
        self.assertIn("CN = a.test", subject_of(text) or "")
        rc, out, err = self.curl("b.test", cacert=self.b_cert)
        self.assertEqual(rc, 0, err)

    def test_old_protocols_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            # SECLEVEL=0 lets Debian's client offer them at all; the server must still refuse.
            rc, text = s_client(self.gw.port, flag, "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "a.test")
            self.assertFalse(handshake_ok(text), f"{flag} was accepted:\n{text}")
            self.assertNotEqual(rc, 0)
            self.assertTrue("protocol version" in text or "no protocols available" in text
                            or "unsupported protocol" in text or "alert" in text, text)
        for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, text = s_client(self.gw.port, flag, "-servername", "a.test")
            self.assertTrue(handshake_ok(text), text)
            self.assertIn(name, text)
        # TLS 1.2 uses ECDHE + AEAD only: a CBC suite is refused
        rc, text = s_client(self.gw.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256")
        self.assertFalse(handshake_ok(text), text)

    def test_alpn(self):
        rc, text = s_client(self.gw.port, "-alpn", "http/1.1", "-servername", "a.test")
        self.assertIn("ALPN protocol: http/1.1", text)
        rc, text = s_client(self.gw.port, "-alpn", "h2,http/1.1", "-servername", "a.test")
        self.assertIn("ALPN protocol: http/1.1", text)
        # h2 only: no match, the handshake goes on without ALPN (documented choice)
        rc, text = s_client(self.gw.port, "-alpn", "h2", "-servername", "a.test")
        self.assertTrue(handshake_ok(text), text)
        self.assertIn("No ALPN negotiated", text)
        rc, out, err = self.curl("a.test", extra=("--http2",))
        self.assertEqual(rc, 0, err)

    def test_keepalive_and_close_notify(self):
        ctx = ssl.create_default_context(cafile=self.a_cert)
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as raw:
            # suppress_ragged_eofs=False: a close without close_notify would raise SSLEOFError
            with ctx.wrap_socket(raw, server_hostname="a.test", suppress_ragged_eofs=False) as s:
                for i in range(3):
                    s.sendall(b"GET /echo?i=%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % i)
                    resp = httpclient.HTTPResponse(s)
                    resp.begin()
                    self.assertEqual(resp.status, 200)
                    resp.read()
                s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                data = b""
                while True:  # ends with the server's close_notify (Python raises on a bare EOF)
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])

    def test_large_bodies_both_ways(self):
        """8 MB down to a client that reads slowly at first (the gateway's TLS writes block on
        WANT_WRITE and resume on EPOLLOUT), 5 MB up, on one keep-alive connection."""
        ctx = ssl.create_default_context(cafile=self.a_cert)
        size = 8_000_000
        # A 64 KiB receive buffer (set before connecting) keeps the 8 MB from fitting in the
        # socket buffers. (With a receive window below one TLS record, 16 KiB, the transfer
        # crawls, for nginx (1.22, same certificate) just as here: TCP small-window avoidance
        # against 16 KiB records.)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw.settimeout(10)
            raw.connect(("127.0.0.1", self.gw.port))
            with ctx.wrap_socket(raw, server_hostname="a.test") as s:
                s.sendall(b"GET /stream?bytes=%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % size)
                time.sleep(0.5)  # let the gateway fill the socket and wait for EPOLLOUT
                resp = httpclient.HTTPResponse(s)
                resp.begin()
                self.assertEqual(resp.status, 200)
                got = 0
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    got += len(chunk)
                self.assertEqual(got, size)
                body = b"y" * 5_000_000
                s.sendall(b"POST /sink HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                resp = httpclient.HTTPResponse(s)
                resp.begin()
                self.assertEqual(resp.status, 200)
                self.assertEqual(json.loads(resp.read())["bytes"], len(body))

    def test_handshake_timeout_closes_silent_client(self):
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as s:
            t0 = time.monotonic()
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""
            elapsed = time.monotonic() - t0
        self.assertEqual(got, b"")
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 3.0)

    def test_plain_http_on_tls_port(self):
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
        # Answered in clear text, as nginx does, then closed (the loop above ended on EOF).
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data[:200])
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nConnection: close", head)
        doc = json.loads(body)
        self.assertEqual((doc["status"], doc["error"]), (400, "plain HTTP request sent to the HTTPS port"))
        self.assertTrue(doc["request_id"])
        self.assertNotIn(b"HTTP/1.1 200", data)
        rc, out, err = self.curl("a.test")  # still serving
        self.assertEqual(rc, 0, err)

    def test_many_concurrent_connections(self):
        ctx = ssl.create_default_context(cafile=self.a_cert)

        def one(i):
            conn = httpclient.HTTPSConnection("a.test", self.gw.port, context=ctx, timeout=10)
            conn._create_connection = lambda *a, **k: socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
            try:
                statuses = []
                for j in range(3):
                    conn.request("GET", f"/echo?c={i}&r={j}")
                    r = conn.getresponse()
                    r.read()
                    statuses.append(r.status)
                return statuses
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(50), timeout=60))
        self.assertEqual(results, [[200, 200, 200]] * 50)

    def test_session_resumption(self):
        """Stateless tickets (no server-side session cache): TLS 1.3 and 1.2 sessions resume."""
        for flag in ("-tls1_3", "-tls1_2"):
            sess = os.path.join(self.tmp, "sess" + flag + ".pem")
            # a request answered with a close: the client is still there when the tickets come
            rc, out, err = run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.gw.port}", flag, "-servername",
                                "a.test", "-sess_out", sess, "-ign_eof"],
                               input_bytes=b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            self.assertTrue(handshake_ok(out + err), out + err)
            rc, text = s_client(self.gw.port, flag, "-servername", "a.test", "-sess_in", sess)
            self.assertIn("Reused, TLSv1.", text, f"{flag}: not resumed")

    def test_zy_handshake_metrics(self):
        """gateway_tls_handshakes_total counts each result (the tests before this one made all three)."""
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=5) as s:  # one more failure
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            try:
                s.recv(100)
            except ConnectionResetError:
                pass

        def counted():
            m = lgtest.get_metrics(self.gw.admin_port)
            return all(lgtest.metric(m, "gateway_tls_handshakes_total", result=r) >= 1 for r in ("ok", "failed", "timeout"))
        lgtest.wait_until(counted, 5, what="handshake results counted")

    def test_zz_certificate_reload(self):
        """A replaced certificate is served after the change is seen (inotify), without restart,
        while a keep-alive connection from before keeps working. A bad one keeps the old one."""
        ctx = ssl.create_default_context(cafile=self.a_cert)
        conn = httpclient.HTTPSConnection("a.test", self.gw.port, context=ctx, timeout=10)
        conn._create_connection = lambda *a, **k: socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        conn.request("GET", "/echo")
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        sock_before = conn.sock

        # A key that does not match: rejected, the old certificate keeps serving.
        new_cert, new_key = make_cert(self.tmp, "a2", "/CN=a.test/O=Lunagate A2", ["a.test"])
        shutil.copy(new_cert, os.path.join(self.gw.dir, "a.pem.tmp"))
        os.rename(os.path.join(self.gw.dir, "a.pem.tmp"), os.path.join(self.gw.dir, "a.pem"))
        lgtest.wait_until(lambda: "key does not match" in self.gw.stderr_text(), 5, what="rejected reload")
        self.assertRegex(self.gw.stderr_text(), r"gateway\.yaml:\d+: listen\[0\]\.tls\.certificates\[0\]\.key: .*a\.key: key does not match")
        rc, text = s_client(self.gw.port, "-servername", "a.test")
        self.assertIn("O = Lunagate A,", subject_of(text) + ",")

        # Now the matching key: the new certificate is served.
        shutil.copy(new_key, os.path.join(self.gw.dir, "a.key.tmp"))
        os.rename(os.path.join(self.gw.dir, "a.key.tmp"), os.path.join(self.gw.dir, "a.key"))

        def served():
            _, t = s_client(self.gw.port, "-servername", "a.test")
            return "O = Lunagate A2" in (subject_of(t) or "")
        lgtest.wait_until(served, 8, interval=0.2, what="the new certificate to be served")

        # The connection from before still works, on the same socket.
        conn.request("GET", "/echo?after")
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertIs(conn.sock, sock_before)
        conn.close()
        rc, out, err = self.curl("a.test", cacert=new_cert)
        self.assertEqual(rc, 0, err)

    def test_client_certificates(self):
        with lgtest.Backend("mtls-app") as app, lgtest.Gateway(MTLS_CONFIG, values={"APP_PORT": app.port}, extra_files={
                "a.pem": read(self.a_cert), "a.key": read(self.a_key), "ca.pem": read(self.ca_cert),
                "scripts/subject.lua": SUBJECT_SCRIPT}) as gw:
            base = [CURL, "-sS", "--max-time", "10", "--cacert", self.a_cert, "--resolve",
                    f"a.test:{gw.port}:127.0.0.1"]
            url = f"https://a.test:{gw.port}/echo"
            rc, out, err = run(base + [url])
            self.assertNotEqual(rc, 0, "no client certificate was accepted: " + out)
            rc, out, err = run(base + ["--cert", self.bad_cert, "--key", self.bad_key, url])
            self.assertNotEqual(rc, 0, "a certificate from another CA was accepted: " + out)
            rc, out, err = run(base + ["--cert", self.c_cert, "--key", self.c_key, url])
            self.assertEqual(rc, 0, err)
            headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
            self.assertEqual(headers["x-seen-subject"], "O=Lunagate Tests,CN=client one")
            self.assertEqual(headers["x-seen-scheme"], "https")
            self.assertTrue(gw.alive())

    def test_client_certificate_optional(self):
        cfg = MTLS_CONFIG.replace("client_ca: ca.pem", "client_ca: ca.pem\n      client_verify: optional")
        with lgtest.Backend("opt-app") as app, lgtest.Gateway(cfg, values={"APP_PORT": app.port}, extra_files={
                "a.pem": read(self.a_cert), "a.key": read(self.a_key), "ca.pem": read(self.ca_cert),
                "scripts/subject.lua": SUBJECT_SCRIPT}) as gw:
            base = [CURL, "-sS", "--max-time", "10", "--cacert", self.a_cert, "--resolve",
                    f"a.test:{gw.port}:127.0.0.1"]
            url = f"https://a.test:{gw.port}/echo"
            rc, out, err = run(base + [url])
            self.assertEqual(rc, 0, err)
            headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
            self.assertEqual(headers["x-seen-subject"], "none")
            rc, out, err = run(base + ["--cert", self.c_cert, "--key", self.c_key, url])
            self.assertEqual(rc, 0, err)
            headers = {k.lower(): v for k, v in json.loads(out)["headers"]}
            self.assertEqual(headers["x-seen-subject"], "O=Lunagate Tests,CN=client one")
            rc, out, err = run(base + ["--cert", self.bad_cert, "--key", self.bad_key, url])
            self.assertNotEqual(rc, 0, "an unverifiable certificate was accepted: " + out)

    def test_acl_by_client_certificate_subject(self):
        cfg = MTLS_CONFIG.replace("client_ca: ca.pem", "client_ca: ca.pem\n      client_verify: optional").replace(
            '  - { name: all, match: { path: "/*" }, upstream: app, scripts: [ subject ] }',
            '  - { name: all, match: { path: "/*" }, upstream: app, scripts: [ subject ] }\n'
            '  - { name: one, match: { path: "/one/*" }, upstream: app, strip_prefix: /one,\n'
            '      policies: [ { acl: { subjects: [ "O=Lunagate Tests,CN=client one" ] } } ] }')
        with lgtest.Backend("acl-app") as app, lgtest.Gateway(cfg, values={"APP_PORT": app.port}, extra_files={
                "a.pem": read(self.a_cert), "a.key": read(self.a_key), "ca.pem": read(self.ca_cert),
                "scripts/subject.lua": SUBJECT_SCRIPT}) as gw:
            base = [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", self.a_cert,
                    "--resolve", f"a.test:{gw.port}:127.0.0.1"]
            url = f"https://a.test:{gw.port}/one/echo"
            rc, out, err = run(base + [url])
            self.assertEqual((rc, out), (0, "403"), err)  # no certificate: no subject
            rc, out, err = run(base + ["--cert", self.c_cert, "--key", self.c_key, url])
            self.assertEqual((rc, out), (0, "200"), err)

    def test_config_errors(self):
        d = tempfile.mkdtemp(prefix="lg-tls-cfg-", dir=self.tmp)
        shutil.copy(self.a_cert, os.path.join(d, "a.pem"))
        shutil.copy(self.b_key, os.path.join(d, "b.key"))
        cfg = os.path.join(d, "gw.yaml")

        def check(tls_block):
            with open(cfg, "w") as f:
                f.write("listen:\n  - address: \"127.0.0.1:1\"\n    tls:\n" + tls_block +
                        "upstreams:\n  app: { targets: [ \"127.0.0.1:2\" ] }\n"
                        "routes:\n  - { name: all, match: { path: \"/*\" }, upstream: app }\n")
            return lgtest.run_cli(["check", "-c", cfg], timeout=20)

        rc, out, err = check("      certificates:\n        - { cert: missing.pem, key: b.key }\n")
        self.assertNotEqual(rc, 0)
        self.assertRegex(out + err, r"gw\.yaml:5: listen\[0\]\.tls\.certificates\[0\]\.cert: .*missing\.pem: cannot read")
        rc, out, err = check("      certificates:\n        - { cert: a.pem, key: b.key }\n")
        self.assertNotEqual(rc, 0)
        self.assertRegex(out + err, r"gw\.yaml:5: listen\[0\]\.tls\.certificates\[0\]\.key: .*key does not match")
        rc, out, err = check("      certificates: []\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("must list at least one certificate", out + err)
        rc, out, err = check("      certificates:\n        - { cert: b.key, key: b.key }\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("not a PEM certificate chain", out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
