#!/usr/bin/env python3
"""The command line: version, check (good file, every error as FILE:LINE: key.path: message with
the right line), run with a bad config, missing file, usage errors."""
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

GOOD = """\
workers: 1
listen:
  - address: "127.0.0.1:{PORT}"
admin:
  address: "127.0.0.1:{ADMIN}"
limits:
  idle_timeout: 5s
  max_body_bytes: 1m
upstreams:
  users:
    targets: [ "127.0.0.1:9101", { address: "127.0.0.1:9102", weight: 2 } ]
  orders:
    targets: [ "127.0.0.1:9103" ]
    balance: consistent_hash
    hash_on: { header: X-User }
routes:
  - name: users
    match: { path: "/v1/users/*" }
    upstream: users
    strip_prefix: /v1
  - name: orders
    match: { path: "/v1/orders/:id", methods: [ GET ] }
    upstream: orders
    rewrite: /orders/{id}
"""


def line_of(text, needle, nth=1):
    """1-based line number of the nth line containing `needle`."""
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(f"{needle!r} not in config text")


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lg-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, text, name="gw.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def good(self):
        return GOOD.replace("{PORT}", str(lgtest.free_port())).replace("{ADMIN}", str(lgtest.free_port()))

    def check(self, text):
        path = self.write(text)
        rc, out, err = lgtest.run_cli(["check", "-c", path])
        return path, rc, out, err

    def assertError(self, text, needle, key_path, msg_re, nth=1):
        """check must exit 1 with a line PATH:LINE: key_path: message."""
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1, f"check accepted a bad config (rc {rc}); stderr: {err}")
        line = line_of(text, needle, nth)
        pat = re.compile(rf"^{re.escape(path)}:(\d+): {re.escape(key_path)}: (.*)$", re.M)
        found = pat.findall(err)
        self.assertTrue(found, f"no '{path}:LINE: {key_path}: ...' line in stderr:\n{err}")
        self.assertIn(str(line), [f[0] for f in found], f"expected line {line} for {key_path}; stderr:\n{err}")
        self.assertTrue(any(re.search(msg_re, f[1], re.I) for f in found), f"message !~ {msg_re!r}: {found}")
        return err

    # ---- version / usage ----------------------------------------------------------------------
    def test_version(self):
        rc, out, err = lgtest.run_cli(["version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.strip(), r"^lunagate \d+\.\d+\.\d+")

    def test_no_args_usage_exit_2(self):
        rc, out, err = lgtest.run_cli([])
        self.assertEqual(rc, 2)
        self.assertIn("usage", (out + err).lower())

    def test_unknown_command_exit_2(self):
        rc, out, err = lgtest.run_cli(["frobnicate"])
        self.assertEqual(rc, 2)
        self.assertIn("usage", (out + err).lower())

    def test_check_without_file_exit_2(self):
        rc, _, _ = lgtest.run_cli(["check"])
        self.assertEqual(rc, 2)

    # ---- check --------------------------------------------------------------------------------
    def test_check_good(self):
        path, rc, out, err = self.check(self.good())
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")

    def test_check_example_config(self):
        example = os.path.join(lgtest.LG_SOURCE_DIR, "examples", "quickstart", "gateway.yaml")
        rc, out, err = lgtest.run_cli(["check", "-c", example])
        self.assertEqual(rc, 0, err)

    def test_missing_file(self):
        rc, out, err = lgtest.run_cli(["check", "-c", os.path.join(self.dir, "nope.yaml")])
        self.assertEqual(rc, 1)
        self.assertIn("nope.yaml", err)

    def test_unknown_key(self):
        text = self.good().replace("  idle_timeout: 5s\n", "  idle_timeout: 5s\n  idle_timout: 5s\n")
        self.assertError(text, "idle_timout", "limits.idle_timout", r"unknown key")

    def test_unknown_upstream_key(self):
        text = self.good().replace("    balance: consistent_hash\n", "    balance: consistent_hash\n    balanse: x\n")
        self.assertError(text, "balanse", "upstreams.orders.balanse", r"unknown key")

    def test_bad_duration(self):
        text = self.good().replace("idle_timeout: 5s", "idle_timeout: 5 sec")
        self.assertError(text, "idle_timeout", "limits.idle_timeout", r"duration")

    def test_bad_durations_variants(self):
        for bad in ("1.5s", "-1s", "0s", "5S", "5"):
            with self.subTest(value=bad):
                text = self.good().replace("idle_timeout: 5s", f"idle_timeout: {bad}")
                self.assertError(text, "idle_timeout", "limits.idle_timeout", r"duration|greater|positive|> ?0")

    def test_bad_size(self):
        text = self.good().replace("max_body_bytes: 1m", "max_body_bytes: 1mb")
        self.assertError(text, "max_body_bytes", "limits.max_body_bytes", r"size")

    def test_unknown_upstream(self):
        text = self.good().replace("    upstream: orders\n", "    upstream: ordrs\n")
        self.assertError(text, "upstream: ordrs", "routes[1].upstream", r"unknown upstream 'ordrs'")

    def test_duplicate_route_name(self):
        text = self.good().replace("  - name: orders\n", "  - name: users\n")
        self.assertError(text, "- name: users", "routes[1].name", r"duplicate", nth=2)

    def test_several_errors_in_one_go(self):
        text = (self.good().replace("idle_timeout: 5s", "idle_timeout: soon")
                .replace("    upstream: orders\n", "    upstream: ordrs\n"))
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1)
        self.assertIn(f"{path}:{line_of(text, 'idle_timeout')}: limits.idle_timeout:", err)
        self.assertIn(f"{path}:{line_of(text, 'upstream: ordrs')}: routes[1].upstream:", err)

    def test_boolean_yes_rejected(self):
        text = self.good().replace("    strip_prefix: /v1\n", "    strip_prefix: /v1\n    preserve_host: yes\n")
        self.assertError(text, "preserve_host", "routes[0].preserve_host", r"bool|true|false")

    def test_unsupported_key(self):
        text = self.good() + "redis: {}\n"
        self.assertError(text, "redis:", "redis.address", r"missing required key")  # redis is supported now

    def test_missing_script_and_script_syntax_error(self):
        text = self.good().replace("    strip_prefix: /v1\n", "    strip_prefix: /v1\n    scripts: [ nope ]\n", 1)
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, rf"{re.escape(path)}:{line_of(text, 'scripts: [ nope ]')}: routes\[0\]\.scripts\[0\]: script 'nope' not found: ")
        d = os.path.dirname(path)
        os.makedirs(os.path.join(d, "scripts"), exist_ok=True)
        with open(os.path.join(d, "scripts", "nope.lua"), "w") as f:
            f.write("return {\n  access = function(conf)\n    local x = = 1\n  end,\n}\n")
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"scripts/nope\.lua:3: ")

    def test_hash_on_required_for_consistent_hash(self):
        text = self.good().replace("    hash_on: { header: X-User }\n", "")
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1)
        self.assertRegex(err, rf"{re.escape(path)}:\d+: upstreams\.orders(\.hash_on)?: ")

    def test_duplicate_target(self):
        text = self.good().replace('targets: [ "127.0.0.1:9103" ]', 'targets: [ "127.0.0.1:9103", "127.0.0.1:9103" ]')
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1)
        self.assertRegex(err, rf"{re.escape(path)}:{line_of(text, '9103')}: upstreams\.orders\.targets")

    def test_duplicate_yaml_key(self):
        text = self.good().replace("  idle_timeout: 5s\n", "  idle_timeout: 5s\n  idle_timeout: 6s\n")
        self.assertError(text, "idle_timeout: 6s", "limits.idle_timeout", r"duplicate")

    def test_yaml_syntax_error(self):
        text = self.good().replace('targets: [ "127.0.0.1:9103" ]', 'targets: [ "127.0.0.1:9103"')
        path, rc, out, err = self.check(text)
        self.assertEqual(rc, 1)
        m = re.search(rf"^{re.escape(path)}:(\d+): yaml: ", err, re.M)
        self.assertIsNotNone(m, err)
        self.assertGreaterEqual(int(m.group(1)), line_of(text, "9103"))

    # ---- run ----------------------------------------------------------------------------------
    def test_run_with_bad_config_exits_1(self):
        port = lgtest.free_port()
        text = self.good().replace("idle_timeout: 5s", "idle_timeout: never")
        text = re.sub(r'127\.0\.0\.1:\d+"\nadmin', f'127.0.0.1:{port}"\nadmin', text)
        path = self.write(text)
        rc, out, err = lgtest.run_cli(["run", "-c", path], timeout=10)
        self.assertEqual(rc, 1)
        self.assertIn(f"{path}:{line_of(text, 'idle_timeout')}: limits.idle_timeout:", err)
        self.assertFalse(lgtest.port_accepts(port))

    def test_run_missing_file_exits_1(self):
        rc, out, err = lgtest.run_cli(["run", "-c", os.path.join(self.dir, "missing.yaml")], timeout=10)
        self.assertEqual(rc, 1)
        self.assertIn("missing.yaml", err)

    def test_run_port_in_use_exits_nonzero(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            busy = s.getsockname()[1]
            text = self.good()
            text = re.sub(r'address: "127\.0\.0\.1:\d+"\nadmin', f'address: "127.0.0.1:{busy}"\nadmin', text)
            self.assertIn(str(busy), text)
            path = self.write(text)
            rc, out, err = lgtest.run_cli(["run", "-c", path], timeout=10)
            self.assertNotEqual(rc, 0, "run must fail when the listen port is taken")
            self.assertTrue(err.strip(), "no error message")


if __name__ == "__main__":
    unittest.main(verbosity=2)
