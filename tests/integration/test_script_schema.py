"""A script's `schema` validates each route's config for it: types, required fields, unknown fields,
defaults filled in. A mismatch is a config error with file:line (check, startup, reload)."""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

SCRIPT = """return {
  schema = {
    header = { type = "string", default = "X-Key" },
    limit = { type = "number", required = true },
    strict = { type = "boolean" },
  },
  access = function(conf)
    return gw.response.exit(200, conf.header .. " " .. conf.limit .. " " .. tostring(conf.strict))
  end,
}
"""

CONFIG = lgtest.CONFIG_HEAD + """scripts: { dir: scripts, watch: false }
upstreams:
  app: { targets: [ "127.0.0.1:1" ] }
routes:
  - name: r
    match: { path: "/*" }
    upstream: app
    scripts:
      - { name: keyed, config: CONF }
"""


class SchemaTest(unittest.TestCase):
    def test_defaults_reach_the_handler_and_mismatches_are_rejected_on_reload(self):
        with lgtest.Gateway(CONFIG.replace("CONF", "{ limit: 5 }"), extra_files={"scripts/keyed.lua": SCRIPT}) as gw:
            st, _, body = lgtest.http(gw.port, "GET", "/x")
            self.assertEqual((st, body), (200, b"X-Key 5 nil"))
            for conf, message in (('{ limit: "five" }', r"routes\[0\]\.scripts\[0\]\.config\.limit: expected number, got string"),
                                  ("{ header: X }", r"routes\[0\]\.scripts\[0\]\.config\.limit: required"),
                                  ("{ limit: 1, extra: 2 }", r"routes\[0\]\.scripts\[0\]\.config\.extra: unknown field")):
                with self.subTest(conf=conf):
                    text = CONFIG.replace("CONF", conf).replace("{PORT}", str(gw.port)).replace("{ADMIN_PORT}", str(gw.admin_port))
                    with open(gw.config_path, "w") as f:
                        f.write(text)
                    rc, out, err = lgtest.run_cli(["check", "-c", gw.config_path])
                    self.assertEqual(rc, 1, out + err)
                    self.assertRegex(err, re.escape(gw.config_path) + r":\d+: " + message)
                    gw.send_signal(signal.SIGHUP)
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline and not re.search(message, gw.stderr_text()):
                        time.sleep(0.05)
                    self.assertRegex(gw.stderr_text(), message)
                    st, _, body = lgtest.http(gw.port, "GET", "/x")
                    self.assertEqual((st, body), (200, b"X-Key 5 nil"), "the old version keeps serving")


if __name__ == "__main__":
    unittest.main()
