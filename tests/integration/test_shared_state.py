"""gw.shared and gw.ratelimit.take hold across workers: one dictionary and one set of token
buckets per process, reached by every worker's scripts."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

SCRIPT = """
return {
  access = function(conf)
    local n = gw.shared.incr("hits", 1, 0)
    gw.ctx.hits = n
    local ok, remaining, retry = gw.ratelimit.take("client:" .. gw.request.get_client_ip(),
                                                   { limit = 5, per = 60 })
    if not ok then
      return gw.response.exit(429, { error = "rate limited" },
                              { ["Retry-After"] = tostring(math.ceil(retry)) })
    end
    gw.ctx.remaining = remaining
    if gw.request.get_query_arg("remember") then
      assert(gw.shared.set("last", gw.request.get_query_arg("remember"), 60))
    end
  end,
  response = function(conf)
    gw.response.set_header("X-Hits", string.format("%d", gw.ctx.hits))
    gw.response.set_header("X-Remaining", string.format("%d", gw.ctx.remaining))
    local last = gw.shared.get("last")
    if last then gw.response.set_header("X-Last", last) end
  end,
}
"""

MISUSE = """
return {
  access = function(conf)
    local ok, err = gw.shared.incr("text", 1)
    if ok ~= nil or err ~= "not a number" then error("incr on a string: " .. tostring(ok) .. " " .. tostring(err)) end
    local bad = pcall(gw.ratelimit.take, "k", { limit = 0 })
    if bad then error("limit 0 accepted") end
    return gw.response.exit(200, "checked")
  end,
  rewrite = function(conf) assert(gw.shared.set("text", "abc")) end,
}
"""

WINDOW = """
return {
  access = function(conf)
    local ok, remaining, retry = gw.ratelimit.take("w", { limit = 2, per = 60, algorithm = "sliding_window" })
    if not ok then return gw.response.exit(429, { retry = retry }) end
    local bad = pcall(gw.ratelimit.take, "w", { limit = 2, per = 60, algorithm = "leaky" })
    if bad then error("unknown algorithm accepted") end
    return gw.response.exit(200, { remaining = remaining })
  end,
}
"""

CONFIG = lgtest.CONFIG_HEAD.replace("workers: 1", "workers: 2") + """
scripts: { dir: scripts, watch: false }
upstreams:
  app: { targets: [ "127.0.0.1:{BACKEND_PORT}" ] }
routes:
  - { name: counted, match: { path: /counted }, upstream: app, scripts: [ counter ] }
  - { name: misuse, match: { path: /misuse }, upstream: app, scripts: [ misuse ] }
  - { name: window, match: { path: /window }, upstream: app, scripts: [ window ] }
"""


class SharedStateTest(unittest.TestCase):
    def test_counter_and_limit_span_workers(self):
        with lgtest.Backend("app") as be, lgtest.Gateway(
                CONFIG, extra_files={"scripts/counter.lua": SCRIPT, "scripts/misuse.lua": MISUSE,
                                     "scripts/window.lua": WINDOW},
                values={"BACKEND_PORT": be.port}) as gw:
            statuses, hits = [], []
            for i in range(12):  # a new connection each: the kernel spreads them over both workers
                st, h, _ = lgtest.http(gw.port, "GET", "/counted?remember=v%d" % i if i == 0 else "/counted")
                statuses.append(st)
                if st == 200:
                    hits.append(int(h["x-hits"]))
                    self.assertEqual(h.get("x-last"), "v0", "a value set by one request is seen by the next")
                else:
                    self.assertEqual(st, 429)
                    self.assertGreaterEqual(int(h["retry-after"]), 1)
            self.assertEqual(statuses.count(200), 5, f"exactly the limit passes across workers: {statuses}")
            self.assertEqual(statuses[:5], [200] * 5)
            self.assertEqual(hits, [1, 2, 3, 4, 5], "one counter for the whole process, incremented atomically")
            st, _, body = lgtest.http(gw.port, "GET", "/misuse")
            self.assertEqual((st, body), (200, b"checked"))
            got = [lgtest.http(gw.port, "GET", "/window") for _ in range(3)]
            self.assertEqual([g[0] for g in got], [200, 200, 429])
            self.assertEqual(__import__("json").loads(got[0][2]), {"remaining": 1})
            self.assertGreater(__import__("json").loads(got[2][2])["retry"], 0)


if __name__ == "__main__":
    unittest.main()
