#!/usr/bin/env python3
"""Routing through the real gateway: host exact > wildcard (longest first) > any host; per segment
exact > :param > prefix, longest prefix first; 404 (JSON with request_id), 405 with Allow, HEAD via
GET; strip_prefix and rewrite; path normalization before matching; query string preserved.

Each route's upstream is its own named lg-backend, so X-Backend tells which route answered.
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402
from lgtest import echo_json  # noqa: E402

BACKENDS = ["exact", "param", "prefix", "longprefix", "hx", "hw", "hw2", "hany", "misc", "norm", "root"]

CONFIG = lgtest.CONFIG_HEAD + """\
upstreams:
""" + "".join(f'  {b}: {{ targets: [ "127.0.0.1:{{P_{b.upper()}}}" ] }}\n' for b in BACKENDS) + """\
routes:
  - { name: users-prefix, match: { path: "/users/*" },       upstream: prefix }
  - { name: users-param,  match: { path: "/users/:id" },     upstream: param }
  - { name: users-me,     match: { path: "/users/me" },      upstream: exact }
  - { name: users-admin,  match: { path: "/users/admin/*" }, upstream: longprefix }
  - { name: h-any,   match: { path: "/h/*" },                                upstream: hany }
  - { name: h-wild,  match: { host: "*.example.com", path: "/h/*" },         upstream: hw }
  - { name: h-wild2, match: { host: "*.eu.example.com", path: "/h/*" },      upstream: hw2 }
  - { name: h-exact, match: { host: [ "api.example.com", "API2.example.com" ], path: "/h/*" }, upstream: hx }
  - { name: submit,  match: { path: "/submit", methods: [ POST, PUT ] },     upstream: misc }
  - { name: getonly, match: { path: "/getonly", methods: [ GET ] },          upstream: misc }
  - { name: strip,   match: { path: "/api/v1/*" }, upstream: misc, strip_prefix: "/api/v1" }
  - { name: rw-param, match: { path: "/items/:id/detail" }, upstream: misc, rewrite: "/echo/item/{id}" }
  - { name: rw-rest,  match: { path: "/files/*" },          upstream: misc, rewrite: "/static/{*}" }
  - { name: echo,    match: { path: "/echo" },     upstream: norm }
  - { name: root,    match: { path: "/" },         upstream: root }
"""


class RoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # stopped in reverse order after the class, also when this fails part-way
        cls.b = {n: cls.enterClassContext(lgtest.Backend(n, record_dir=True)) for n in BACKENDS}
        values = {f"P_{n.upper()}": b.port for n, b in cls.b.items()}
        cls.gw = cls.enterClassContext(lgtest.Gateway(CONFIG, values=values))

    def req(self, method, path, host="gw.test", body=None, headers=None):
        h = {"Host": host, **(headers or {})}
        return lgtest.http(self.gw.port, method, path, headers=h, body=body)

    def backend(self, path, host="gw.test", method="GET"):
        st, h, body = self.req(method, path, host=host)
        self.assertEqual(st, 200, f"{method} {path} (Host {host}) -> {st} {body[:200]!r}")
        return h.get("x-backend")

    def last_target(self, name, mark):
        reqs = self.b[name].new_requests(mark)
        self.assertEqual(len(reqs), 1, f"{name} received {[r.target for r in reqs]}")
        return reqs[0].target

    def raw_status(self, target):
        res = lgtest.raw_exchange(self.gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: gw.test\r\n\r\n",
                                  timeout=2, read_until_close=False)
        rs = res.responses
        self.assertEqual(len(rs), 1, res.data[:300])
        return rs[0]

    # ---- path precedence ----------------------------------------------------------------------
    def test_exact_beats_param_beats_prefix(self):
        self.assertEqual(self.backend("/users/me"), "exact")
        self.assertEqual(self.backend("/users/42"), "param")
        self.assertEqual(self.backend("/users/42/orders"), "prefix")
        self.assertEqual(self.backend("/users"), "prefix", "/users/* also matches /users")
        self.assertEqual(self.backend("/users/"), "prefix")

    def test_longest_prefix_wins(self):
        self.assertEqual(self.backend("/users/admin/x"), "longprefix")
        self.assertEqual(self.backend("/users/admin/x/y/z"), "longprefix")
        self.assertEqual(self.backend("/users/administrator/x"), "prefix", "prefixes match whole segments")

    def test_prefix_root_with_exact_segment_beats_param(self):
        # /users/admin matches /users/:id and /users/admin/* ("also matches /users/admin"); per
        # segment, the exact "admin" beats ":id" (docs/config.md, "Which route wins").
        self.assertEqual(self.backend("/users/admin"), "longprefix")

    # ---- hosts --------------------------------------------------------------------------------
    def test_host_exact_wildcard_any(self):
        self.assertEqual(self.backend("/h/x", host="api.example.com"), "hx")
        self.assertEqual(self.backend("/h/x", host="API.Example.COM"), "hx", "host match is case-insensitive")
        self.assertEqual(self.backend("/h/x", host="api.example.com:8080"), "hx", "port is ignored")
        self.assertEqual(self.backend("/h/x", host="api2.example.com"), "hx")
        self.assertEqual(self.backend("/h/x", host="www.example.com"), "hw")
        self.assertEqual(self.backend("/h/x", host="a.b.example.com"), "hw")
        self.assertEqual(self.backend("/h/x", host="x.eu.example.com"), "hw2", "the longest wildcard wins")
        self.assertEqual(self.backend("/h/x", host="example.com"), "hany", "*.example.com needs a subdomain")
        self.assertEqual(self.backend("/h/x", host="other.test"), "hany")
        self.assertEqual(self.backend("/h/x", host="127.0.0.1"), "hany")

    def test_host_route_falls_back_to_any_host_routes(self):
        # a host with its own routes still reaches any-host routes for other paths
        self.assertEqual(self.backend("/users/me", host="api.example.com"), "exact")

    # ---- 404 / 405 / HEAD ---------------------------------------------------------------------
    def test_404_json_with_request_id(self):
        for path in ("/nothing", "/userz", "/hh", "/echo/x"):
            with self.subTest(path=path):
                st, h, body = self.req("GET", path)
                self.assertEqual(st, 404, body[:200])
                self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
                obj = json.loads(body)
                self.assertEqual(obj["status"], 404)
                self.assertTrue(obj.get("error"))
                self.assertEqual(obj["request_id"], h.get("x-request-id"))
                self.assertRegex(obj["request_id"], r"^[0-9a-f-]{36}$")

    def test_local_error_answered_once_on_keep_alive(self):
        # a 404 / 405 is answered by the gateway itself; the request must be consumed once and
        # the keep-alive connection must go on with the next request
        for path, code in (("/nothing", 404), ("/submit", 405)):
            with self.subTest(path=path):
                res = lgtest.raw_exchange(self.gw.port, lgtest.get(path), timeout=0.7, max_total=3)
                statuses = [r.status for r in res.responses]
                self.assertEqual(statuses, [code], f"one request, {len(statuses)} responses: {statuses[:5]}...")
                with lgtest.RawConn(self.gw.port) as c:
                    c.send(lgtest.get(path))
                    self.assertEqual(c.read_response().status, code)
                    c.send(b"GET /echo?next=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n")
                    r = c.read_response()
                    self.assertEqual(r.status, 200, "the request after a local error got the wrong answer")
                    self.assertEqual(echo_json(r.body)["target"], "/echo?next=1")

    def test_404_keeps_client_request_id(self):
        st, h, body = self.req("GET", "/nothing", headers={"X-Request-ID": "my-req-1"})
        self.assertEqual(st, 404)
        self.assertEqual(h.get("x-request-id"), "my-req-1")
        self.assertEqual(json.loads(body)["request_id"], "my-req-1")

    def test_405_with_allow(self):
        st, h, body = self.req("GET", "/submit")
        self.assertEqual(st, 405, body[:200])
        allow = {m.strip() for m in h.get("allow", "").split(",") if m.strip()}
        self.assertEqual(allow, {"POST", "PUT"}, h.get("allow"))
        self.assertEqual(json.loads(body)["status"], 405)
        st, h, body = self.req("DELETE", "/submit")
        self.assertEqual(st, 405)
        self.assertEqual(self.req("POST", "/submit", body=b"x")[0], 200)
        self.assertEqual(self.req("PUT", "/submit", body=b"x")[0], 200)

    def test_405_allow_lists_head_with_get(self):
        st, h, _ = self.req("POST", "/getonly", body=b"x")
        self.assertEqual(st, 405)
        allow = {m.strip() for m in h.get("allow", "").split(",")}
        self.assertIn("GET", allow)
        self.assertIn("HEAD", allow, "a GET route serves HEAD too, so Allow should say so")

    def test_head_allowed_via_get(self):
        mark = self.b["misc"].mark()
        st, _, body = self.req("HEAD", "/getonly")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        reqs = self.b["misc"].new_requests(mark)
        self.assertEqual([r.method for r in reqs], ["HEAD"])

    # ---- strip_prefix / rewrite ---------------------------------------------------------------
    def test_strip_prefix(self):
        st, _, body = self.req("GET", "/api/v1/echo?x=1")
        self.assertEqual(st, 200)
        self.assertEqual(echo_json(body)["target"], "/echo?x=1")
        mark = self.b["misc"].mark()
        self.req("GET", "/api/v1")
        self.assertEqual(self.last_target("misc", mark), "/")
        mark = self.b["misc"].mark()
        self.req("GET", "/api/v1/")
        self.assertEqual(self.last_target("misc", mark), "/")
        mark = self.b["misc"].mark()
        self.req("GET", "/api/v1/a/b/c")
        self.assertEqual(self.last_target("misc", mark), "/a/b/c")

    def test_rewrite_param(self):
        mark = self.b["misc"].mark()
        self.assertEqual(self.req("GET", "/items/42/detail?full=1")[0], 200)
        self.assertEqual(self.last_target("misc", mark), "/echo/item/42?full=1")

    def test_rewrite_rest(self):
        mark = self.b["misc"].mark()
        self.assertEqual(self.req("GET", "/files/a/b.txt")[0], 200)
        self.assertEqual(self.last_target("misc", mark), "/static/a/b.txt")
        mark = self.b["misc"].mark()
        self.assertEqual(self.req("GET", "/files")[0], 200)
        self.assertIn(self.last_target("misc", mark), ("/static", "/static/"))

    def test_rewrite_keeps_reserved_escapes_encoded(self):
        # a parameter holding %3F / %23 must stay encoded upstream: decoded, it would turn into
        # a query or fragment delimiter
        cases = {
            b"/items/a%3Fb/detail": "/echo/item/a%3Fb",
            b"/items/a%23b/detail": "/echo/item/a%23b",
            b"/items/%61bc/detail": "/echo/item/abc",
            b"/files/x%3Fy/z": "/static/x%3Fy/z",
            b"/files/sp%20ace": "/static/sp%20ace",
        }
        for raw, want in cases.items():
            with self.subTest(raw=raw):
                mark = self.b["misc"].mark()
                r = self.raw_status(raw)
                self.assertEqual(r.status, 200, r.body[:200])
                self.assertEqual(self.last_target("misc", mark).lower(), want.lower())

    def test_strip_prefix_keeps_escapes(self):
        mark = self.b["misc"].mark()
        r = self.raw_status(b"/api/v1/a%3Fb?q=%3F")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.last_target("misc", mark).lower(), "/a%3fb?q=%3f")

    # ---- normalization ------------------------------------------------------------------------
    def test_normalized_paths_reach_the_route(self):
        for raw in ("/echo", "/x/../echo", "/%65cho", "//echo", "/./echo", "/a/b/../../echo", "/%65%63ho"):
            with self.subTest(raw=raw):
                r = self.raw_status(raw.encode())
                self.assertEqual(r.status, 200, f"{raw}: {r.body[:200]!r}")
                self.assertEqual(lgtest.header(r.headers, "x-backend"), "norm", raw)
                self.assertEqual(echo_json(r.body)["target"], "/echo", f"{raw} must be forwarded normalized")

    def test_dotdot_above_root_stays_at_root(self):
        r = self.raw_status(b"/../../echo")
        self.assertIn(r.status, (200, 400))
        if r.status == 200:
            self.assertEqual(echo_json(r.body)["target"], "/echo")

    def test_encoded_slash_rejected(self):
        for raw in (b"/a%2fb", b"/a%2Fb", b"/echo%5c", b"/ec%00ho"):
            with self.subTest(raw=raw):
                r = self.raw_status(raw)
                self.assertEqual(r.status, 400, f"{raw!r}: {r.body[:200]!r}")

    def test_query_string_preserved(self):
        q = "a=1&b=%20x&c=/../&d=%2F&e"
        r = self.raw_status(("/echo?" + q).encode())
        self.assertEqual(r.status, 200)
        self.assertEqual(echo_json(r.body)["target"], "/echo?" + q)
        r = self.raw_status(b"/x/../echo?k=v")
        self.assertEqual(echo_json(r.body)["target"], "/echo?k=v")

    def test_root_exact(self):
        self.assertEqual(self.backend("/"), "root")
        st, _, _ = self.req("GET", "/rootx")
        self.assertEqual(st, 404)

    def test_absolute_form_authority_wins_over_host(self):
        # RFC 9112 3.2.2: with an absolute-form target the Host field is ignored for routing
        res = lgtest.raw_exchange(self.gw.port, b"GET http://api.example.com/h/x HTTP/1.1\r\nHost: other.test\r\n\r\n",
                                  timeout=2, read_until_close=False)
        rs = res.responses
        self.assertEqual(len(rs), 1, res.data[:200])
        self.assertIn(rs[0].status, (200, 400), rs[0].body[:200])
        if rs[0].status == 200:
            self.assertEqual(lgtest.header(rs[0].headers, "x-backend"), "hx",
                             "routed by the Host field instead of the target's authority")

    def test_http10_without_host(self):
        res = lgtest.raw_exchange(self.gw.port, b"GET /echo HTTP/1.0\r\n\r\n", timeout=2)
        rs = res.responses
        self.assertEqual([r.status for r in rs], [200], res.data[:300])
        e = echo_json(rs[0].body)
        self.assertEqual(e["target"], "/echo")
        hosts = lgtest.echo_header_all(e, "host")
        self.assertEqual(len(hosts), 1, f"the upstream request needs exactly one Host: {e['headers']}")
        self.assertTrue(hosts[0], "empty Host upstream")

    def test_absolute_form_target(self):
        r = self.raw_status(b"http://gw.test/echo?abs=1")
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertEqual(echo_json(r.body)["target"], "/echo?abs=1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
