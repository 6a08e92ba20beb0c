"""Certificates for the TLS tests (test_tls.py, test_upstream_tls.py), made with the openssl CLI:
EC P-256, valid two days, written into a test's temp dir."""
import os
import shutil
import subprocess

OPENSSL = shutil.which("openssl") or "openssl"

# A route script that shows the upstream what the gateway saw of the TLS client.
SUBJECT_SCRIPT = """\
return {
  name = "subject",
  version = "1",
  access = function(conf)
    gw.service.request.set_header("X-Seen-Subject", gw.request.get_client_cert_subject() or "none")
    gw.service.request.set_header("X-Seen-Scheme", gw.request.get_scheme())
  end,
}
"""


def openssl(*args, timeout=15):
    p = subprocess.run([OPENSSL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")


def _new_key_args(key):
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]


def make_self_signed(d, name, subj, sans):
    """Self-signed leaf for DNS names `sans` -> (cert path, key path)."""
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    openssl("req", "-x509", *_new_key_args(key), "-out", cert, "-days", "2", "-subj", subj,
            "-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans))
    return cert, key


def make_ca(d, name, subj):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    openssl("req", "-x509", *_new_key_args(key), "-out", cert, "-days", "2", "-subj", subj,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_signed(d, ca_cert, ca_key, name, subj, ext=None):
    """A certificate signed by the CA; `ext` an x509v3 extension line (e.g. subjectAltName=...)."""
    key, csr, cert = (os.path.join(d, name + e) for e in (".key", ".csr", ".pem"))
    openssl("req", "-new", *_new_key_args(key), "-out", csr, "-subj", subj)
    extra = []
    if ext:
        extfile = os.path.join(d, name + ".ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        extra = ["-extfile", extfile]
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
            *extra)
    return cert, key


def read(p):
    with open(p, "rb") as f:
        return f.read()
