#!/usr/bin/env python3
"""Script calls that wait, end to end: gw.sleep, gw.http.request, gw.http.multi (results in order,
each failure visible: connect failure, timeout, unknown upstream), gw.request.get_body (Content-
Length and chunked, with 100-continue), gw.service.request.set_body / set_method; waiting in
every phase (rewrite, access, response, body, log); the worker serves other requests while a
handler waits; waiting time is not charged to the CPU budget; a client that leaves mid-wait; a
wait inside a script-made coroutine is refused with a 500; pipelined requests stay in order.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import Backend, Gateway, InThread, RawConn, echo_json, http  # noqa: E402

SLEEPER = """\
return {
  access = function(conf)
    local ms = tonumber(gw.request.get_query_arg("ms") or "0")
    local t0 = gw.time.monotonic and gw.time.monotonic() or nil
    gw.sleep(ms / 1000)
    gw.service.request.set_header("X-Slept", tostring(ms))
  end,
}
"""

SUB = """\
return {
  access = function(conf)
    local res, err = gw.http.request("alt", {
      method = "POST", path = "/echo", query = "q=1",
      headers = { ["X-Sub"] = "yes", ["Host"] = "sub.internal" },
      body = "sub-body", timeout = 2,
    })
    if not res then return gw.response.exit(502, { err = err }) end
    local e = gw.json.decode(res.body)
    local hs = {}
    for _, h in ipairs(e.headers) do hs[string.lower(h[1])] = h[2] end
    return gw.response.exit(200, {
      status = res.status, ctype = res.headers["content-type"], backend = e.backend,
      method = e.method, target = e.target, body = e.body, x_sub = hs["x-sub"], host = hs["host"],
      rid = hs["x-request-id"], my_rid = gw.request.get_id(),
    })
  end,
}
"""

MULTI = """\
return {
  access = function(conf)
    local results = gw.http.multi({
      { "app", { path = "/echo" } },
      { "alt", { path = "/status", query = "code=404" } },
      { "dead", { path = "/" } },
      { "app", { path = "/delay", query = "ms=3000", timeout = 0.3 } },
      { "alt", { path = "/echo", method = "PUT", body = "x" } },
    })
    local out = {}
    for i, r in ipairs(results) do
      if r.error then out[i] = "error:" .. r.error
      else out[i] = tostring(r.status) .. ":" .. (gw.json.decode(r.body).backend or tostring(gw.json.decode(r.body).status)) end
    end
    return gw.response.exit(200, { n = #results, results = out })
  end,
}
"""

PHASES = """\
return {
  rewrite = function(conf)
    gw.sleep(0.01)
    gw.ctx.rw = "slept"
  end,
  access = function(conf)
    local r = gw.http.request("alt", { path = "/echo" })
    gw.service.request.set_header("X-Access-Sub", tostring(r and r.status))
    gw.service.request.set_header("X-Rw", gw.ctx.rw)
  end,
  response = function(conf)
    local r = gw.http.request("alt", { path = "/status", query = "code=201" })
    gw.response.set_header("X-Response-Sub", tostring(r and r.status))
  end,
  body = function(conf)
    local r = gw.http.request("alt", { path = "/echo" })
    local b = gw.json.decode(gw.response.get_body())
    b.from_body_phase = gw.json.decode(r.body).backend
    gw.response.set_body(b)
  end,
  log = function(conf)
    gw.sleep(0.05)
    local r, err = gw.http.request("alt", { path = "/echo", query = "logged=" .. gw.request.get_id() })
    gw.log.info("log-phase-done status=" .. tostring(r and r.status) .. " err=" .. tostring(err))
  end,
}
"""

BODY = """\
return {
  access = function(conf)
    local mode = gw.request.get_query_arg("mode")
    if mode == "read" then
      local b = gw.request.get_body()
      local again = gw.request.get_body()
      gw.service.request.set_header("X-Body-Len", tostring(#b))
      gw.service.request.set_header("X-Body-Same", tostring(b == again))
    elseif mode == "replace" then
      gw.service.request.set_body("replaced!")
      gw.service.request.set_method("PUT")
    elseif mode == "upper" then
      gw.service.request.set_body(string.upper(gw.request.get_body()))
    elseif mode == "answer" then
      return gw.response.exit(200, { got = gw.request.get_body() })
    end
  end,
}
"""

BIGSUB = """\
return {
  access = function(conf)
    local body = string.rep("0123456789abcdef", 65536)  -- 1 MiB: the send buffer takes it in parts
    local res, err = gw.http.request("alt", { method = "POST", path = "/sink", body = body })
    if not res then return gw.response.exit(502, { err = err }) end
    return gw.response.exit(200, res.body)
  end,
}
"""

BADWAIT = """\
return {
  access = function(conf)
    local k = gw.request.get_query_arg("k")
    if k == "co" then
      local co = coroutine.wrap(function() gw.sleep(0.01) end)
      co()
    elseif k == "unknown" then
      gw.http.request("nope", { path = "/" })
    elseif k == "badopt" then
      gw.http.request("app", { path = "no-slash" })
    elseif k == "pcall" then
      local ok = pcall(gw.sleep, 0.01)
      gw.service.request.set_header("X-Pcall", tostring(ok))
    elseif k == "gsub" then
      string.gsub("a", "a", function() gw.sleep(0.01) end)
    elseif k == "head" then
      gw.service.request.set_method("HEAD")
    elseif k == "optsrec" then
      -- each read of an option runs __index, which calls gw.http.request again: C -> Lua -> C ...
      local opts
      opts = setmetatable({}, { __index = function() return gw.http.request("app", opts) end })
      gw.http.request("app", opts)
    end
  end,
}
"""

VERSIONED = """\
local V = "{v}"
return {
  access = function(conf)
    gw.service.request.set_header("X-Before-Wait", V)
    gw.sleep(tonumber(gw.request.get_query_arg("ms") or "0") / 1000)
    gw.service.request.set_header("X-After-Wait", V)
  end,
  log = function(conf)
    gw.sleep(0.3)
    gw.log.info("versioned log phase of v" .. V .. " done for " .. gw.request.get_id())
  end,
}
"""

CPU = """\
return {
  access = function(conf)
    for i = 1, 5 do gw.sleep(0.05) end
    gw.service.request.set_header("X-Cpu-Ok", "1")
  end,
}
"""


route = lgtest.host_route

CONFIG = lgtest.CONFIG_HEAD + lgtest.SCRIPTS_HEAD + """\
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ] }
  alt: { targets: [ "127.0.0.1:{ALT_PORT}" ] }
  dead: { targets: [ "127.0.0.1:{DEAD_PORT}" ] }
routes:
  - name: plain
    match: { host: [ plain.test ], path: "/*" }
    upstream: app
""" + "".join([
    route("sleep", "[ sleeper ]"),
    route("sub", "[ sub ]"),
    route("multi", "[ multi ]"),
    route("phases", "[ phases ]"),
    route("body", "[ body ]"),
    route("badwait", "[ badwait ]"),
    route("cpu", "[ cpu ]"),
    route("versioned", "[ versioned ]"),
    route("bigsub", "[ bigsub ]"),
])

SCRIPTS = {"scripts/sleeper.lua": SLEEPER, "scripts/sub.lua": SUB, "scripts/multi.lua": MULTI,
           "scripts/phases.lua": PHASES, "scripts/body.lua": BODY, "scripts/badwait.lua": BADWAIT,
           "scripts/cpu.lua": CPU, "scripts/versioned.lua": VERSIONED.replace("{v}", "1"),
           "scripts/bigsub.lua": BIGSUB}


class ScriptWaits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.enterClassContext(Backend("app", record_dir=True))
        cls.alt = cls.enterClassContext(Backend("alt", record_dir=True))
        cls.gw = cls.enterClassContext(Gateway(CONFIG, extra_files=SCRIPTS, values={
            "APP_PORT": cls.app.port, "ALT_PORT": cls.alt.port, "DEAD_PORT": lgtest.free_port()}))

    def setUp(self):
        self.assertTrue(self.gw.alive(), "gateway died:\n" + self.gw.stderr_text()[-3000:])

    def get(self, host, path="/echo", method="GET", body=None, headers=None):
        h = {"Host": host}
        h.update(headers or {})
        return http(self.gw.port, method, path, headers=h, body=body, timeout=10)

    def test_sleep_then_proxy(self):
        t0 = time.monotonic()
        st, _, body = self.get("sleep.test", "/echo?ms=200")
        elapsed = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertEqual(lgtest.echo_header(echo_json(body), "X-Slept"), "200")
        self.assertGreaterEqual(elapsed, 0.2)  # it did wait (a lower bound: cannot flake)

    def test_worker_serves_others_while_a_handler_sleeps(self):
        slow = InThread(self.get, "sleep.test", "/echo?ms=1500")
        time.sleep(0.1)
        for _ in range(5):  # one worker: these are served while the sleeper waits
            st, _, _ = self.get("plain.test", "/")
            self.assertEqual(st, 200)
        self.assertTrue(slow.is_alive(), "the sleeping request should still be waiting")
        slow.join(10)
        st, _, body = slow.value()
        self.assertEqual(st, 200)

    def test_http_request(self):
        st, _, body = self.get("sub.test", "/")
        self.assertEqual(st, 200, body)
        r = json.loads(body)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["backend"], "alt")
        self.assertEqual(r["method"], "POST")
        self.assertEqual(r["target"], "/echo?q=1")
        self.assertEqual(r["body"], "sub-body")
        self.assertEqual(r["x_sub"], "yes")
        self.assertEqual(r["host"], "sub.internal")
        self.assertEqual(r["rid"], r["my_rid"])  # the sub-request carries the request's id
        self.assertTrue(r["ctype"].startswith("application/json"))

    def test_http_multi_in_order_with_failures(self):
        st, _, body = self.get("multi.test", "/")
        self.assertEqual(st, 200, body)
        r = json.loads(body)
        self.assertEqual(r["n"], 5)
        self.assertEqual(r["results"][0], "200:app")
        self.assertEqual(r["results"][1], "404:404")
        # connect failed; once passive health has marked the dead target down, none is left
        self.assertIn(r["results"][2], ("error:connect failed", "error:no upstream target available"))
        self.assertEqual(r["results"][3], "error:timeout")
        self.assertEqual(r["results"][4], "200:alt")
        m = lgtest.get_metrics(self.gw.admin_port)
        self.assertGreaterEqual(lgtest.metric(m, "gateway_script_subrequests_total", upstream="app", result="timeout"), 1)
        self.assertGreaterEqual(lgtest.metric(m, "gateway_script_subrequests_total", upstream="alt", result="ok"), 2)
        self.assertGreaterEqual(lgtest.metric(m, "gateway_script_subrequests_total", upstream="dead", result="error"), 1)

    def test_waits_in_every_phase(self):
        mark = self.alt.mark()
        st, hs, body = self.get("phases.test", "/echo")
        self.assertEqual(st, 200, body)
        self.assertEqual(hs.get("x-response-sub"), "201")
        e = json.loads(body)
        self.assertEqual(e["from_body_phase"], "alt")
        self.assertEqual(lgtest.echo_header(echo_json(json.dumps({"headers": e["headers"]})), "X-Access-Sub"), "200")
        self.assertEqual(lgtest.echo_header(echo_json(json.dumps({"headers": e["headers"]})), "X-Rw"), "slept")
        rid = hs.get("x-request-id")
        # The log phase waited (sleep, then a sub-request) after the client had its answer.
        lgtest.wait_until(lambda: "log-phase-done status=200 err=nil" in self.gw.stderr_text(), 5,
                          what="log phase finished")
        paths = [r.target for r in self.alt.new_requests(mark)]
        self.assertIn(f"/echo?logged={rid}", paths)
        # The connection is reusable and the next request is fine.
        self.assertEqual(self.get("plain.test", "/")[0], 200)

    def test_get_body_content_length_and_chunked(self):
        data = b"0123456789" * 5000
        st, _, body = self.get("body.test", "/echo?mode=read", method="POST", body=data)
        self.assertEqual(st, 200)
        e = echo_json(body)
        self.assertEqual(lgtest.echo_header(e, "X-Body-Len"), str(len(data)))
        self.assertEqual(lgtest.echo_header(e, "X-Body-Same"), "true")
        self.assertEqual(e["body_bytes"], len(data))
        self.assertEqual(e["body"], data.decode())
        self.assertEqual(lgtest.echo_header(e, "Content-Length"), str(len(data)))
        # chunked in, Content-Length out
        with RawConn(self.gw.port) as c:
            c.send(b"POST /echo?mode=upper HTTP/1.1\r\nHost: body.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n")
            time.sleep(0.05)
            c.send(b"6\r\n world\r\n0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            e = echo_json(r.body)
            self.assertEqual(e["body"], "HELLO WORLD")
            self.assertIsNone(lgtest.echo_header(e, "Transfer-Encoding"))
            self.assertEqual(lgtest.echo_header(e, "Content-Length"), "11")
            # keep-alive holds: the next request on the same connection
            c.send(b"GET /echo HTTP/1.1\r\nHost: plain.test\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)

    def test_get_body_with_expect_continue(self):
        with RawConn(self.gw.port) as c:
            c.send(b"POST /x?mode=answer HTTP/1.1\r\nHost: body.test\r\nContent-Length: 4\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            r = c.read_response(allow_interim=True)
            self.assertEqual(r.status, 100)
            c.send(b"ping")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body), {"got": "ping"})

    def test_get_body_empty_and_too_large(self):
        st, _, body = self.get("body.test", "/x?mode=answer")
        self.assertEqual((st, json.loads(body)), (200, {"got": ""}))
        big = b"x" * (11 * 1024 * 1024)  # over limits.max_body_bytes (10 MiB): 413 before scripts
        with RawConn(self.gw.port) as c:
            c.send(b"POST /x?mode=answer HTTP/1.1\r\nHost: body.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            c.send(b"%x\r\n" % len(big) + big[:1 << 20])
            r = c.read_response()
            self.assertEqual(r.status, 413)

    def test_set_body_and_method(self):
        st, _, body = self.get("body.test", "/echo?mode=replace", method="POST", body=b"original body")
        self.assertEqual(st, 200)
        e = echo_json(body)
        self.assertEqual(e["method"], "PUT")
        self.assertEqual(e["body"], "replaced!")
        self.assertEqual(lgtest.echo_header(e, "Content-Length"), "9")
        # a bodiless GET gets a body too
        st, _, body = self.get("body.test", "/echo?mode=replace")
        e = echo_json(body)
        self.assertEqual((e["method"], e["body"]), ("PUT", "replaced!"))

    def test_bad_waits_are_500_and_the_worker_lives(self):
        for k in ("co", "unknown", "badopt", "gsub", "head", "optsrec"):
            st, _, body = self.get("badwait.test", f"/echo?k={k}")
            self.assertEqual(st, 500, k)
            self.assertIn(b"script error", body)
        st, _, body = self.get("badwait.test", "/echo?k=pcall")  # waiting across pcall works
        self.assertEqual(st, 200)
        self.assertEqual(lgtest.echo_header(echo_json(body), "X-Pcall"), "true")
        err = self.gw.stderr_text()
        self.assertIn("cannot wait here", err)
        self.assertIn("unknown upstream 'nope'", err)
        self.assertIn("C stack overflow", err)  # optsrec: stopped at the C-stack floor, no crash
        self.assertEqual(self.get("plain.test", "/")[0], 200)

    def test_waiting_is_not_charged_to_the_cpu_budget(self):
        st, _, body = self.get("cpu.test", "/echo")  # 250 ms of sleeps under a 50 ms budget
        self.assertEqual(st, 200)
        self.assertEqual(lgtest.echo_header(echo_json(body), "X-Cpu-Ok"), "1")

    def test_client_leaves_mid_wait(self):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
            s.sendall(b"GET /echo?ms=300 HTTP/1.1\r\nHost: sleep.test\r\n\r\n")
            time.sleep(0.05)
            s.close()
        with RawConn(self.gw.port) as c:  # a sub-request fan-out, then leave
            c.send(b"GET / HTTP/1.1\r\nHost: multi.test\r\n\r\n")
        time.sleep(0.6)
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.get("plain.test", "/")[0], 200)
        lgtest.assert_no_connection_leak(self, self.gw.admin_port)

    def test_pipelined_requests_with_waits_stay_in_order(self):
        with RawConn(self.gw.port) as c:
            c.send(b"GET /echo?ms=150 HTTP/1.1\r\nHost: sleep.test\r\n\r\n"
                   b"GET /echo?ms=10 HTTP/1.1\r\nHost: sleep.test\r\n\r\n"
                   b"GET /echo HTTP/1.1\r\nHost: plain.test\r\n\r\n")
            got = [c.read_response() for _ in range(3)]
        self.assertEqual([r.status for r in got], [200, 200, 200])
        self.assertEqual(lgtest.echo_header(echo_json(got[0].body), "X-Slept"), "150")
        self.assertEqual(lgtest.echo_header(echo_json(got[1].body), "X-Slept"), "10")
        self.assertIsNone(lgtest.echo_header(echo_json(got[2].body), "X-Slept"))

    def test_concurrent_fan_outs(self):
        results = []
        lock = threading.Lock()

        def one():
            st, _, body = self.get("multi.test", "/")
            with lock:
                results.append((st, json.loads(body)["results"][0] if st == 200 else body))
        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(len(results), 16)
        self.assertTrue(all(r == (200, "200:app") for r in results), results)

    def test_zz_hot_swap_while_handlers_wait(self):
        """A handler waiting across a reload finishes on the version it started with, log phase
        included; new requests get the new version."""
        slow = InThread(self.get, "versioned.test", "/echo?ms=1200", headers={"X-Request-ID": "swap-old-1"})
        time.sleep(0.3)
        with open(os.path.join(self.gw.dir, "scripts", "versioned.lua"), "w") as f:
            f.write(VERSIONED.replace("{v}", "2"))
        self.gw.send_signal(signal.SIGHUP)

        def new_version():
            st, _, body = self.get("versioned.test", "/echo")
            return st == 200 and lgtest.echo_header(echo_json(body), "X-After-Wait") == "2"
        lgtest.wait_until(new_version, 5, what="version 2 serving")
        self.assertTrue(slow.is_alive(), "the old request should still be waiting")
        slow.join(10)
        st, _, body = slow.value()
        self.assertEqual(st, 200)
        e = echo_json(body)
        self.assertEqual((lgtest.echo_header(e, "X-Before-Wait"), lgtest.echo_header(e, "X-After-Wait")), ("1", "1"))
        lgtest.wait_until(lambda: "versioned log phase of v1 done for swap-old-1" in self.gw.stderr_text(), 5,
                          what="the old request's log phase on v1")

    def test_large_sub_request_body(self):
        st, _, body = self.get("bigsub.test", "/")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"bytes": 1 << 20})

    def test_set_body_while_other_heads_are_parsed(self):
        """The request head outlives the loop's turn while its body is read (set_body): other
        connections parsing heads on the same worker must not change it."""
        with RawConn(self.gw.port) as c:
            c.send(b"POST /echo?mode=replace HTTP/1.1\r\nHost: body.test\r\nX-Mine: first-client\r\n"
                   b"Content-Length: 6\r\n\r\nab")
            time.sleep(0.1)
            for i in range(5):  # other heads on the same worker meanwhile
                st, _, _ = self.get("plain.test", "/echo", headers={"X-Mine": f"other-{i}", "X-Other": "x" * 200})
                self.assertEqual(st, 200)
            c.send(b"cdef")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        e = echo_json(r.body)
        self.assertEqual(lgtest.echo_header(e, "X-Mine"), "first-client")
        self.assertIsNone(lgtest.echo_header(e, "X-Other"))
        self.assertEqual((e["method"], e["body"]), ("PUT", "replaced!"))

    def test_client_that_leaves_is_noticed_while_its_handler_waits(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        s.sendall(b"GET /echo?ms=4000 HTTP/1.1\r\nHost: sleep.test\r\nX-Request-ID: leaver-1\r\n\r\n")
        time.sleep(0.2)
        s.close()
        # The access log line (status 499) is written when the close is seen, long before the
        # 4 s sleep would end.
        lines = lgtest.wait_until(
            lambda: [l for l in self.gw.access_log_lines() if l.get("request_id") == "leaver-1"], 2.5,
            what="access log line of the request whose client left")
        self.assertEqual(lines[0]["status"], 499)

    def test_top_level_gw_calls_are_load_errors_not_crashes(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "scripts"))
            with open(os.path.join(d, "scripts", "top.lua"), "w") as f:
                f.write("local m = gw.request.get_method()\nreturn { access = function() end }\n")
            with open(os.path.join(d, "gw.yaml"), "w") as f:
                f.write(CONFIG.split("upstreams:")[0].replace("{PORT}", "1").replace("{ADMIN_PORT}", "2") +
                        "upstreams:\n  app: { targets: [ \"127.0.0.1:1\" ] }\nroutes:\n"
                        "  - { name: r, match: { path: \"/*\" }, upstream: app, scripts: [ top ] }\n")
            rc, out, err = lgtest.run_cli(["check", "-c", os.path.join(d, "gw.yaml")])
        self.assertNotIn(rc, (0, -11, 139))  # rejected, not a segfault
        self.assertIn("scripts/top.lua:1:", err + out)
        self.assertIn("needs a request", err + out)


class WaitLimit(unittest.TestCase):
    def test_waits_stop_at_the_wait_limit(self):
        script = """\
return {
  access = function(conf)
    local n, err = 0, nil
    for i = 1, 10 do
      local ok, e = gw.sleep(0.4)
      if not ok then err = e break end
      n = n + 1
    end
    return gw.response.exit(200, { slept = n, err = err })
  end,
}
"""
        config = CONFIG.replace("budget: { cpu: 50ms, memory: 32m }", "budget: { cpu: 50ms, memory: 32m }\n  wait_limit: 1s")
        self.assertIn("wait_limit: 1s", config)
        with Backend("app") as app, Gateway(config, extra_files={**SCRIPTS, "scripts/sleeper.lua": script},
                                            values={"APP_PORT": app.port, "ALT_PORT": app.port,
                                                    "DEAD_PORT": lgtest.free_port()}) as gw:
            t0 = time.monotonic()
            st, _, body = http(gw.port, "GET", "/", headers={"Host": "sleep.test"}, timeout=10)
            elapsed = time.monotonic() - t0
        self.assertEqual(st, 200, body)
        r = json.loads(body)
        self.assertEqual(r["err"], "wait limit reached (scripts.wait_limit)")
        self.assertIn(r["slept"], (2, 3))  # 0.4 + 0.4 + (cut to what is left of 1 s)
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 3.5)  # ten sleeps would take 4 s


if __name__ == "__main__":
    unittest.main(verbosity=2)
