#!/usr/bin/env python3
"""Replays every raw HTTP/1.1 case of ../shared/corpus/http through the real gateway.

One gateway and two recording lg-backends serve all cases; each case is sent on a fresh client
connection, then checked on both sides:
  (a) what the client got: the final statuses and whether the gateway closed the connection,
      against the alternatives derived from the manifest's `expected` column (see derive());
  (b) what the upstreams received (lg-backend --record, read from the offsets marked before the
      case, since pooled upstream connections carry several cases): the manifest's `must_not`.

ROUTING MODEL (authentication arrives in a later version):
  The corpus assumes "/public/* is open, /admin* requires authentication". Until key-auth exists,
  "protected" is modelled by WHERE a request lands:
      /admin, /admin/*      -> upstream admin_app  -> lg-backend "admin"  (own record dir)
      /public/*, /* (rest)  -> upstream public_app -> lg-backend "public" (own record dir)
  A request that the gateway forwards to the admin backend is one the admin ACL would have
  judged, so a path-bypass case (120-136) passes when:
    - the public backend never receives a request whose path normalises (RFC 3986: decode
      unreserved %XX, merge slashes, remove dot-segments) to /admin or /admin/...;
    - the admin backend receives the normalised path itself ("/admin", never "../", "//",
      "%61dmin");
    - no forwarded path has a "." or ".." segment even after one more percent-decoding
      (135: decoding twice must not create a traversal upstream).
  The status for "ACL applies" is therefore 200 from the admin backend today, 401/403 later.

Run by hand: see README.md beside this file; `python3 test_corpus_http.py --table` prints the
derived expectation table without starting anything; LG_CORPUS_CASES=010,120 runs a subset.
"""
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

CORPUS_DIR = os.path.join(lgtest.LG_SHARED_DIR, "corpus", "http")
MANIFEST = os.path.join(CORPUS_DIR, "MANIFEST.tsv")

CONFIG = """\
workers: 1
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
limits: { max_header_bytes: 32k, max_uri_bytes: 8k, max_headers: 100, max_body_bytes: 10m, client_header_timeout: 2s }
upstreams:
  public_app: { targets: [ "127.0.0.1:{PUBLIC_BACKEND_PORT}" ], timeouts: { connect: 1s, read: 5s } }
  admin_app:  { targets: [ "127.0.0.1:{ADMIN_BACKEND_PORT}" ], timeouts: { connect: 1s, read: 5s } }
routes:
  - { name: admin-exact, match: { path: "/admin" },    upstream: admin_app }
  - { name: admin,       match: { path: "/admin/*" },  upstream: admin_app }
  - { name: public,      match: { path: "/public/*" }, upstream: public_app }
  - { name: catch-all,   match: { path: "/*" },        upstream: public_app }
"""

SILENCE = 2.0          # s of silence that ends reading a case's responses (as send.py)
SETTLE = 0.5           # shorter silence once a complete final response is in
BOUNDED_CPU_S = 3.0    # "bounded CPU" cases must be answered within this
STATUS_RE = re.compile(r"(?<![\d^.])([1-5]\d\d)(?![\d.])")
CLOSE_RE = re.compile(r"(\+|;|\bthen)\s*close\b", re.I)


# ---------------------------------------------------------------------------------------------
# expectations derived from MANIFEST.tsv

class Alt:
    """One acceptable outcome: the final statuses in order (a set of allowed codes per response)
    and whether the gateway must close the connection afterwards."""

    def __init__(self, statuses, close):
        self.statuses = [frozenset(s) for s in statuses]
        self.close = close

    def matches(self, finals, closed):
        return (len(finals) == len(self.statuses) and all(f in s for f, s in zip(finals, self.statuses))
                and (closed or not self.close))

    def __str__(self):
        seq = ",".join("/".join(str(c) for c in sorted(s)) for s in self.statuses)
        return f"[{seq}]" + ("+close" if self.close else "")


class Case:
    def __init__(self, row):
        self.file, self.category, self.tests, self.expected, self.must_not, self.reference = row
        self.id = self.file.split("_", 1)[0]
        self.path = os.path.join(CORPUS_DIR, "cases", self.file)
        self.alts, self.interim, self.notes = derive(self)
        self.split_expect = "harness sends headers" in self.tests
        self.time_limit = BOUNDED_CPU_S if "bounded CPU" in self.expected else None
        self.checks = CASE_CHECKS.get(self.id, [])


# Reviewed by hand: rows whose `expected` text can't name the outcome that applies to this
# gateway's test config. Each entry says why; the text it was based on must still be in the row.
REVIEWED = {
    "125": ("404 or routed",
            {200, 401, 403, 404},
            "'/ADMIN' may be routed as a different path (the catch-all -> public backend, 200), "
            "or protected case-insensitively (admin backend / 401 / 403)"),
    "136": ("404, or 400",
            {200, 400, 404},
            "our config has a catch-all '/*', so the normalised /etc/passwd is routed to the public "
            "backend (200) instead of a 404; it must arrive as /etc/passwd, never with '../'"),
}


def _segment(text):
    """Statuses allowed by one top-level alternative of `expected`, plus whether it closes."""
    statuses = {int(s) for s in STATUS_RE.findall(text)}
    # A lower-case "or" clause without a status code describes forwarding (the upstream's 200):
    # "400 (or replace CR with SP before forwarding)", "400, or accept and forward ...",
    # "stripped (not forwarded) or 400", "404 or routed as a different path".
    parts = re.split(r"\bor\b", text)
    if len(parts) > 1 and any(not STATUS_RE.search(p) for p in parts):
        statuses.add(200)
    if not {s for s in statuses if s >= 200}:
        statuses.add(200)  # no status at all: "-> /admin -> ACL", "route /public": forwarded
    if "ACL" in text:      # "ACL applies": the auth layer answers, or (today) the admin backend
        statuses |= {200, 401, 403}
    return statuses, bool(CLOSE_RE.search(text))


def derive(case):
    """-> (alternatives, interim statuses, notes). Top-level alternatives are split on ' OR '."""
    alts, interim, notes = [], set(), []
    for seg in re.split(r",?\s+OR\s+", case.expected):
        statuses, close = _segment(seg)
        interim |= {s for s in statuses if s < 200}
        finals = {s for s in statuses if s >= 200}
        m = re.search(r"\btwo (\d{3})s\b", seg)
        count = 2 if m else 1
        alts.append(Alt([finals] * count, close))
    if case.id in REVIEWED:
        anchor, allowed, why = REVIEWED[case.id]
        if anchor not in case.expected:
            raise AssertionError(f"{case.file}: manifest row changed; review REVIEWED[{case.id!r}]")
        alts = [Alt([allowed], a.close) for a in alts[:1]]
        notes.append("reviewed: " + why)
    return alts, interim, notes


def load_manifest():
    """Every manifest row as a Case; raises if a case file is missing."""
    with open(MANIFEST, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if rows and rows[0][0] == "file":
        rows = rows[1:]
    cases = []
    for row in rows:
        if len(row) != 6:
            raise AssertionError(f"MANIFEST.tsv: row with {len(row)} columns: {row[:1]}")
        case = Case(row)
        if not os.path.isfile(case.path):
            raise AssertionError(f"MANIFEST.tsv names {case.file} but {case.path} does not exist")
        cases.append(case)
    return cases


def print_table(cases, out=sys.stdout):
    groups = {}
    for c in cases:
        key = " | ".join(str(a) for a in c.alts)
        groups.setdefault(key, []).append(c.id)
        extra = [f"interim {sorted(c.interim)}"] if c.interim else []
        extra += ["split-expect"] if c.split_expect else []
        extra += [f"<= {c.time_limit:g} s"] if c.time_limit else []
        extra += [chk.__name__ for chk in c.checks] + c.notes
        print(f"{c.id}  {key:34} {'; '.join(extra)}", file=out)
    print(f"\n{len(cases)} cases; by expected outcome:", file=out)
    for key, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(ids):3}  {key:34} {' '.join(ids)}", file=out)


# ---------------------------------------------------------------------------------------------
# reference path normalisation (RFC 3986 6.2.2 + 5.2.4, plus merged slashes)

UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def pct_canonical(path):
    """Decodes %XX of unreserved characters, upper-cases the hex of the others."""
    out, i = [], 0
    while i < len(path):
        hx = path[i + 1:i + 3]
        if path[i] == "%" and re.fullmatch(r"[0-9A-Fa-f]{2}", hx):
            ch = chr(int(hx, 16))
            out.append(ch if ch in UNRESERVED else "%" + hx.upper())
            i += 3
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def remove_dot_segments(path):
    out, inp = "", path
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./"):
            inp = inp[2:]
        elif inp.startswith("/./"):
            inp = "/" + inp[3:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../") or inp == "/..":
            inp = "/" + inp[4:]
            cut = out.rfind("/")
            out = out[:cut] if cut >= 0 else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            m = re.match(r"/?[^/]*", inp)
            out += m.group(0)
            inp = inp[m.end():]
    return out


def normalize(target):
    path = target.split("?", 1)[0]
    return remove_dot_segments(re.sub(r"/{2,}", "/", pct_canonical(path)))


def route_of(path):
    """The backend the test config routes a normalised path to."""
    return "admin" if path == "/admin" or path.startswith("/admin/") else "public"


def has_dot_segment(path):
    return any(seg in (".", "..") for seg in path.split("?", 1)[0].split("/"))


# ---------------------------------------------------------------------------------------------
# per-case checks (the manifest's must_not / expected details); each returns a list of problems

class Outcome:
    """Everything one case produced."""

    def __init__(self, res, forwarded):
        self.res = res
        self.responses, self.complete, self.rest = lgtest.parse_responses_detail(res.data)
        self.finals = lgtest.final_statuses(self.responses)
        self.forwarded = forwarded  # [(backend name, RecordedRequest)]

    def heads(self):
        return [r for _, r in self.forwarded]

    def aborted(self):
        """Requests whose head went upstream but whose body was cut short."""
        return [(b, r) for b, r in self.forwarded if r.head_complete and not r.complete]


def forwarded_body_hello(o):
    """upstream gets exactly the 5 body bytes 'hello'"""
    return [f"forwarded body {r.body!r}, expected b'hello'" for r in o.heads() if r.body != b"hello"]


def forwarded_cl_is_5(o):
    """forwarded as one 'Content-Length: 5' (or re-framed as chunked), never the original list"""
    bad = []
    for r in o.heads():
        cls = lgtest.header_all(r.headers, "content-length")
        if cls != ["5"] and not (not cls and "chunked" in (lgtest.header(r.headers, "transfer-encoding") or "")):
            bad.append(f"forwarded Content-Length lines {cls!r}, expected exactly ['5']")
    return bad


def forwarded_cl_not_original(o):
    """never forwarded with the original 'Content-Length: 4'"""
    return ["forwarded with the original Content-Length: 4" for r in o.heads()
            if "4" in lgtest.header_all(r.headers, "content-length")]


def forwarded_order_one_two(o):
    """pipelined requests forwarded in order /one then /two (none dropped)"""
    targets = [r.target for r in o.heads()]
    return [] if not targets or targets == ["/one", "/two"] else [f"forwarded targets {targets}, expected ['/one', '/two']"]


def trailer_not_merged(o):
    """trailer Content-Length/Transfer-Encoding not merged into the forwarded head"""
    bad = []
    for r in o.heads():
        if "50" in lgtest.header_all(r.headers, "content-length"):
            bad.append("trailer 'Content-Length: 50' was merged into the forwarded head")
        if any("identity" in v.lower() for v in lgtest.header_all(r.headers, "transfer-encoding")):
            bad.append("trailer 'Transfer-Encoding: identity' was merged into the forwarded head")
    return bad + forwarded_body_hello(o)


def method_kept(o):
    """an extension method is forwarded as itself, never as GET"""
    return [f"forwarded method {r.method!r}, expected 'FOOBAR'" for r in o.heads() if r.method != "FOOBAR"]


def expect_continue(o):
    """'100 Continue' before the body was sent (or Expect forwarded upstream), then 200 with 'hello'"""
    bad = []
    got_100 = o.res.interim.startswith(b"HTTP/1.1 100")
    forwarded_expect = any("100-continue" in (lgtest.header(r.headers, "expect") or "").lower() for r in o.heads())
    if not got_100 and not forwarded_expect:
        bad.append(f"no '100 Continue' within 1 s (interim {o.res.interim[:40]!r}) and Expect not forwarded")
    return bad + forwarded_body_hello(o)


def no_h2c_upgrade(o):
    """Upgrade / HTTP2-Settings not forwarded, never a 101 tunnel"""
    bad = [f"client got {s}" for s in o.finals if s == 101]
    for r in o.heads():
        for name in ("upgrade", "http2-settings"):
            if lgtest.header(r.headers, name) is not None:
                bad.append(f"forwarded {name}: {lgtest.header(r.headers, name)!r}")
        conn = ",".join(lgtest.header_all(r.headers, "connection")).lower()
        if "upgrade" in conn or "http2-settings" in conn:
            bad.append(f"forwarded Connection: {conn!r}")
    return bad


def xff_real_peer(o):
    """upstream sees the real peer (127.0.0.1) last in X-Forwarded-For; X-Real-IP is the peer"""
    bad = []
    for r in o.heads():
        xff = ",".join(lgtest.header_all(r.headers, "x-forwarded-for"))
        if not xff or xff.split(",")[-1].strip() != "127.0.0.1":
            bad.append(f"forwarded X-Forwarded-For {xff!r} does not end with the peer 127.0.0.1")
        for v in lgtest.header_all(r.headers, "x-real-ip"):
            if v.strip() != "127.0.0.1":
                bad.append(f"forwarded X-Real-IP {v!r} is not the peer")
    return bad


CASE_CHECKS = {
    "002": [forwarded_body_hello],
    "003": [forwarded_body_hello],
    "004": [forwarded_order_one_two],
    "007": [forwarded_body_hello, forwarded_cl_is_5],
    "011": [forwarded_cl_not_original],
    "031": [forwarded_cl_is_5],
    "040": [forwarded_order_one_two],
    "059": [trailer_not_merged],
    "096": [method_kept],
    "110": [expect_continue],
    "113": [no_h2c_upgrade],
    "116": [xff_real_peer],
}

def request_line(r):
    return r.head.split(b"\r\n", 1)[0][:80]


HEAD_BAD_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def generic_problems(case, o):
    """The rules every case obeys (the manifest's must_not, generalised)."""
    bad = []
    # (a) the client side
    if not o.complete or o.rest:
        bad.append(f"client received bytes that are not a complete HTTP response: {o.res.data[:120]!r}")
    if not any(a.matches(o.finals, o.res.closed) for a in case.alts):
        bad.append(f"client got {o.finals} closed={o.res.closed}; allowed: {' | '.join(map(str, case.alts))}")
    seen_final = False
    for r in o.responses:
        if r.status >= 200:
            seen_final = True
        elif seen_final:
            bad.append(f"interim {r.status} sent after a final response")
    if case.time_limit and (o.res.elapsed is None or o.res.elapsed > case.time_limit):
        bad.append(f"answer took {o.res.elapsed} s (limit {case.time_limit} s)")
    # (b) what reached the upstreams
    # Every forwarded request gets the upstream's 2xx, so forwarded == 2xx answers: more is a
    # smuggled request, and a 4xx/5xx case forwards nothing. One exception, because bodies stream:
    # a request whose head went upstream before a body error was found may stay unfinished
    # ("aborted") if the client got an error and that upstream connection is never used again
    # (run_case checks the reuse).
    ok_count = sum(1 for s in o.finals if 200 <= s < 300)
    counted = [(b, r) for b, r in o.forwarded if r.complete or not r.head_complete]
    if len(counted) != ok_count:
        lines = [f"{b}: {request_line(r)!r}" for b, r in counted]
        what = "smuggled/extra request" if len(counted) > ok_count else "missing request"
        bad.append(f"{len(counted)} request(s) forwarded for {ok_count} 2xx answer(s) ({what}): {lines}")
    for b, r in o.aborted():
        if ok_count or not o.finals or min(o.finals) < 400 or not o.res.closed:
            bad.append(f"{b} got an unfinished request {request_line(r)!r} although the client got "
                       f"{o.finals} closed={o.res.closed}")
    for backend, r in o.forwarded:
        te, cl = lgtest.header_all(r.headers, "transfer-encoding"), lgtest.header_all(r.headers, "content-length")
        if te and cl:
            bad.append(f"{backend} got Transfer-Encoding {te} together with Content-Length {cl}")
        if len(cl) > 1:
            bad.append(f"{backend} got {len(cl)} Content-Length lines {cl}")
        if not r.head_complete:
            bad.append(f"{backend} got a stray fragment {r.head[:60]!r}")
        for line in r.head.split(b"\r\n"):
            if HEAD_BAD_BYTES.search(line):
                bad.append(f"{backend} got a head line with CR/LF/NUL/CTL: {line[:80]!r}")
            elif line[:1] in (b" ", b"\t"):
                bad.append(f"{backend} got an obs-fold / whitespace-led line: {line[:80]!r}")
        path = r.target.split("?", 1)[0]
        norm = normalize(r.target)
        if backend != route_of(norm) and not (backend == "admin" and route_of(norm.lower()) == "admin"):
            bad.append(f"{backend} got {r.target!r}, which normalises to {norm!r} (route: {route_of(norm)}) "
                       "- the admin ACL would be bypassed" if route_of(norm) == "admin" else
                       f"{backend} got {r.target!r}, which belongs to the {route_of(norm)} route")
        if backend == "admin" and path != norm:
            bad.append(f"admin got the unnormalised path {r.target!r} (expected {norm!r})")
        decoded = urllib.parse.unquote_to_bytes(path).decode("latin-1")
        if has_dot_segment(path) or has_dot_segment(decoded):
            bad.append(f"{backend} got a path with dot-segments (after one decoding: {decoded!r})")
    return bad


# ---------------------------------------------------------------------------------------------

class CorpusHTTPTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cases = load_manifest()
        only = {c.strip() for c in os.environ.get("LG_CORPUS_CASES", "").split(",") if c.strip()}
        if only:
            cls.cases = [c for c in cls.cases if c.id in only or c.file in only]
        print_table(cls.cases, out=sys.stderr)
        cls.public = lgtest.Backend("public", record_dir=True)
        cls.admin = lgtest.Backend("admin", record_dir=True)
        cls.gw = None
        cls.unfinished = {}  # recording path -> case id that left an unfinished request on it
        try:
            cls.public.start()
            cls.admin.start()
            cls._start_gateway()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start_gateway(cls):
        if cls.gw:
            cls.gw.close()
        cls.gw = lgtest.Gateway(CONFIG, values={"PUBLIC_BACKEND_PORT": cls.public.port,
                                                "ADMIN_BACKEND_PORT": cls.admin.port})
        cls.gw.__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.gw:
            cls.gw.close()
        for b in (cls.public, cls.admin):
            b.__exit__(None, None, None)

    def test_1_manifest_lists_every_case_file(self):
        listed = {c.file for c in load_manifest()}
        on_disk = {n for n in os.listdir(os.path.join(CORPUS_DIR, "cases")) if n.endswith(".http")}
        self.assertEqual(sorted(on_disk - listed), [], "case files missing from MANIFEST.tsv")
        self.assertTrue(all(cid in {c.id for c in load_manifest()} for cid in CASE_CHECKS), "stale CASE_CHECKS")

    def test_2_corpus(self):
        for case in self.cases:
            with self.subTest(case=case.file):
                self.run_case(case)

    def test_3_still_serving(self):
        if not self.gw.alive():
            self.fail(f"gateway died during the corpus:\n{self.gw.stderr_text()[-2000:]}")
        marks = {"public": self.public.mark(), "admin": self.admin.mark()}
        for _ in range(3):  # several, so a poisoned pooled connection would be picked up
            status, _, _ = lgtest.http(self.gw.port, "GET", "/public/x", timeout=5)
            self.assertEqual(status, 200)
        with_paths = [(name, path, r) for name, b in (("public", self.public), ("admin", self.admin))
                      for path, r in b.new_requests(marks[name], with_paths=True)]
        self.assertEqual(self.unfinished_connection_reuse(with_paths), [])

    def unfinished_connection_reuse(self, with_paths):
        """An upstream connection that carries an unfinished request must never be used again:
        whatever follows would be read as the rest of that body (a desync)."""
        return [f"the gateway sent {r.head[:40]!r} on upstream connection {os.path.basename(path)}, which "
                f"carries an unfinished request from case {type(self).unfinished[path]} (desync)"
                for _, path, r in with_paths if path in type(self).unfinished]

    def run_case(self, case):
        cls = type(self)
        if not cls.gw.alive():  # a crash in an earlier case must not fail all the rest
            cls._start_gateway()
        with open(case.path, "rb") as f:
            data = f.read()
        marks = {"public": self.public.mark(), "admin": self.admin.mark()}
        res = lgtest.raw_exchange(self.gw.port, data, timeout=SILENCE, settle=SETTLE,
                                  split_expect=case.split_expect, expect_wait=1.0)
        time.sleep(0.1)  # anything forwarded late (it must not be) lands in the recordings
        with_paths = [(name, path, r) for name, b in (("public", self.public), ("admin", self.admin))
                      for path, r in b.new_requests(marks[name], with_paths=True)]
        forwarded = [(name, r) for name, _, r in with_paths]
        o = Outcome(res, forwarded)
        problems = generic_problems(case, o)
        problems += self.unfinished_connection_reuse(with_paths)
        for name, path, r in with_paths:
            if r.head_complete and not r.complete:
                cls.unfinished[path] = case.id
        for check in case.checks:
            problems += [f"{check.__name__}: {p}" for p in check(o)]
        if not cls.gw.alive():
            problems.append(f"the gateway died (exit {cls.gw.proc.returncode}):\n{cls.gw.stderr_text()[-2000:]}")
        if problems:
            self.fail(f"\n{case.file} [{case.category}] {case.tests}\n  expected: {case.expected}\n"
                      f"  must_not: {case.must_not}\n  sent {len(data)} bytes: {data[:100]!r}\n"
                      f"  got {len(res.data)} bytes, closed={res.closed} reset={res.reset}: {res.data[:200]!r}\n"
                      f"  forwarded: {[(b, r.head[:100]) for b, r in forwarded]}\n  - " + "\n  - ".join(problems))


if __name__ == "__main__":
    if "--table" in sys.argv:
        print_table(load_manifest())
        sys.exit(0)
    unittest.main(verbosity=2)
