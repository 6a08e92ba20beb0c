#!/usr/bin/env python3
"""Script hot swap under load (the issue's acceptance test).

test_sighup_swaps_under_load: 64 keep-alive client connections (16 of them asking for an 80 ms
upstream answer, so requests are in flight across swaps) hammer one scripted route for 20 s while the script is rewritten 220 times with valid versions and 20 times with invalid ones
(syntax error, top-level infinite loop, a script returning a number), each write followed by
SIGHUP. Every response must be 2xx, no connection may fail, and every response's X-V header must
be "A/A": access and response ran the same version, i.e. a request in flight keeps the version it
started with. The reload counters, /admin/scripts and the process must agree afterwards.

test_watch_swaps_without_signals: `scripts.watch: true`, no signals: an editor-style save
(temp file + rename) and an in-place rewrite are live within 3 s; a syntax error is rejected
(stderr names file:line) and the old version keeps serving.

The load runs in a child process (this file with --load) so that the GIL it holds does not slow
the reload loop down. Every loop and wait is bounded; the file finishes in well under 60 s.
"""
import collections
import contextlib
import hashlib
import http.client as httpclient
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import get_metrics, metric  # noqa: E402

LOAD_SECONDS = 20.0
LOAD_CONNECTIONS = 64
VALID_RELOADS = 220          # 200 plain + 20 that restore a valid version after a bad one
BAD_RELOADS = 20
RELOAD_SPACING = 0.062       # s between the starts of two reloads (bad ones take longer: the loop)
RELOAD_WINDOW = 17.0         # s: the reload loop gives up after this (the assertions then fail)
RELOAD_WAIT = 3.0            # s for one SIGHUP to be processed

SLOW_PATH = "/delay?ms=80"  # on a quarter of the connections, so that requests are in flight across swaps

XV = re.compile(r"^([A-Za-z0-9]+)/([A-Za-z0-9]+)$")


def script(v):
    return (f'return {{ version = "{v}",\n'
            f'  access = function(conf) gw.ctx.v = "{v}" end,\n'
            f'  response = function(conf) gw.response.set_header("X-V", gw.ctx.v .. "/" .. "{v}") end }}\n')


# name -> (content, regex the rejection's stderr must show)
BAD = [
    ("syntax", 'return { version = "bad",\n  access = function(conf) local x = = 1 end }\n', r"v\.lua:2:"),
    ("toplevel_loop", "local n = 0\nwhile true do n = n + 1 end\nreturn {}\n", r"v\.lua:\d+:"),
    ("number", "return 42\n", r"v\.lua:\d+:"),
]

CONFIG = """\
workers: {WORKERS}
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: off, error: stderr, level: info }
scripts:
  dir: scripts
  watch: {WATCH}
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - name: swapped
    match: { path: "/*" }
    upstream: app
    scripts: [ v ]
"""


# ------------------------------------------------------------------------------------------------
# the load generator (child process)

def _load_thread(port, path, deadline, stats, lock):
    status, xv, errors, samples = collections.Counter(), collections.Counter(), 0, []
    connects = slow = 0
    conn = None
    for _ in range(10_000_000):  # bounded by the deadline; the count is only a backstop
        if time.monotonic() >= deadline:
            break
        try:
            if conn is None:
                conn = httpclient.HTTPConnection(lgtest.LOOPBACK, port, timeout=5)
                conn.connect()
                connects += 1
            conn.request("GET", path, headers={"Host": "gw.test"})
            resp = conn.getresponse()
            resp.read()
            status[resp.status] += 1
            slow += path != "/hs"
            xv[resp.getheader("X-V", "<missing>")] += 1
            if resp.will_close:
                samples.append(f"server asked to close after status {resp.status}")
                conn.close()
                conn = None
        except (OSError, httpclient.HTTPException) as e:
            errors += 1
            if len(samples) < 5:
                samples.append(f"{type(e).__name__}: {e}")
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
    if conn is not None:
        conn.close()
    with lock:
        stats["status"].update(status)
        stats["xv"].update(xv)
        stats["errors"] += errors
        stats["connects"] += connects
        stats["slow"] += slow
        stats["samples"].extend(samples[:5])


def load_main(port, seconds, connections):
    deadline = time.monotonic() + seconds
    stats = {"status": collections.Counter(), "xv": collections.Counter(), "errors": 0, "connects": 0, "slow": 0,
             "samples": []}
    lock = threading.Lock()
    # every 4th connection asks for an 80 ms upstream answer: those requests span a swap or two
    threads = [threading.Thread(target=_load_thread, args=(port, SLOW_PATH if i % 4 == 0 else "/hs", deadline,
                                                           stats, lock), daemon=True)
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()) + 10)
    stats["stuck_threads"] = sum(t.is_alive() for t in threads)
    stats["status"] = {str(k): v for k, v in stats["status"].items()}
    stats["xv"] = dict(stats["xv"])
    print(json.dumps(stats), flush=True)


# ------------------------------------------------------------------------------------------------

def admin_json(port, path):
    status, _, body = lgtest.http(port, "GET", path, timeout=5)
    if status != 200:
        raise AssertionError(f"{path} answered {status}")
    return json.loads(body)


def reload_counts(admin_port):
    r = admin_json(admin_port, "/admin/config")["reloads"]
    return r["ok"], r["error"]


class HotSwapTest(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)
        self.app = self.stack.enter_context(lgtest.Backend("app"))

    def start(self, watch, workers, first):
        self.gw = self.stack.enter_context(lgtest.Gateway(
            CONFIG, extra_files={"scripts/v.lua": script(first)},
            values={"APP_PORT": self.app.port, "WORKERS": workers, "WATCH": "true" if watch else "false"}))
        self.script_path = os.path.join(self.gw.dir, "scripts", "v.lua")
        return self.gw

    def write(self, content):
        with open(self.script_path, "w") as f:
            f.write(content)

    def replace(self, content):
        """Editor-style save: a temp file in the same folder, then rename over the script."""
        tmp = os.path.join(os.path.dirname(self.script_path), ".v.lua.swp")
        with open(tmp, "w") as f:
            f.write(content)
        os.replace(tmp, self.script_path)

    def xv(self):
        status, headers, body = lgtest.http(self.gw.port, "GET", "/hs", headers={"Host": "gw.test"})
        self.assertEqual(status, 200, body[:300])
        return headers.get("x-v")

    def stderr_tail(self, since=0):
        return self.gw.stderr_text()[since:][-2500:]

    # --------------------------------------------------------------------------------------------
    def test_sighup_swaps_under_load(self):
        gw = self.start(watch=False, workers=2, first="0")
        self.assertEqual(self.xv(), "0/0")
        ok0, err0 = reload_counts(gw.admin_port)

        # 220 valid versions; after versions 5, 16, 27, ... a bad one (each followed by a restore)
        plan = []
        for v in range(1, VALID_RELOADS + 1):
            plan.append(("ok", str(v), script(v)))
            if v % 11 == 5 and sum(k == "bad" for k, _, _ in plan) < BAD_RELOADS:
                name, content, _ = BAD[(v // 11) % len(BAD)]
                plan.append(("bad", name, content))
        self.assertEqual(sum(k == "bad" for k, _, _ in plan), BAD_RELOADS)
        self.assertEqual(plan[-1][0], "ok")

        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--load", str(gw.port),
                                  str(LOAD_SECONDS), str(LOAD_CONNECTIONS)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def stop_child():  # only if the test failed before reading the child's result
            if child.poll() is None:
                child.kill()
                child.communicate(timeout=5)
        self.addCleanup(stop_child)
        time.sleep(1.0)  # connections up and busy before the first swap

        problems = []   # reloads that did not end as expected
        done = collections.Counter()
        last_valid = script(0)
        t0 = time.monotonic()
        expect_ok, expect_err = ok0, err0
        for i, (kind, label, content) in enumerate(plan):
            if time.monotonic() - t0 > RELOAD_WINDOW:
                problems.append(f"reload window of {RELOAD_WINDOW} s used up after {i} of {len(plan)} reloads")
                break
            wait = t0 + i * RELOAD_SPACING - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.write(content)
            gw.send_signal(signal.SIGHUP)
            if kind == "ok":
                expect_ok += 1
                last_valid = content
            else:
                expect_err += 1
            # wait until the gateway has processed this SIGHUP (also keeps two writes from racing it)
            try:
                got = lgtest.wait_until(lambda: (lambda c: c if sum(c) >= expect_ok + expect_err else None)(
                    reload_counts(gw.admin_port)), RELOAD_WAIT, interval=0.005, what=f"reload {i} ({label})")
            except TimeoutError:
                problems.append(f"reload {i} ({kind} {label}): not processed within {RELOAD_WAIT} s")
                break
            if got != (expect_ok, expect_err):
                problems.append(f"reload {i} ({kind} {label}): counts (ok, error) {got}, expected "
                                f"{(expect_ok, expect_err)}")
                expect_ok, expect_err = got
            done[kind] += 1
        reload_seconds = time.monotonic() - t0

        try:
            out, err = child.communicate(timeout=LOAD_SECONDS + 20)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate(timeout=5)
            self.fail(f"load generator did not finish; stderr: {err[-1500:]!r}")
        self.assertEqual(child.returncode, 0, err.decode("utf-8", "replace")[-2000:])
        stats = json.loads(out.decode().strip().splitlines()[-1])

        total = sum(stats["status"].values())
        versions, mixed = collections.Counter(), {}
        for value, n in stats["xv"].items():
            m = XV.match(value)
            if m and m.group(1) == m.group(2):
                versions[m.group(1)] += n
            else:
                mixed[value] = n
        print(f"\n[hot swap] {total} responses on {stats['connects']} connections "
              f"({LOAD_CONNECTIONS} wanted) in {LOAD_SECONDS:.0f} s, {stats['slow']} of them slow; statuses {stats['status']}; "
              f"socket errors {stats['errors']}; {len(versions)} versions seen; "
              f"reloads {dict(done)} in {reload_seconds:.1f} s", file=sys.stderr)

        self.assertEqual(problems, [], "reloads that did not go as planned; stderr:\n" + self.stderr_tail())
        self.assertEqual(stats["stuck_threads"], 0)
        self.assertGreater(total, 1000, stats)
        self.assertGreater(stats["slow"], 500, "too few slow requests to span swaps")
        non2xx = {s: n for s, n in stats["status"].items() if not 200 <= int(s) < 300}
        self.assertEqual(non2xx, {}, f"non-2xx responses under swaps (of {total}); stderr:\n{self.stderr_tail()}")
        self.assertEqual(stats["errors"], 0, f"socket errors: {stats['samples']}")
        self.assertEqual(stats["connects"], LOAD_CONNECTIONS, f"connections were not kept alive: {stats['samples']}")
        self.assertEqual(mixed, {}, "X-V must be 'A/A' (access and response ran the same version)")
        known = {"0"} | {str(v) for v in range(1, VALID_RELOADS + 1)}
        self.assertEqual(set(versions) - known, set(), "versions that were never written")
        self.assertGreaterEqual(len(versions), 5, f"versions seen: {sorted(versions, key=int)}")

        samples = get_metrics(gw.admin_port)
        self.assertGreaterEqual(metric(samples, "gateway_script_reloads_total", result="error"), BAD_RELOADS)
        self.assertGreaterEqual(metric(samples, "gateway_script_reloads_total", result="ok"), 200)
        self.assertEqual(metric(samples, "gateway_script_reloads_total", result="ok"), done["ok"])
        self.assertEqual(metric(samples, "gateway_script_reloads_total", result="error"), done["bad"])
        text = lgtest.http(gw.admin_port, "GET", "/metrics")[2].decode()
        self.assertIn("# TYPE gateway_script_reloads_total counter", text)

        scripts = {s["name"]: s for s in admin_json(gw.admin_port, "/admin/scripts")["scripts"]}
        self.assertEqual(scripts["v"]["sha256"], hashlib.sha256(last_valid.encode()).hexdigest(),
                         "/admin/scripts must show the last version's sha256")
        self.assertIsNone(scripts["v"]["last_error"])
        self.assertEqual(self.xv(), f"{VALID_RELOADS}/{VALID_RELOADS}")
        self.assertTrue(gw.alive(), "gateway died:\n" + self.stderr_tail())

    # --------------------------------------------------------------------------------------------
    def test_watch_swaps_without_signals(self):
        gw = self.start(watch=True, workers=2, first="w1")
        self.assertEqual(self.xv(), "w1/w1")

        def wait_xv(want, what):
            try:
                lgtest.wait_until(lambda: self.xv() == want, 3.0, interval=0.05, what=what)
            except TimeoutError:
                self.fail(f"{what}: requests still answer X-V {self.xv()!r}, not {want!r}, after 3 s; "
                          f"stderr:\n{self.stderr_tail()}")

        self.replace(script("w2"))  # temp file + rename, as editors save
        wait_xv("w2/w2", "rename-save picked up by the watcher")
        self.write(script("w3"))  # an in-place rewrite
        wait_xv("w3/w3", "in-place rewrite picked up by the watcher")

        ok0, err0 = reload_counts(gw.admin_port)
        since = len(gw.stderr_text())
        name, content, where = BAD[0]
        self.replace(content)
        try:
            lgtest.wait_until(lambda: reload_counts(gw.admin_port)[1] > err0, 3.0, what="rejected reload")
        except TimeoutError:
            self.fail(f"a {name} script was not rejected within 3 s; stderr:\n{self.stderr_tail(since)}")
        lgtest.wait_until(lambda: re.search(where, gw.stderr_text()[since:]), 2.0, what="file:line in stderr")
        tail = gw.stderr_text()[since:]
        self.assertIn("config reload rejected", tail)
        self.assertRegex(tail, r"scripts/" + where)
        self.assertEqual(reload_counts(gw.admin_port)[0], ok0, "the bad script was accepted")
        for _ in range(5):
            self.assertEqual(self.xv(), "w3/w3", "the old version must keep serving")

        self.replace(script("w4"))  # and the watcher still works after a rejection
        wait_xv("w4/w4", "save after a rejected one")
        samples = get_metrics(gw.admin_port)
        self.assertEqual(metric(samples, "gateway_script_reloads_total", result="ok"), 3)
        self.assertEqual(metric(samples, "gateway_script_reloads_total", result="error"), 1)
        self.assertTrue(gw.alive(), "gateway died:\n" + self.stderr_tail())


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--load":
        load_main(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        unittest.main(verbosity=2)
