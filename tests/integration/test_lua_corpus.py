#!/usr/bin/env python3
"""Replays every case of the hostile Lua corpus (LG_SHARED_DIR/corpus/lua, MANIFEST.tsv) through
the real gateway: each case file (generic Lua 5.1 `return function(req) ... end`) is wrapped into
an `access` handler and hot-swapped in as scripts/case.lua with SIGHUP, then /case is requested
`requests` times and the answers are mapped to the manifest's outcomes:

  LOAD_REJECT      the reload is rejected (stderr: "config reload rejected" + scripts/case.lua:LINE:),
                   the previous version (a baseline script) keeps serving
  OK_CLEAN         200 with body "clean"
  CPU_KILL         500 (or 503), gateway_script_errors_total{script="case",kind="cpu"} +1
  MEM_KILL         500, kind="memory"
  RUNTIME_ERROR /  500, kind="runtime"
  RESPONSE_REJECT

Never acceptable: the gateway dying, a request that does not finish within 10 s, a body starting
with ESCAPED, a victim answering POLLUTED, a 500 that carries the error text. After every case
/ok (its own script) must answer 200 "clean", and /victim, /victim2 (victim_globals and
victim_string_methods loaded next to the case) must answer "clean". Cases with a @victim get it
loaded next to the attacker (same VM generation) and once more after a further SIGHUP.
Binary .ljbc cases are also loaded raw, as a script of their own (expected: LOAD_REJECT).

LG_LUA_CASES=id1,id2 runs a subset. A table case -> outcome is printed at the end.
"""
import json
import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, get_metrics, header, metric  # noqa: E402

CORPUS = os.path.join(lgtest.LG_SHARED_DIR, "corpus", "lua")
MANIFEST = os.path.join(CORPUS, "MANIFEST.tsv")
REQUEST_TIMEOUT = 10.0
RELOAD_TIMEOUT = 15.0

CONFIG = lgtest.CONFIG_HEAD + lgtest.SCRIPTS_HEAD + """\
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - { name: case,    match: { path: "/case" },    upstream: app, scripts: [ case ] }
  - { name: ok,      match: { path: "/ok" },      upstream: app, scripts: [ ok ] }
  - { name: victim,  match: { path: "/victim" },  upstream: app, scripts: [ victim ] }
  - { name: victim2, match: { path: "/victim2" }, upstream: app, scripts: [ victim2 ] }
"""

WRAP_HEAD = b"local __case = (function()\n"
WRAP_TAIL = b"""
end)()
if type(__case) ~= "function" then error("case did not return a function") end
return { access = function(conf)
  local req = { method = gw.request.get_method(), path = gw.request.get_path(),
                headers = gw.request.get_headers(), body = "" }
  local res = __case(req)
  if type(res) ~= "table" then error("case returned no table") end
  return gw.response.exit(res.status, res.body or "", res.headers)
end }
"""

BASELINE = b'return { access = function(conf) return gw.response.exit(200, "baseline") end }\n'

ERROR_OUTCOMES = {"CPU_KILL", "MEM_KILL", "RUNTIME_ERROR", "RESPONSE_REJECT"}
KIND_OF = {"CPU_KILL": "cpu", "MEM_KILL": "memory", "RUNTIME_ERROR": "runtime", "RESPONSE_REJECT": "runtime"}


def wrap(source):
    """A case file (bytes) as a gateway script: the case's chunk runs at load time inside a
    function, its handler becomes the access handler."""
    return WRAP_HEAD + source + WRAP_TAIL


def ok_script(gen):
    return (f'return {{ access = function(conf) return gw.response.exit(200, "clean", '
            f'{{ ["X-Gen"] = "{gen}" }}) end }}\n').encode()


def read_case(rel):
    with open(os.path.join(CORPUS, rel), "rb") as f:
        return f.read()


def load_manifest():
    cases = []
    with open(MANIFEST, encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    cols = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(cols, line.split("\t")))
        row["expects"] = set(row["expect"].split("|"))
        row["requests"] = int(row.get("requests") or 1)
        row["victim"] = None if row.get("victim") in (None, "", "-") else row["victim"]
        cases.append(row)
    wanted = os.environ.get("LG_LUA_CASES")
    if wanted:
        ids = {w.strip() for w in wanted.split(",") if w.strip()}
        cases = [c for c in cases if c["id"] in ids]
    return cases


def send(port, path, headers=(), timeout=REQUEST_TIMEOUT):
    extra = b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers)
    with RawConn(port, timeout=timeout) as c:
        c.send(lgtest.req("GET", path, extra=extra, host="corpus.test"))
        return c.read_response(timeout=timeout)


def script_error_counts(admin_port, script="case"):
    out = {}
    for n, l, v in get_metrics(admin_port):
        if n == "gateway_script_errors_total" and l.get("script") == script:
            out[l.get("kind")] = out.get(l.get("kind"), 0) + v
    return out


def reload_counts(admin_port):
    m = get_metrics(admin_port)
    return (metric(m, "gateway_config_reloads_total", result="ok"),
            metric(m, "gateway_config_reloads_total", result="error"))


class Bench:
    """The gateway under test with its scripts; restarted after a crash or hang."""

    def __init__(self, app):
        self.app = app
        self.gw = None
        self.gen = 0
        self.served_gen = 0

    def files(self):
        return {"scripts/case.lua": BASELINE, "scripts/ok.lua": ok_script(0),
                "scripts/victim.lua": wrap(read_case("victim_globals.lua")),
                "scripts/victim2.lua": wrap(read_case("victim_string_methods.lua"))}

    def start(self):
        self.gen = self.served_gen = 0
        self.gw = lgtest.Gateway(CONFIG, extra_files=self.files(), values={"APP_PORT": self.app.port})
        self.gw.__enter__()

    def restart(self):
        if self.gw is not None:
            if self.gw.proc is not None and self.gw.alive():
                self.gw.proc.kill()  # our own child, by PID: it may be wedged
            self.gw.close()
        self.start()

    def close(self):
        if self.gw is not None:
            self.gw.close()

    def write(self, name, content):
        with open(os.path.join(self.gw.dir, "scripts", name + ".lua"), "wb") as f:
            f.write(content)

    def stderr_mark(self):
        return len(self.gw.stderr_text())

    def ok_gen(self, timeout=2.0):
        """(status, body, X-Gen) of /ok, or None if it does not answer."""
        try:
            r = send(self.gw.port, "/ok", timeout=timeout)
        except (OSError, ConnectionError):
            return None
        return r.status, r.body, header(r.headers, "x-gen")

    def reload(self):
        """Writes a new ok.lua generation, sends SIGHUP -> 'ok' (the worker serves the new
        generation), 'error' (rejected) or 'timeout'."""
        self.gen += 1
        self.write("ok", ok_script(self.gen))
        ok0, err0 = reload_counts(self.gw.admin_port)
        self.gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            if not self.gw.alive():
                return "died"
            _, err = reload_counts(self.gw.admin_port)
            if err > err0:
                return "error"
            g = self.ok_gen()
            if g and g[2] == str(self.gen):
                self.served_gen = self.gen
                return "ok"
            time.sleep(0.05)
        return "timeout"


class LuaCorpusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(MANIFEST):
            raise unittest.SkipTest(f"no Lua corpus at {CORPUS} (set LG_SHARED_DIR)")

    def test_corpus(self):
        cases = load_manifest()
        self.assertTrue(cases, "no cases selected")
        t_start = time.monotonic()
        rows = []
        with lgtest.Backend("app") as app:
            bench = Bench(app)
            bench.start()
            g = bench.ok_gen(timeout=REQUEST_TIMEOUT)
            if g is None or g[:2] != (200, b"clean") or g[2] != "0":
                bench.close()
                self.fail(f"scripts do not run: GET /ok (script ok.lua) answered {g}; nothing replayed")
            try:
                for case in cases:
                    variants = [(case["id"], wrap(read_case(case["file"])), case["expects"])]
                    if case["file"].endswith(".ljbc"):
                        variants.append((case["id"] + " (raw)", read_case(case["file"]), {"LOAD_REJECT"}))
                    for label, source, expects in variants:
                        with self.subTest(case=label):
                            t0 = time.monotonic()
                            try:
                                outcome, problems, notes = self.run_case(bench, case, source, expects)
                            except Exception as e:  # noqa: BLE001 - a broken bench must not stop the run
                                outcome, problems, notes = "HARNESS_ERROR", [f"{type(e).__name__}: {e}"], []
                                alive = bench.gw is not None and bench.gw.alive()
                                problems.append(f"gateway alive: {alive}; restarted")
                                bench.restart()
                            rows.append((label, "|".join(sorted(expects)), outcome, time.monotonic() - t0,
                                         problems, notes))
                            if problems:
                                self.fail(f"{label} (expect {'|'.join(sorted(expects))}): " + "; ".join(problems))
            finally:
                bench.close()
                self.print_table(rows, time.monotonic() - t_start)

    @staticmethod
    def print_table(rows, total):
        w = max(len(r[0]) for r in rows) if rows else 10
        out = [f"\n{'case':<{w}}  {'expect':<36} {'outcome':<40} {'s':>5}  result"]
        for label, expect, outcome, secs, problems, notes in rows:
            res = "FAIL: " + "; ".join(problems) if problems else "ok"
            if notes:
                res += " (note: " + "; ".join(notes) + ")"
            out.append(f"{label:<{w}}  {expect:<36} {outcome:<40} {secs:5.2f}  {res}")
        bad = sum(1 for r in rows if r[4])
        out.append(f"{len(rows)} runs, {bad} failed, {total:.1f} s")
        print("\n".join(out), file=sys.stderr)

    # ------------------------------------------------------------------------------------------
    def run_case(self, bench, case, source, expects):
        problems, notes, labels = [], [], []

        # 1. a known previous version, so that a rejected reload can be seen to keep it
        if "LOAD_REJECT" in expects:
            bench.write("case", BASELINE)
            res = bench.reload()
            if res != "ok":
                problems.append(f"could not load the baseline before the case ({res})")
                bench.restart()

        # 2. hot swap the case in (with its victim, or victim_globals, next to it)
        victim_src = wrap(read_case(case["victim"] if case["victim"] else "victim_globals.lua"))
        since = bench.stderr_mark()
        bench.write("case", source)
        bench.write("victim", victim_src)
        res = bench.reload()
        new_err = lambda: bench.gw.stderr_text()[since:]  # noqa: E731

        if res in ("died", "timeout"):
            problems.append(f"SIGHUP with the case: {res}; stderr: {new_err()[-600:]!r}")
            bench.restart()
            return f"RELOAD_{res.upper()}", problems, notes

        if res == "error":
            text = new_err()
            if "LOAD_REJECT" not in expects:
                problems.append(f"the reload was rejected: {self.reject_line(text)!r}")
            if "config reload rejected" not in text:
                problems.append(f"stderr lacks 'config reload rejected': {text[-600:]!r}")
            if not re.search(r"scripts/case\.lua:\d+: ", text):
                problems.append(f"stderr lacks 'scripts/case.lua:LINE: message': {text[-600:]!r}")
            r = self.request(bench, "/case")
            if isinstance(r, str) or (r.status, r.body) != (200, b"baseline"):
                problems.append(f"after the rejected reload GET /case: expected 200 'baseline' (the previous "
                                f"version), got {self.short(r)}")
            labels.append("LOAD_REJECT")
        else:  # reloaded
            if expects == {"LOAD_REJECT"}:
                problems.append("the load was accepted (expected LOAD_REJECT)")
            for i in range(case["requests"] if expects == case["expects"] else 1):
                label, p, n = self.one_request(bench, i, expects, since)
                labels.append(label)
                problems += p
                notes += n
                if label in ("HUNG", "DIED", "CLOSED"):
                    break

        outcome = ",".join(labels)
        if not bench.gw.alive():
            problems.append(f"the gateway died (exit code {bench.gw.proc.returncode}); stderr tail: "
                            f"{bench.gw.stderr_text()[-600:]!r}")
            bench.restart()
            return outcome + " +DIED", problems, notes
        if "HUNG" in labels:
            bench.restart()
            return outcome, problems, notes

        # 3. victims (same generation as the attacker), then the brief's reload-and-ask for @victim
        for path in ("/victim", "/victim2"):
            r = self.request(bench, path)
            if isinstance(r, str) or r.status != 200 or r.body != b"clean":
                problems.append(f"GET {path} after the case: expected 200 'clean', got {self.short(r)}")
        if case["victim"] and res == "ok":
            bench.write("victim", victim_src + b"-- reloaded\n")
            r2 = bench.reload()
            if r2 != "ok":
                problems.append(f"reloading the victim {case['victim']}: {r2}")
            else:
                r = self.request(bench, "/victim")
                if isinstance(r, str) or r.status != 200 or r.body != b"clean":
                    problems.append(f"GET /victim ({case['victim']}) after a reload: expected 200 'clean', "
                                    f"got {self.short(r)}")

        # 4. the worker keeps serving other routes
        g = bench.ok_gen(timeout=REQUEST_TIMEOUT)
        if g is None or g[0] != 200 or g[1] != b"clean":
            problems.append(f"GET /ok after the case: expected 200 'clean', got {g}")
            bench.restart()
        elif g[2] != str(bench.served_gen):
            problems.append(f"GET /ok serves generation {g[2]}, expected {bench.served_gen}")
        if "\nSet-Cookie: session=attacker" in new_err():
            problems.append("an error message injected a line into the log (CR/LF not escaped)")
        return outcome, problems, notes

    # ------------------------------------------------------------------------------------------
    def request(self, bench, path, headers=()):
        """A Response, or 'HUNG' / 'CLOSED: ...'."""
        try:
            return send(bench.gw.port, path, headers=headers)
        except socket.timeout:
            return "HUNG"
        except (ConnectionError, OSError) as e:
            return f"CLOSED: {e!r}"

    @staticmethod
    def short(r):
        if isinstance(r, str):
            return r
        return f"{r.status} {r.body[:160]!r}"

    @staticmethod
    def reject_line(text):
        for line in text.splitlines():
            if "case.lua" in line or "rejected" in line:
                return line[:300]
        return text[-300:]

    def one_request(self, bench, i, expects, since):
        problems, notes = [], []
        before = script_error_counts(bench.gw.admin_port)
        err_mark = bench.stderr_mark()
        headers = [("User-Agent", "LG-Corpus/1.0"), ("Authorization", f"Bearer user-{i}-token")]
        t0 = time.monotonic()
        r = self.request(bench, "/case", headers)
        secs = time.monotonic() - t0
        if r == "HUNG":
            problems.append(f"request {i + 1}: no complete answer within {REQUEST_TIMEOUT} s")
            return "HUNG", problems, notes
        if isinstance(r, str):
            if not bench.gw.alive():
                return "DIED", problems, notes  # reported by the caller
            problems.append(f"request {i + 1}: {r}")
            return "CLOSED", problems, notes
        if r.body.startswith(b"ESCAPED") or b"ESCAPED" in r.body:
            problems.append(f"request {i + 1}: ESCAPED: {r.status} {r.body[:200]!r}")
            return "ESCAPED", problems, notes
        for n, v in r.headers:
            if n.lower() in ("set-cookie", "injected", "x"):
                problems.append(f"request {i + 1}: injected response header {n}: {v}")

        if r.status == 200 and r.body == b"clean":
            if "OK_CLEAN" not in expects:
                problems.append(f"request {i + 1}: 200 'clean' but the manifest expects {'|'.join(sorted(expects))}")
            return "OK_CLEAN", problems, notes

        if r.status not in (500, 503):
            problems.append(f"request {i + 1}: expected {'|'.join(sorted(expects))}, got {self.short(r)}")
            return f"HTTP_{r.status}", problems, notes

        # an error answer: which kind?
        try:
            lgtest.wait_until(lambda: self._new_kinds(bench, before), 3.0, what="script error metric")
        except TimeoutError:
            pass
        kinds = self._new_kinds(bench, before)
        m = None
        try:
            m = lgtest.wait_until(lambda: re.search(r"script case failed \((\w+)\): ([^\n]*)",
                                                    bench.gw.stderr_text()[err_mark:]), 3.0, what="failed line")
        except TimeoutError:
            pass
        log_kind = m.group(1) if m else None
        if not kinds:
            problems.append(f"request {i + 1}: {r.status} without gateway_script_errors_total{{script=\"case\"}} "
                            f"increasing")
        if not m:
            problems.append(f"request {i + 1}: {r.status} without a 'script case failed (<kind>)' line in stderr")
        if kinds and log_kind and kinds != {log_kind}:
            problems.append(f"request {i + 1}: metric kinds {sorted(kinds)} vs stderr kind {log_kind}")
        kind = log_kind or (sorted(kinds)[0] if kinds else None)

        # the generic error body, no error text
        try:
            obj = json.loads(r.body)
            if obj.get("error") != "script error" or obj.get("request_id") != header(r.headers, "x-request-id"):
                problems.append(f"request {i + 1}: not the generic script error body: {r.body[:200]!r}")
        except ValueError:
            problems.append(f"request {i + 1}: error body is not JSON: {r.body[:200]!r}")
        if b"case.lua" in r.body or b"Set-Cookie" in r.body:
            problems.append(f"request {i + 1}: the error text reached the client: {r.body[:200]!r}")

        if kind == "cpu":
            label = "CPU_KILL"
        elif kind == "memory":
            label = "MEM_KILL"
        elif kind == "runtime":
            label = "RESPONSE_REJECT" if ("RESPONSE_REJECT" in expects and "RUNTIME_ERROR" not in expects) \
                else "RUNTIME_ERROR"
        else:
            label = f"ERROR_{r.status}(kind ?)"
        label_s = f"{label}({r.status},{secs:.2f}s)"

        err_expects = expects & ERROR_OUTCOMES
        if not err_expects:
            problems.append(f"request {i + 1}: {label} {self.short(r)} but the manifest expects "
                            f"{'|'.join(sorted(expects))}; stderr: {m.group(2)[:200] if m else '-'}")
        elif err_expects == {"CPU_KILL"} and kind != "cpu":
            problems.append(f"request {i + 1}: manifest says CPU_KILL, got kind {kind} "
                            f"({m.group(2)[:200] if m else '-'})")
        elif err_expects == {"MEM_KILL"} and kind != "memory":
            problems.append(f"request {i + 1}: manifest says MEM_KILL, got kind {kind} "
                            f"({m.group(2)[:200] if m else '-'})")
        elif label not in expects:
            notes.append(f"kind {kind} where the manifest says {'|'.join(sorted(err_expects))}"
                         f" ({m.group(2)[:120] if m else '-'})")
        if r.status == 503 and label != "CPU_KILL":
            problems.append(f"request {i + 1}: 503 is only accepted for CPU_KILL (got {label})")
        return label_s, problems, notes

    @staticmethod
    def _new_kinds(bench, before):
        now = script_error_counts(bench.gw.admin_port)
        return {k for k, v in now.items() if v > before.get(k, 0)}


if __name__ == "__main__":
    unittest.main(verbosity=2)
