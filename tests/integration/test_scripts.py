#!/usr/bin/env python3
"""Route scripts (Lua), end to end against lg-backend: the gw API (request getters, upstream
request changes, set_upstream, exit, response headers, ctx, conf, log), phase order with global
scripts, phase misuse, runtime/CPU/memory failures (500 JSON, log line, metric, the worker keeps
serving), per-attachment budgets, load errors at startup / `check` / SIGHUP, and hot swap with a
request in flight.

Scripts read the per-request table through CTX(): `gw.ctx` (a field) if it is a table, else
`gw.get_ctx()`; test_ctx_accessor_probe reports which of the two the binary offers.
"""
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import RawConn, echo_json, echo_header_all, get_metrics, header, header_all, metric  # noqa: E402

# ------------------------------------------------------------------------------------------------
# scripts

CTX = """\
local function CTX()
  local ok, c = pcall(function() return gw.ctx end)
  if ok and type(c) == "table" then return c end
  return gw.get_ctx()
end
"""

HDRS = """\
return {
  name = "hdrs",
  rewrite = function(conf)
    gw.service.request.set_header("X-From-Rewrite", "r")
  end,
  access = function(conf)
    local s = gw.service.request
    s.set_header("X-Set", "v1")
    s.set_header("X-Over", "new")
    s.add_header("X-Multi", "b")
    s.clear_header("X-Secret")
    s.add_header("X-Added", "1")
    s.add_header("X-Added", "2")
    s.set_header("X-Temp", "t")
    s.clear_header("X-Temp")
  end,
}
"""

TARGET = """\
return {
  rewrite = function(conf)
    local mode = gw.request.get_query_arg("mode")
    if mode == "path" then
      gw.service.request.set_path("/echo")
    elseif mode == "query" then
      gw.service.request.set_raw_query("a=1&b=two%20x")
    elseif mode == "both" then
      gw.service.request.set_path("/echo")
      gw.service.request.set_raw_query("a=1&b=two%20x")
    end
  end,
  access = function(conf)
    if gw.request.get_query_arg("mode") == "acc" then
      gw.service.request.set_path("/echo")
      gw.service.request.set_raw_query("from=access")
    end
  end,
}
"""

SWITCH = """\
return {
  access = function(conf)
    local to = gw.request.get_header("X-To")
    if not to then return end
    local ok, err = gw.service.set_upstream(to)
    if ok ~= true then
      return gw.response.exit(200, { ok = tostring(ok), err = tostring(err) }, { ["X-Switch"] = "failed" })
    end
    gw.service.request.set_header("X-Switch-Ok", tostring(ok))
  end,
}
"""

EXITS = """\
local BIG = 1024 * 1024
return {
  rewrite = function(conf)
    if gw.request.get_query_arg("kind") == "rw" then
      return gw.response.exit(418, "from rewrite")
    end
  end,
  access = function(conf)
    gw.log.info("exits access ran")
    local k = gw.request.get_query_arg("kind")
    if k == "string" then return gw.response.exit(403, "denied") end
    if k == "table" then return gw.response.exit(401, { error = "nope", n = 3, nested = { ok = true } }) end
    if k == "headers" then return gw.response.exit(202, "hi", { ["X-A"] = "1", ["X-B"] = "two" }) end
    if k == "later" then
      gw.response.exit(409, "first")
      pcall(gw.service.request.set_header, "X-Late", "1")
      pcall(gw.service.request.set_path, "/late")
      return
    end
    if k == "s200" then return gw.response.exit(200, "ok200") end
    if k == "s599" then return gw.response.exit(599, "ok599") end
    if k == "s199" then return gw.response.exit(199, "bad") end
    if k == "s600" then return gw.response.exit(600, "bad") end
    if k == "s100" then return gw.response.exit(100, "bad") end
    if k == "sfrac" then return gw.response.exit(200.5, "bad") end
    if k == "hname" then return gw.response.exit(200, "bad", { ["Bad Name"] = "v" }) end
    if k == "hcolon" then return gw.response.exit(200, "bad", { ["X:Y"] = "v" }) end
    if k == "hval" then return gw.response.exit(200, "bad", { ["X-V"] = "a\\r\\nInjected: 1" }) end
    if k == "hlf" then return gw.response.exit(200, "bad", { ["X-V"] = "a\\nInjected: 1" }) end
    if k == "max" then return gw.response.exit(200, string.rep("m", BIG)) end
    if k == "over" then return gw.response.exit(200, string.rep("o", BIG + 1)) end
  end,
}
"""

RESP = """\
return {
  response = function(conf)
    gw.response.set_header("X-Status-Seen", tostring(gw.response.get_status()))
    gw.response.set_header("X-Up-Backend", tostring(gw.response.get_header("x-backend")))
    gw.response.set_header("X-Up-Backend-Case", tostring(gw.response.get_header("X-BACKEND")))
    gw.response.set_header("X-Missing", tostring(gw.response.get_header("x-nope")))
    gw.response.set_header("X-Resp-Set", "yes")
    gw.response.set_header("X-Backend", "masked")
    gw.response.clear_header("X-Request-Id-Seen")
  end,
}
"""

INFO = """\
local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
return {
  access = function(conf)
    local r = gw.request
    local function q(n)
      local v = r.get_query_arg(n)
      if v == nil then return "<nil>" end
      if v == true then return "<true>" end
      return v
    end
    local enc = r.get_query_arg("enc")
    return gw.response.exit(200, {
      method = r.get_method(), path = r.get_path(), raw_path = r.get_raw_path(),
      raw_query = tostring(r.get_raw_query()), host = r.get_host(), scheme = r.get_scheme(),
      client_ip = r.get_client_ip(), id = r.get_id(),
      q_a = q("a"), q_b = q("b"), q_flag = q("flag"), q_missing = q("missing"), q_empty = q("empty"),
      q_enc_hex = type(enc) == "string" and hex(enc) or tostring(enc),
      h_first = tostring(r.get_header("x-dup")), h_case = tostring(r.get_header("X-CASE-test")),
      h_missing = tostring(r.get_header("x-none")),
      headers = r.get_headers(),
    })
  end,
}
"""

CTX_A = CTX + """\
return {
  rewrite = function(conf)
    CTX().rw = "r-" .. tostring(gw.request.get_header("X-Mark"))
  end,
  access = function(conf)
    local c = CTX()
    gw.service.request.set_header("X-Prev-Mark", tostring(c.mark))
    c.mark = gw.request.get_header("X-Mark")
    c.from_a = "A"
  end,
}
"""

CTX_B = CTX + """\
return {
  access = function(conf)
    local c = CTX()
    gw.service.request.set_header("X-Rw", tostring(c.rw))
    gw.service.request.set_header("X-B-Sees-Mark", tostring(c.mark))
  end,
  response = function(conf)
    local c = CTX()
    gw.response.set_header("X-Ctx-Mark", tostring(c.mark))
    gw.response.set_header("X-From-A", tostring(c.from_a))
    c.resp_seen = "yes"
  end,
  log = function(conf)
    local c = CTX()
    gw.log.info("ctx-log mark=" .. tostring(c.mark) .. " resp_seen=" .. tostring(c.resp_seen))
  end,
}
"""

CTX_PROBE = """\
return {
  access = function(conf)
    local ok1, v1 = pcall(function() return gw.ctx end)
    local ok2, v2 = pcall(function() return gw.get_ctx() end)
    local ok3, v3 = pcall(function() gw.ctx.probe = 5; return gw.ctx.probe end)
    local ok4, v4 = pcall(function() local c = gw.get_ctx(); c.probe2 = 6; return gw.get_ctx().probe2 end)
    return gw.response.exit(200, {
      field = ok1 and type(v1) or ("error: " .. tostring(v1)),
      func = ok2 and type(v2) or ("error: " .. tostring(v2)),
      field_keeps = ok3 and tostring(v3) or ("error: " .. tostring(v3)),
      func_keeps = ok4 and tostring(v4) or ("error: " .. tostring(v4)),
    })
  end,
}
"""

CONFDUMP = """\
return {
  access = function(conf)
    if conf == nil then return gw.response.exit(200, { is_nil = true }) end
    return gw.response.exit(200, {
      is_nil = false, header = conf.header, n = conf.n, n_type = type(conf.n),
      flag = conf.flag, flag_type = type(conf.flag),
      list1 = conf.list and conf.list[1], list2 = conf.list and conf.list[2],
      list_len = conf.list and #conf.list,
      nested_k = conf.nested and conf.nested.k,
      quoted = conf.quoted, quoted_type = type(conf.quoted),
    })
  end,
}
"""

MISUSE = """\
local function what() return gw.request.get_query_arg("what") end
return {
  rewrite = function(conf)
    local k = what()
    if k == "status_in_rewrite" then gw.response.get_status() end
    if k == "resp_set_in_rewrite" then gw.response.set_header("X-A", "1") end
  end,
  access = function(conf)
    local k = what()
    if k == "resp_set_in_access" then gw.response.set_header("X-A", "1") end
    if k == "resp_clear_in_access" then gw.response.clear_header("X-A") end
    if k == "status_in_access" then gw.response.get_status() end
    if k == "resp_get_header_in_access" then gw.response.get_header("X-A") end
  end,
  response = function(conf)
    local k = what()
    if k == "svc_set_in_response" then gw.service.request.set_header("X-A", "1") end
    if k == "svc_add_in_response" then gw.service.request.add_header("X-A", "1") end
    if k == "set_path_in_response" then gw.service.request.set_path("/x") end
    if k == "set_query_in_response" then gw.service.request.set_raw_query("x=1") end
    if k == "upstream_in_response" then gw.service.set_upstream("alt") end
    if k == "exit_in_response" then return gw.response.exit(200, "late") end
  end,
  log = function(conf)
    local k = what()
    if k == "resp_set_in_log" then gw.response.set_header("X-A", "1") end
    if k == "exit_in_log" then gw.response.exit(200, "late") end
    if k == "svc_set_in_log" then gw.service.request.set_header("X-A", "1") end
  end,
}
"""

BOOM = """\
return {
  access = function(conf)
    local k = gw.request.get_query_arg("kind")
    if k == "runtime" then
      error("kaboom-secret-7f3a")
    elseif k == "index" then
      local t = nil
      return t.field
    elseif k == "cpu" then
      while true do end
    elseif k == "mem" then
      local t = {} for i = 1, 1e8 do t[i] = ("x"):rep(100) .. i end
    end
  end,
  response = function(conf)
    if gw.request.get_query_arg("kind") == "resp" then
      error("resp-phase-secret-91b2")
    end
  end,
}
"""
BOOM_ERROR_LINE = BOOM.splitlines().index('      error("kaboom-secret-7f3a")') + 1
BOOM_RESP_LINE = BOOM.splitlines().index('      error("resp-phase-secret-91b2")') + 1

LOGGER = """\
return {
  access = function(conf)
    gw.log.info("info-msg from access")
    gw.log.warn("warn-msg from access")
    gw.log.err("err-msg from access")
  end,
  log = function(conf)
    gw.log.info("log-phase status=" .. tostring(gw.response.get_status()))
  end,
}
"""

SPIN = """\
return {
  access = function(conf)
    local t0 = os.clock()
    while os.clock() - t0 < conf.seconds do end
    return gw.response.exit(200, "spun")
  end,
}
"""

ALLOC = """\
return {
  access = function(conf)
    local parts = {}
    local base = string.rep("x", 1024 * 1024 - 8)
    for i = 1, conf.mb do parts[i] = base .. string.format("%08d", i) end
    return gw.response.exit(200, "allocated " .. #parts)
  end,
}
"""

SCRIPTS = {
    "scripts/hdrs.lua": HDRS, "scripts/target.lua": TARGET, "scripts/switch.lua": SWITCH,
    "scripts/exits.lua": EXITS, "scripts/resp.lua": RESP, "scripts/info.lua": INFO,
    "scripts/ctx-a.lua": CTX_A, "scripts/ctx-b.lua": CTX_B, "scripts/ctxprobe.lua": CTX_PROBE,
    "scripts/confdump.lua": CONFDUMP, "scripts/misuse.lua": MISUSE, "scripts/boom.lua": BOOM,
    "scripts/logger.lua": LOGGER, "scripts/spin.lua": SPIN, "scripts/alloc.lua": ALLOC,
}


host_route = lgtest.host_route

CONFIG = lgtest.CONFIG_HEAD + lgtest.SCRIPTS_HEAD + """\
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
  alt: { targets: [ "127.0.0.1:{ALT_PORT}" ] }
routes:
  - name: plain
    match: { host: [ plain.test ], path: "/*" }
    upstream: app
""" + "".join([
    host_route("hdr", "[ hdrs ]"),
    host_route("target", "[ target ]"),
    host_route("switch", "[ switch ]"),
    host_route("exit", "[ exits ]"),
    host_route("resp", "[ resp ]"),
    host_route("info", "[ info ]"),
    host_route("ctx", "[ ctx-a, ctx-b ]"),
    host_route("ctxprobe", "[ ctxprobe ]"),
    host_route("conf", "[ { name: confdump, config: { header: X-API-Key, n: 3, flag: true, "
                       "list: [ a, b ], nested: { k: v }, quoted: \"42\" } } ]"),
    host_route("noconf", "[ confdump ]"),
    host_route("misuse", "[ misuse ]"),
    host_route("err", "[ boom ]"),
    host_route("errmem", "[ { name: boom, budget: { cpu: 2000ms } } ]"),
    host_route("log", "[ logger ]"),
    host_route("spinbig", "[ { name: spin, config: { seconds: 0.12 }, budget: { cpu: 1000ms } } ]"),
    host_route("spinsmall", "[ { name: spin, config: { seconds: 0.12 } } ]"),
    host_route("allocbig", "[ { name: alloc, config: { mb: 40 }, budget: { memory: 160m, cpu: 2000ms } } ]"),
    host_route("allocsmall", "[ { name: alloc, config: { mb: 40 }, budget: { cpu: 2000ms } } ]"),
])


# ------------------------------------------------------------------------------------------------
# helpers

def send(port, host, path, method="GET", headers=(), body=b"", timeout=10.0):
    """One request on a fresh connection -> lgtest.Response (status, [(name, value)], body)."""
    extra = b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers)
    if body or method in ("POST", "PUT"):
        extra += f"Content-Length: {len(body)}\r\n".encode()
    with RawConn(port, timeout=timeout) as c:
        c.send(lgtest.req(method, path, extra=extra, body=body, host=host))
        return c.read_response(timeout=timeout, method=method)


def script_errors(admin_port, script, kind=None):
    labels = {"script": script}
    if kind:
        labels["kind"] = kind
    return metric(get_metrics(admin_port), "gateway_script_errors_total", **labels)


def reloads(admin_port, result):
    return metric(get_metrics(admin_port), "gateway_config_reloads_total", result=result)


def desc(r):
    return f"{r.status} {r.headers} {r.body[:300]!r}"


class ScriptAssertions:
    """Mixed into the test classes: self.gw is the gateway under test."""

    def stderr_mark(self):
        return len(self.gw.stderr_text())

    def wait_stderr(self, pattern, since, timeout=3.0, what=None):
        """The first match of `pattern` in stderr written after `since` (waits, bounded)."""
        rx = re.compile(pattern)
        try:
            return lgtest.wait_until(lambda: rx.search(self.gw.stderr_text()[since:]), timeout,
                                     what=what or pattern)
        except TimeoutError:
            pass
        self.fail(f"stderr lacks {pattern!r} within {timeout} s; new stderr:\n"
                  f"{self.gw.stderr_text()[since:][-2000:]}")

    def assert_script_error(self, r, script, kind, since, secrets=(), what="", statuses=(500,)):
        """r is the generic 500 script error (JSON, X-Request-ID, no error text) and stderr has
        'script <script> failed (<kind>): ...'. Returns the match of that line."""
        self.assertIn(r.status, statuses, f"{what}: expected {statuses} script error, got {desc(r)}")
        rid = header(r.headers, "x-request-id")
        self.assertTrue(rid, f"{what}: the script error response lacks X-Request-ID: {r.headers}")
        self.assertIn("application/json", header(r.headers, "content-type") or "", f"{what}: {r.headers}")
        try:
            obj = json.loads(r.body)
        except ValueError:
            self.fail(f"{what}: script error body is not JSON: {r.body[:300]!r}")
        self.assertEqual(obj.get("error"), "script error", f"{what}: {obj}")
        self.assertEqual(obj.get("status"), r.status, f"{what}: {obj}")
        self.assertEqual(obj.get("request_id"), rid, f"{what}: body request_id vs X-Request-ID header")
        for s in secrets:
            self.assertNotIn(s.encode(), r.body, f"{what}: the error text reached the client body")
            for n, v in r.headers:
                self.assertNotIn(s, v, f"{what}: the error text reached header {n}")
        return self.wait_stderr(rf"script {re.escape(script)} failed \({kind}\): ([^\n]*)", since,
                                what=f"{what}: 'script {script} failed ({kind})' in stderr")

    def script_json(self, r, key):
        """The JSON a script answered with (its `key` must be there)."""
        self.assertEqual(r.status, 200, desc(r))
        try:
            got = json.loads(r.body)
        except ValueError:
            self.fail(f"not JSON: {desc(r)}")
        if not isinstance(got, dict) or key not in got:
            self.fail(f"the script did not answer (no {key!r} in the body): {desc(r)}")
        return got

    def assert_plain_ok(self):
        r = send(self.gw.port, "plain.test", "/echo")
        self.assertEqual(r.status, 200, f"a route without scripts after a script failure: {desc(r)}")
        self.assertTrue(self.gw.alive(), "the gateway died")


# ------------------------------------------------------------------------------------------------
# one gateway for the API tests

class ScriptApiTest(ScriptAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.enterClassContext(lgtest.Backend("app", record_dir=True))
        cls.alt = cls.enterClassContext(lgtest.Backend("alt"))
        cls.gw = cls.enterClassContext(lgtest.Gateway(CONFIG, extra_files=SCRIPTS,
                                                      values={"APP_PORT": cls.app.port, "ALT_PORT": cls.alt.port}))

    def setUp(self):
        super().setUp()
        self.assertTrue(self.gw.alive(), "gateway died:\n" + self.gw.stderr_text()[-2000:])

    def get(self, route, path="/echo", **kw):
        """A request to the route matched by Host: <route>.test."""
        return send(self.gw.port, route + ".test", path, **kw)

    # ---- upstream request changes ------------------------------------------------------------
    def test_headers_set_add_clear_reach_upstream(self):
        mark = self.app.mark()
        r = self.get("hdr", headers=[("X-Over", "old"), ("X-Multi", "a"), ("X-Secret", "s3cr3t-val"),
                                     ("X-Keep", "k"), ("X-Temp", "client")])
        self.assertEqual(r.status, 200, desc(r))
        e = echo_json(r.body)
        self.assertEqual(echo_header_all(e, "x-set"), ["v1"])
        self.assertEqual(echo_header_all(e, "x-over"), ["new"], "set_header must replace the client's value")
        multi = echo_header_all(e, "x-multi")
        self.assertIn(multi, (["a", "b"], ["a, b"]), "add_header must keep the client's value and add one")
        self.assertEqual(echo_header_all(e, "x-secret"), [], "a cleared client header reached the upstream")
        self.assertIn(echo_header_all(e, "x-added"), (["1", "2"], ["1, 2"]))
        self.assertEqual(echo_header_all(e, "x-temp"), [], "set then clear: the header must be gone")
        self.assertEqual(echo_header_all(e, "x-from-rewrite"), ["r"])
        self.assertEqual(echo_header_all(e, "x-keep"), ["k"])
        raw = b"".join(self.app.new_bytes(mark).values())
        self.assertNotIn(b"s3cr3t-val", raw, "the cleared header's value is in the upstream's bytes")
        self.assertIn(b"x-set: v1", raw.lower())

    def test_set_path_and_raw_query(self):
        cases = [("/orig/x?mode=path", "/echo?mode=path"),
                 ("/echo?mode=query", "/echo?a=1&b=two%20x"),
                 ("/orig/y?mode=both", "/echo?a=1&b=two%20x"),
                 ("/orig/z?mode=acc", "/echo?from=access")]
        for path, want in cases:
            with self.subTest(path=path):
                r = self.get("target", path)
                self.assertEqual(r.status, 200, desc(r))
                self.assertEqual(header(r.headers, "x-backend"), "app")
                self.assertEqual(echo_json(r.body)["target"], want, f"request {path}")

    def test_set_upstream(self):
        r = self.get("switch")
        self.assertEqual((r.status, header(r.headers, "x-backend")), (200, "app"), desc(r))
        r = self.get("switch", headers=[("X-To", "alt")])
        self.assertEqual(r.status, 200, desc(r))
        self.assertEqual(header(r.headers, "x-backend"), "alt", "set_upstream('alt') did not switch the backend")
        self.assertEqual(echo_header_all(echo_json(r.body), "x-switch-ok"), ["true"], "set_upstream must return true")
        mark = self.app.mark()
        r = self.get("switch", headers=[("X-To", "nope")])
        self.assertEqual(r.status, 200, desc(r))
        self.assertEqual(header(r.headers, "x-switch"), "failed")
        self.assertEqual(json.loads(r.body), {"ok": "nil", "err": "unknown upstream"})
        self.assertEqual(self.app.new_requests(mark), [])

    # ---- exit ------------------------------------------------------------------------------------
    def test_exit_string_table_headers_nothing_forwarded(self):
        mark = self.app.mark()
        r = self.get("exit", "/echo?kind=string")
        self.assertEqual((r.status, r.body), (403, b"denied"), desc(r))
        r = self.get("exit", "/echo?kind=table")
        self.assertEqual(r.status, 401, desc(r))
        self.assertIn("application/json", header(r.headers, "content-type") or "")
        self.assertEqual(json.loads(r.body), {"error": "nope", "n": 3, "nested": {"ok": True}})
        r = self.get("exit", "/echo?kind=headers")
        self.assertEqual((r.status, r.body), (202, b"hi"), desc(r))
        self.assertEqual(header(r.headers, "x-a"), "1")
        self.assertEqual(header(r.headers, "x-b"), "two")
        self.assertTrue(header(r.headers, "x-request-id"), "an exit response lacks X-Request-ID")
        self.assertIsNone(header(r.headers, "x-backend"))
        r = self.get("exit", "/echo?kind=s200")
        self.assertEqual((r.status, r.body), (200, b"ok200"), desc(r))
        r = self.get("exit", "/echo?kind=s599")
        self.assertEqual((r.status, r.body), (599, b"ok599"), desc(r))
        r = self.get("exit", "/echo?kind=max")
        self.assertEqual(r.status, 200, "a body of exactly 1 MiB must be allowed")
        self.assertEqual(len(r.body), 1 << 20)
        self.assertEqual(self.app.new_requests(mark), [], "an exit still sent something upstream")
        r = self.get("exit", "/echo")
        self.assertEqual((r.status, header(r.headers, "x-backend")), (200, "app"), "no exit: must be forwarded")
        self.assertEqual(len(self.app.new_requests(mark)), 1)

    def test_exit_in_rewrite_skips_access(self):
        mark = self.app.mark()
        since = self.stderr_mark()
        r = self.get("exit", "/echo?kind=rw", headers=[("X-Request-ID", "rw-exit-1")])
        self.assertEqual((r.status, r.body), (418, b"from rewrite"), desc(r))
        self.assertEqual(self.app.new_requests(mark), [])
        # a request that does reach access logs; the rw one must not
        self.get("exit", "/echo?kind=string", headers=[("X-Request-ID", "rw-exit-2")])
        self.wait_stderr(r"script exits \[rw-exit-2\]: exits access ran", since)
        self.assertNotIn("[rw-exit-1]: exits access ran", self.gw.stderr_text()[since:],
                         "access ran after rewrite answered with exit")

    def test_exit_without_return_later_changes_ignored(self):
        mark = self.app.mark()
        r = self.get("exit", "/echo?kind=later")
        self.assertEqual((r.status, r.body), (409, b"first"), desc(r))
        self.assertEqual(self.app.new_requests(mark), [])

    def test_exit_invalid_arguments_are_errors(self):
        cases = ["s199", "s600", "s100", "sfrac", "hname", "hcolon", "hval", "hlf", "over"]
        mark = self.app.mark()
        for kind in cases:
            with self.subTest(kind=kind):
                since = self.stderr_mark()
                before = script_errors(self.gw.admin_port, "exits", "runtime")
                r = self.get("exit", f"/echo?kind={kind}")
                self.assert_script_error(r, "exits", "runtime", since, what=f"exit kind={kind}")
                self.assertIsNone(header(r.headers, "injected"), "a CR/LF header value split the head")
                self.assertEqual(script_errors(self.gw.admin_port, "exits", "runtime"), before + 1)
        self.assertEqual(self.app.new_requests(mark), [])
        self.assert_plain_ok()

    # ---- response phase ----------------------------------------------------------------------
    def test_response_set_and_clear_header(self):
        r = self.get("resp", "/status?code=404")
        self.assertEqual(r.status, 404, desc(r))
        self.assertEqual(header(r.headers, "x-status-seen"), "404")
        self.assertEqual(header(r.headers, "x-up-backend"), "app")
        self.assertEqual(header(r.headers, "x-up-backend-case"), "app", "get_header must be case-insensitive")
        self.assertEqual(header(r.headers, "x-missing"), "nil")
        self.assertEqual(header(r.headers, "x-resp-set"), "yes")
        self.assertEqual(header_all(r.headers, "x-backend"), ["masked"], "set_header must replace")
        self.assertEqual(header_all(r.headers, "x-request-id-seen"), [], "clear_header left the header")
        self.assertTrue(header(r.headers, "x-request-id"))
        r = self.get("resp", "/echo")
        self.assertEqual(r.status, 200)
        self.assertEqual(echo_json(r.body)["target"], "/echo", "the body must pass through unchanged")

    # ---- request getters ---------------------------------------------------------------------
    def test_request_getters(self):
        path = "/p/./q/../%65cho/x?a=1&b=hello%20world&flag&enc=%E2%82%AC&empty=&a=2"
        r = self.get("info", path, headers=[("X-Dup", "one"), ("X-Dup", "two"), ("X-Case-Test", "V"),
                                            ("X-Request-ID", "info-rid-42")])
        got = self.script_json(r, "method")
        self.assertEqual(got["method"], "GET")
        self.assertEqual(got["path"], "/p/echo/x", "get_path must be the normalized path")
        self.assertEqual(got["raw_path"], "/p/./q/../%65cho/x")
        self.assertEqual(got["raw_query"], "a=1&b=hello%20world&flag&enc=%E2%82%AC&empty=&a=2")
        self.assertEqual(got["host"], "info.test")
        self.assertEqual(got["scheme"], "http")
        self.assertEqual(got["client_ip"], "127.0.0.1")
        self.assertEqual(got["id"], "info-rid-42")
        self.assertEqual(header(r.headers, "x-request-id"), "info-rid-42")
        self.assertEqual(got["q_a"], "1", "get_query_arg returns the first value")
        self.assertEqual(got["q_b"], "hello world", "get_query_arg must percent-decode")
        self.assertEqual(got["q_flag"], "<true>", "a bare flag must be true")
        self.assertEqual(got["q_missing"], "<nil>")
        self.assertEqual(got["q_empty"], "")
        self.assertEqual(got["q_enc_hex"], "e282ac")
        self.assertEqual(got["h_first"], "one", "get_header returns the first value")
        self.assertEqual(got["h_case"], "V", "get_header must be case-insensitive")
        self.assertEqual(got["h_missing"], "nil")
        hs = got["headers"]
        self.assertIsInstance(hs, dict)
        self.assertEqual(hs.get("x-dup"), "one, two", "get_headers must join repeated fields")
        self.assertEqual(hs.get("x-case-test"), "V")
        self.assertEqual(hs.get("host"), "info.test")
        self.assertTrue(all(k == k.lower() for k in hs), f"get_headers names not lower-case: {list(hs)}")

    def test_request_getters_method_and_generated_id(self):
        r = self.get("info", "/x", method="PUT", body=b"abc")
        got = self.script_json(r, "method")
        self.assertEqual(got["method"], "PUT")
        self.assertEqual(got["path"], "/x")
        self.assertIn(got["raw_query"], ("", "nil"))
        self.assertEqual(got["q_a"], "<nil>")
        rid = header(r.headers, "x-request-id")
        self.assertTrue(rid)
        self.assertEqual(got["id"], rid, "get_id must be the generated X-Request-ID")

    # ---- ctx ------------------------------------------------------------------------------------
    def test_ctx_accessor_probe(self):
        r = self.get("ctxprobe")
        got = self.script_json(r, "field")
        print(f"\n[ctx probe] gw.ctx -> {got['field']} (keeps writes: {got['field_keeps']}); "
              f"gw.get_ctx() -> {got['func']} (keeps writes: {got['func_keeps']})", file=sys.stderr)
        field_ok = got["field"] == "table" and got["field_keeps"] == "5"
        func_ok = got["func"] == "table" and got["func_keeps"] == "6"
        self.assertTrue(field_ok or func_ok, f"neither gw.ctx nor gw.get_ctx() gives a per-request table: {got}")

    def test_ctx_shared_within_request_not_across(self):
        since = self.stderr_mark()
        with RawConn(self.gw.port, timeout=10) as c:
            for mark in ("m1", "m2"):
                c.send(lgtest.req("GET", "/echo", extra=f"X-Mark: {mark}\r\n".encode(), host="ctx.test"))
                r = c.read_response(timeout=10)
                self.assertEqual(r.status, 200, desc(r))
                e = echo_json(r.body)
                self.assertEqual(echo_header_all(e, "x-prev-mark"), ["nil"],
                                 f"request {mark}: ctx from an earlier request is visible")
                self.assertEqual(echo_header_all(e, "x-rw"), [f"r-{mark}"], "rewrite -> access (other script)")
                self.assertEqual(echo_header_all(e, "x-b-sees-mark"), [mark], "script a -> script b in access")
                self.assertEqual(header(r.headers, "x-ctx-mark"), mark, "access -> response")
                self.assertEqual(header(r.headers, "x-from-a"), "A")
        self.wait_stderr(r"script ctx-b \[[^\]]+\]: ctx-log mark=m2 resp_seen=yes", since)

    # ---- conf -------------------------------------------------------------------------------------
    def test_conf_table(self):
        r = self.get("conf")
        got = self.script_json(r, "is_nil")
        want = {"is_nil": False, "header": "X-API-Key", "n": 3, "n_type": "number", "flag": True,
                "flag_type": "boolean", "list1": "a", "list2": "b", "list_len": 2, "nested_k": "v",
                "quoted": "42", "quoted_type": "string"}
        self.assertEqual(got, want)
        r = self.get("noconf")
        self.assertEqual(r.status, 200, desc(r))
        self.assertEqual(json.loads(r.body), {"is_nil": True}, "conf must be nil without config")

    # ---- phase misuse ------------------------------------------------------------------------
    def test_phase_misuse_is_500(self):
        for what in ("status_in_rewrite", "resp_set_in_rewrite", "resp_set_in_access", "resp_clear_in_access",
                     "status_in_access", "resp_get_header_in_access", "svc_set_in_response",
                     "svc_add_in_response", "set_path_in_response", "set_query_in_response",
                     "upstream_in_response", "exit_in_response"):
            with self.subTest(what=what):
                since = self.stderr_mark()
                before = script_errors(self.gw.admin_port, "misuse", "runtime")
                r = self.get("misuse", f"/echo?what={what}")
                self.assert_script_error(r, "misuse", "runtime", since, what=what)
                self.assertEqual(script_errors(self.gw.admin_port, "misuse", "runtime"), before + 1, what)
        r = self.get("misuse", "/echo?what=nothing")
        self.assertEqual(r.status, 200, desc(r))

    def test_phase_misuse_in_log_is_logged(self):
        # the client already has its answer when log runs: it stays 200, the failure is logged
        for what in ("resp_set_in_log", "exit_in_log", "svc_set_in_log"):
            with self.subTest(what=what):
                since = self.stderr_mark()
                before = script_errors(self.gw.admin_port, "misuse", "runtime")
                r = self.get("misuse", f"/echo?what={what}")
                self.assertEqual(r.status, 200, f"{what}: {desc(r)}")
                # the log phase's line may say so: "script misuse failed in the log phase (runtime): ..."
                self.wait_stderr(r"script misuse failed( in the log phase)? \(runtime\): \S*misuse\.lua:\d+: ",
                                 since, what=what)
                lgtest.wait_until(lambda: script_errors(self.gw.admin_port, "misuse", "runtime") == before + 1,
                                  3.0, what=f"{what}: metric")
        self.assert_plain_ok()

    # ---- failures ----------------------------------------------------------------------------------
    def test_runtime_error(self):
        since = self.stderr_mark()
        before = script_errors(self.gw.admin_port, "boom", "runtime")
        r = self.get("err", "/echo?kind=runtime")
        m = self.assert_script_error(r, "boom", "runtime", since, secrets=("kaboom",), what="error()")
        self.assertRegex(m.group(1), rf"scripts/boom\.lua:{BOOM_ERROR_LINE}: kaboom-secret-7f3a")
        self.assertEqual(script_errors(self.gw.admin_port, "boom", "runtime"), before + 1)
        self.assert_plain_ok()
        r = self.get("err", "/echo")
        self.assertEqual(r.status, 200, f"the same route without an error: {desc(r)}")

    def test_runtime_error_nil_index(self):
        since = self.stderr_mark()
        r = self.get("err", "/echo?kind=index")
        m = self.assert_script_error(r, "boom", "runtime", since, secrets=("attempt to index",), what="nil index")
        self.assertRegex(m.group(1), r"scripts/boom\.lua:\d+: attempt to index")
        self.assert_plain_ok()

    def test_runtime_error_in_response_phase(self):
        mark = self.app.mark()
        since = self.stderr_mark()
        r = self.get("err", "/echo?kind=resp")
        m = self.assert_script_error(r, "boom", "runtime", since, secrets=("resp-phase-secret",),
                                     what="error in response()")
        self.assertRegex(m.group(1), rf"scripts/boom\.lua:{BOOM_RESP_LINE}: resp-phase-secret-91b2")
        self.assertNotIn(b'"backend"', r.body, "the upstream body leaked after the response handler failed")
        self.assertEqual(len(self.app.new_requests(mark)), 1)
        self.assert_plain_ok()

    def test_cpu_budget_while_true(self):
        since = self.stderr_mark()
        before = script_errors(self.gw.admin_port, "boom", "cpu")
        t0 = time.monotonic()
        r = self.get("err", "/echo?kind=cpu", timeout=10)
        elapsed = time.monotonic() - t0
        self.assert_script_error(r, "boom", "cpu", since, what="while true do end")
        self.assertLess(elapsed, 1.5, f"the CPU kill took {elapsed:.2f} s (budget 50ms)")
        self.assertEqual(script_errors(self.gw.admin_port, "boom", "cpu"), before + 1)
        self.assert_plain_ok()
        r = self.get("err", "/echo")
        self.assertEqual(r.status, 200, desc(r))

    def test_memory_budget_bomb_with_cpu_headroom(self):
        # the same bomb where only the memory budget (32m) can stop it: CPU budget 2000ms
        since = self.stderr_mark()
        before = script_errors(self.gw.admin_port, "boom", "memory")
        t0 = time.monotonic()
        r = self.get("errmem", "/echo?kind=mem", timeout=10)
        elapsed = time.monotonic() - t0
        self.assert_script_error(r, "boom", "memory", since, what=f"memory bomb, cpu 2000ms ({elapsed:.2f} s)")
        self.assertEqual(script_errors(self.gw.admin_port, "boom", "memory"), before + 1)
        self.assert_plain_ok()
        r = self.get("errmem", "/echo")
        self.assertEqual(r.status, 200, f"after a memory kill: {desc(r)}")

    def test_budget_override_per_attachment(self):
        r = self.get("spinbig")
        self.assertEqual((r.status, r.body), (200, b"spun"), f"120 ms of CPU under a 1000ms budget: {desc(r)}")
        since = self.stderr_mark()
        r = self.get("spinsmall")
        self.assert_script_error(r, "spin", "cpu", since, what="120 ms of CPU under the 50ms default")
        r = self.get("allocbig", timeout=15)
        self.assertEqual((r.status, r.body), (200, b"allocated 40"), f"40 MiB under a 160m budget: {desc(r)}")
        since = self.stderr_mark()
        r = self.get("allocsmall", timeout=15)
        self.assert_script_error(r, "alloc", "memory", since, what="40 MiB under the 32m default")
        self.assert_plain_ok()

    # ---- logs ----------------------------------------------------------------------------------------
    def test_log_functions(self):
        since = self.stderr_mark()
        r = self.get("log", headers=[("X-Request-ID", "log-rid-1")])
        self.assertEqual(r.status, 200, desc(r))
        for msg in ("info-msg from access", "warn-msg from access", "err-msg from access", "log-phase status=200"):
            self.wait_stderr(rf"script logger \[log-rid-1\]: {re.escape(msg)}", since)


# ------------------------------------------------------------------------------------------------
# separate gateways: global order, load errors, reload, hot swap

TRACE_TEMPLATE = CTX + """\
local ID = "{id}"
local function add(phase)
  local c = CTX()
  c.trace = c.trace or {}
  c.trace[#c.trace + 1] = ID .. ":" .. phase
  return table.concat(c.trace, ",")
end
return {
  rewrite = function(conf) add("rewrite") end,
  access = function(conf) gw.service.request.set_header("X-Trace", add("access")) end,
  response = function(conf) gw.response.set_header("X-Trace", add("response")) end,
  log = function(conf) gw.log.info("trace " .. add("log")) end,
}
"""

GLOBAL_CONFIG = lgtest.CONFIG_HEAD + """\
scripts:
  dir: scripts
  global: [ g ]
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - name: ordered
    match: { host: [ order.test ], path: "/*" }
    upstream: app
    scripts: [ r1, r2 ]
  - name: plain
    match: { path: "/*" }
    upstream: app
"""


def sw_script(version):
    return f"""\
return {{
  name = "sw",
  version = "{version}",
  access = function(conf)
    gw.service.request.set_header("X-Script-Version-Up", "{version}")
  end,
  response = function(conf)
    gw.response.set_header("X-Script-Version", "{version}")
  end,
  log = function(conf)
    gw.log.info("log-version {version}")
  end,
}}
"""


SW_CONFIG = """\
workers: {WORKERS}
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
scripts:
  dir: scripts
  watch: false
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
routes:
  - name: swapped
    match: { path: "/*" }
    upstream: app
    scripts: [ sw ]
"""


def _bytecode():
    """A LuaJIT bytecode chunk (from the shared corpus if present, else a bare header)."""
    p = os.path.join(lgtest.LG_SHARED_DIR, "corpus", "lua", "generated", "esc_bytecode_chunk.ljbc")
    try:
        with open(p, "rb") as f:
            return f.read()
    except OSError:
        return b"\x1bLJ\x02\x0a\x40\x00\x01\x02\x00\x01\x00\x02\x35\x01\x00\x00\x4c\x01\x02\x00"


# name -> (file content, line regex, message regex)
BAD_SCRIPTS = {
    "syntax": ("return {\n  access = function(conf)\n    local x = = 1\n  end,\n}\n", "3", r"unexpected symbol"),
    "toplevel_error": ('local a = 1\nerror("top-level boom")\nreturn {}\n', "2", r"top-level boom"),
    "toplevel_loop": ("local n = 0\nwhile true do n = n + 1 end\nreturn {}\n", r"\d+", r""),
    "not_a_table": ("return 42\n", r"\d+", r""),
    "returns_nothing": ("local x = 1\n", r"\d+", r""),
    "bytecode": (_bytecode(), r"\d+", r""),
    "bom_bytecode": (b"\xef\xbb\xbf" + _bytecode(), r"\d+", r""),
}


class ScriptLifecycleTest(ScriptAssertions, unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.addCleanup(self.stack.close)
        self.app = self.stack.enter_context(lgtest.Backend("app"))

    def start(self, config, files, workers=1):
        self.gw = self.stack.enter_context(lgtest.Gateway(
            config, extra_files=files, values={"APP_PORT": self.app.port, "WORKERS": workers}))
        return self.gw

    def write(self, rel, content):
        path = os.path.join(self.gw.dir, rel)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)

    def version_of(self, path="/echo", timeout=10.0):
        r = send(self.gw.port, "gw.test", path, timeout=timeout)
        self.assertEqual(r.status, 200, desc(r))
        return header(r.headers, "x-script-version"), r

    def wait_version(self, want, timeout=5.0):
        try:
            lgtest.wait_until(lambda: self.version_of()[0] == want, timeout, what=f"script version {want}")
        except TimeoutError:
            self.fail(f"after SIGHUP, requests still don't run script version {want!r} within {timeout} s; "
                      f"stderr:\n{self.gw.stderr_text()[-1500:]}")

    # ---- order --------------------------------------------------------------------------------
    def test_global_scripts_run_first_phase_by_phase(self):
        files = {f"scripts/{n}.lua": TRACE_TEMPLATE.replace("{id}", n) for n in ("g", "r1", "r2")}
        gw = self.start(GLOBAL_CONFIG, files)
        since = self.stderr_mark()
        r = send(gw.port, "order.test", "/echo", headers=[("X-Request-ID", "order-1")])
        self.assertEqual(r.status, 200, desc(r))
        up = "g:rewrite,r1:rewrite,r2:rewrite,g:access,r1:access,r2:access"
        self.assertEqual(echo_header_all(echo_json(r.body), "x-trace"), [up])
        resp = up + ",g:response,r1:response,r2:response"
        self.assertEqual(header(r.headers, "x-trace"), resp)
        self.wait_stderr(rf"script r2 \[order-1\]: trace {re.escape(resp + ',g:log,r1:log,r2:log')}", since)
        # a route without scripts of its own still runs the global one
        r = send(gw.port, "other.test", "/echo")
        self.assertEqual(r.status, 200, desc(r))
        self.assertEqual(echo_header_all(echo_json(r.body), "x-trace"), ["g:rewrite,g:access"])
        self.assertEqual(header(r.headers, "x-trace"), "g:rewrite,g:access,g:response")

    # ---- load errors -----------------------------------------------------------------------------
    def _bad_dir(self, content, route_script="bad"):
        d = tempfile.mkdtemp(prefix="lg-badscript-")
        self.addCleanup(shutil.rmtree, d, True)
        cfg = lgtest.fill(SW_CONFIG.replace("[ sw ]", f"[ {route_script} ]"),
                          {"WORKERS": 1, "PORT": lgtest.free_port(), "ADMIN_PORT": lgtest.free_port(),
                           "APP_PORT": self.app.port})
        os.makedirs(os.path.join(d, "scripts"))
        with open(os.path.join(d, "gateway.yaml"), "w") as f:
            f.write(cfg)
        if content is not None:
            with open(os.path.join(d, "scripts", "bad.lua"), "wb" if isinstance(content, bytes) else "w") as f:
                f.write(content)
        return d

    def test_load_errors_at_startup_and_check(self):
        for name, (content, line, msg) in BAD_SCRIPTS.items():
            d = self._bad_dir(content)
            want = rf"scripts/bad\.lua:{line}: {msg}"
            with self.subTest(script=name, command="check"):
                rc, out, err = lgtest.run_cli(["check", "-c", os.path.join(d, "gateway.yaml")], timeout=15)
                self.assertEqual(rc, 1, f"check accepted bad script {name} (rc {rc}): {out}{err}")
                self.assertRegex(out + err, want, f"check output for {name}")
            with self.subTest(script=name, command="run"):
                t0 = time.monotonic()
                try:
                    rc, out, err = lgtest.run_cli(["run", "-c", os.path.join(d, "gateway.yaml")], timeout=15, cwd=d)
                except TimeoutError:
                    self.fail(f"lunagate run with bad script {name} kept running (did not exit within 15 s)")
                self.assertEqual(rc, 1, f"run with bad script {name}: rc {rc}; {err[-1500:]}")
                self.assertRegex(err, want, f"run stderr for {name}")
                self.assertLess(time.monotonic() - t0, 10)

    def test_missing_script_is_config_error(self):
        d = self._bad_dir(None, route_script="nope")
        rc, out, err = lgtest.run_cli(["check", "-c", os.path.join(d, "gateway.yaml")], timeout=15)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out + err, r"script 'nope' not found: \S*scripts/nope\.lua")
        try:
            rc, out, err = lgtest.run_cli(["run", "-c", os.path.join(d, "gateway.yaml")], timeout=15, cwd=d)
        except TimeoutError:
            self.fail("lunagate run with a missing script kept running")
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"script 'nope' not found: \S*scripts/nope\.lua")

    def test_good_config_with_scripts_checks_ok(self):
        d = self._bad_dir("return { access = function(conf) end }\n")
        rc, out, err = lgtest.run_cli(["check", "-c", os.path.join(d, "gateway.yaml")], timeout=15)
        self.assertEqual(rc, 0, out + err)

    def test_reload_rejects_bad_script_old_version_serves(self):
        gw = self.start(SW_CONFIG, {"scripts/sw.lua": sw_script("1")})
        self.assertEqual(self.version_of()[0], "1")
        for name, (content, line, msg) in BAD_SCRIPTS.items():
            with self.subTest(script=name):
                err0, ok0 = reloads(gw.admin_port, "error"), reloads(gw.admin_port, "ok")
                since = self.stderr_mark()
                self.write("scripts/sw.lua", content)
                gw.send_signal(signal.SIGHUP)
                try:
                    lgtest.wait_until(lambda: reloads(gw.admin_port, "error") > err0, 15.0, what="reload error")
                except TimeoutError:
                    self.fail(f"{name}: no reload error counted; stderr:\n{gw.stderr_text()[since:][-1500:]}")
                self.assertEqual(reloads(gw.admin_port, "ok"), ok0, f"{name}: the bad script was accepted")
                self.wait_stderr(r"config reload rejected", since, what=f"{name}: 'config reload rejected'")
                self.wait_stderr(rf"scripts/sw\.lua:{line}: {msg}", since, what=f"{name}: file:line")
                self.assertTrue(gw.alive())
                for _ in range(3):
                    self.assertEqual(self.version_of()[0], "1", f"{name}: the old version must keep serving")
        # a route naming a missing script
        err0 = reloads(gw.admin_port, "error")
        since = self.stderr_mark()
        self.write("scripts/sw.lua", sw_script("1"))
        with open(gw.config_path) as f:
            cfg = f.read()
        with open(gw.config_path, "w") as f:
            f.write(cfg.replace("scripts: [ sw ]", "scripts: [ sw, nope ]"))
        gw.send_signal(signal.SIGHUP)
        lgtest.wait_until(lambda: reloads(gw.admin_port, "error") > err0, 10.0, what="reload error (missing)")
        self.wait_stderr(r"script 'nope' not found: \S*scripts/nope\.lua", since)
        self.assertEqual(self.version_of()[0], "1")
        # and a good one afterwards is taken
        with open(gw.config_path, "w") as f:
            f.write(cfg)
        self.write("scripts/sw.lua", sw_script("2"))
        gw.send_signal(signal.SIGHUP)
        self.wait_version("2")

    # ---- hot swap ---------------------------------------------------------------------------------
    def test_hot_swap_inflight_keeps_old_version(self):
        gw = self.start(SW_CONFIG, {"scripts/sw.lua": sw_script("1")})
        self.assertEqual(self.version_of()[0], "1")
        ok0 = reloads(gw.admin_port, "ok")
        since = self.stderr_mark()
        t = lgtest.InThread(send, gw.port, "gw.test", "/delay?ms=2000", timeout=10)
        time.sleep(0.3)
        self.write("scripts/sw.lua", sw_script("2"))
        gw.send_signal(signal.SIGHUP)
        self.wait_version("2", timeout=1.5)
        self.assertTrue(t.is_alive(), "the in-flight request ended before the new version was live")
        self.assertEqual(reloads(gw.admin_port, "ok"), ok0 + 1)
        t.join(timeout=10)
        self.assertFalse(t.is_alive(), "the in-flight request never finished")
        r = t.value()
        self.assertEqual(r.status, 200, desc(r))
        self.assertEqual(header(r.headers, "x-script-version"), "1",
                         "the in-flight request's response phase must run the old version")
        rid = header(r.headers, "x-request-id")
        self.wait_stderr(rf"script sw \[{re.escape(rid)}\]: log-version 1", since)
        for _ in range(3):
            v, r2 = self.version_of()
            self.assertEqual(v, "2")
            self.assertEqual(echo_header_all(echo_json(r2.body), "x-script-version-up"), ["2"])

    def test_hot_swap_reaches_every_worker(self):
        gw = self.start(SW_CONFIG, {"scripts/sw.lua": sw_script("1")}, workers=2)
        for _ in range(10):
            self.assertEqual(self.version_of()[0], "1")
        self.write("scripts/sw.lua", sw_script("2"))
        gw.send_signal(signal.SIGHUP)
        self.wait_version("2")
        time.sleep(0.3)
        seen = [self.version_of()[0] for _ in range(30)]  # fresh connections: both workers
        self.assertEqual(set(seen), {"2"}, f"versions after the reload: {seen}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
