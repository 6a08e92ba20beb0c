#!/usr/bin/env python3
"""Streaming with bounded memory: 1 GiB uploads (Content-Length and chunked) to /sink and a 1 GiB
download from /stream pass through the gateway with correct byte counts while its RSS stays
within 16 MiB of the idle RSS; a slow reader of 64 MiB is throttled by backpressure (RSS still
bounded, every byte correct).
"""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lgtest  # noqa: E402

CONFIG = lgtest.CONFIG_HEAD + """\
limits: { max_body_bytes: 2g }
upstreams:
  app: { targets: [ "127.0.0.1:{APP_PORT}" ], timeouts: { read: 30s, write: 30s } }
routes:
  - { name: all, match: { path: "/*" }, upstream: app }
"""

GiB = 1 << 30
MiB = 1 << 20
RSS_SLACK_KIB = 16 * 1024
PATTERN = b"0123456789abcdef"
BIG_PATTERN = PATTERN * ((MiB + 32) // 16)   # 1 MiB + 32 bytes of the backend's pattern


class RssSampler:
    """Samples VmRSS of a pid every `interval` s in a thread; .peak in KiB."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval = pid, interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = lgtest.rss_kib(self.pid)
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=2)
        return False

    @property
    def peak(self):
        return max(self.samples) if self.samples else 0


def read_head(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the response head: {buf[:200]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers[n.strip().lower()] = v.strip()
    return status, headers, rest


def read_body(sock, headers, rest, deadline):
    data = rest
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            body, after = lgtest._decode_chunked(data, 0)
            if after is not None:
                return body
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a chunked body")
            data += chunk
    n = int(headers["content-length"])
    while len(data) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        data += chunk
    return data[:n]


class Dechunker:
    """Incremental chunked-body decoder: feed(bytes) -> list of data pieces; .done after the
    last chunk and its (empty) trailer section."""

    def __init__(self):
        self.pending = b""
        self.left = 0          # data bytes left in the current chunk
        self.need_crlf = False
        self.done = False

    def feed(self, data):
        out = []
        self.pending += data
        while self.pending and not self.done:
            if self.left:
                piece = self.pending[:self.left]
                self.pending = self.pending[len(piece):]
                self.left -= len(piece)
                out.append(piece)
                if not self.left:
                    self.need_crlf = True
                continue
            if self.need_crlf:
                if len(self.pending) < 2:
                    break
                if self.pending[:2] != b"\r\n":
                    raise AssertionError(f"bad chunk end {self.pending[:10]!r}")
                self.pending = self.pending[2:]
                self.need_crlf = False
                continue
            nl = self.pending.find(b"\r\n")
            if nl < 0:
                if len(self.pending) > 4096:
                    raise AssertionError("chunk size line too long")
                break
            size = int(self.pending[:nl].split(b";")[0], 16)
            if size == 0 and len(self.pending) < nl + 4:
                break  # the last chunk's CRLF has not arrived yet
            self.pending = self.pending[nl + 2:]
            if size == 0:
                end = self.pending.find(b"\r\n")  # no trailers expected
                if end != 0:
                    raise AssertionError(f"unexpected trailer {self.pending[:50]!r}")
                self.pending = self.pending[2:]
                self.done = True
            else:
                self.left = size
        return out


class StreamingTest(lgtest.AppGatewayMixin, unittest.TestCase):
    CONFIG = CONFIG
    APP_RECORD = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # warm up: buffers and pools allocated, then the idle RSS
        cls._upload(cls, 4 * MiB, chunked=False)
        cls._upload(cls, 4 * MiB, chunked=True)
        cls._download(cls, 4 * MiB)
        time.sleep(0.3)
        cls.idle_rss = lgtest.rss_kib(cls.gw.pid)

    # ---- transfers ----------------------------------------------------------------------------
    def _upload(self, total, chunked, piece=MiB, time_limit=40.0):
        deadline = time.monotonic() + time_limit
        block = b"u" * piece
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % total
            s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
            sent = 0
            chunk_head = b"%x\r\n" % piece
            while sent < total:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"upload too slow: {sent} of {total} bytes in {time_limit} s")
                n = min(piece, total - sent)
                if chunked:
                    s.sendall((chunk_head if n == piece else b"%x\r\n" % n) + block[:n] + b"\r\n")
                else:
                    s.sendall(block[:n] if n < piece else block)
                sent += n
            if chunked:
                s.sendall(b"0\r\n\r\n")
            status, headers, rest = read_head(s, deadline)
            body = read_body(s, headers, rest, deadline)
            return status, body
        finally:
            s.close()

    def _download(self, total, query="", slow=None, time_limit=40.0):
        """Reads /stream?bytes=total and checks every byte against the pattern; -> bytes read.
        slow: (recv size, sleep s) for a slow reader."""
        deadline = time.monotonic() + time_limit
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        try:
            if slow:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.sendall(b"GET /stream?bytes=%d%s HTTP/1.1\r\nHost: x\r\n\r\n" % (total, query.encode()))
            status, headers, rest = read_head(s, deadline)
            if status != 200:
                raise AssertionError(f"status {status}")
            if "content-length" in headers and int(headers["content-length"]) != total:
                raise AssertionError(f"Content-Length {headers['content-length']} != {total}")
            pos = 0
            buf = bytearray(slow[0] if slow else MiB)
            view = memoryview(buf)
            chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            dechunk = Dechunker() if chunked else None

            def check(data):
                nonlocal pos
                for piece in (dechunk.feed(bytes(data)) if chunked else (data,)):
                    k = pos % 16
                    if bytes(piece) != BIG_PATTERN[k:k + len(piece)]:
                        raise AssertionError(f"wrong bytes at offset {pos}")
                    pos += len(piece)
            if rest:
                check(rest)
            while pos < total or (chunked and not dechunk.done):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"download too slow: {pos} of {total} bytes in {time_limit} s")
                s.settimeout(max(0.01, deadline - time.monotonic()))
                n = s.recv_into(buf)
                if n == 0:
                    break
                check(view[:n])
                if pos > total:
                    raise AssertionError(f"more than {total} body bytes")
                if slow:
                    time.sleep(slow[1])
            return pos
        finally:
            s.close()

    def assertRssBounded(self, sampler, what):
        if os.environ.get("LG_VERBOSE"):
            print(f"\n  {what}: idle {self.idle_rss} KiB, peak {sampler.peak} KiB, {len(sampler.samples)} samples")
        self.assertGreater(len(sampler.samples), 3, "too few RSS samples")
        growth = sampler.peak - self.idle_rss
        self.assertLessEqual(growth, RSS_SLACK_KIB,
                             f"{what}: gateway RSS grew {growth} KiB over idle {self.idle_rss} KiB "
                             f"(peak {sampler.peak} KiB, limit {RSS_SLACK_KIB} KiB)")

    # ---- tests --------------------------------------------------------------------------------
    def test_upload_1gib_content_length(self):
        with RssSampler(self.gw.pid) as rss:
            status, body = self._upload(GiB, chunked=False)
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(body, b'{"bytes":%d}' % GiB)
        self.assertRssBounded(rss, "1 GiB Content-Length upload")

    def test_upload_1gib_chunked(self):
        with RssSampler(self.gw.pid) as rss:
            status, body = self._upload(GiB, chunked=True)
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(body, b'{"bytes":%d}' % GiB)
        self.assertRssBounded(rss, "1 GiB chunked upload")

    def test_download_1gib(self):
        with RssSampler(self.gw.pid) as rss:
            n = self._download(GiB)
        self.assertEqual(n, GiB)
        self.assertRssBounded(rss, "1 GiB download")

    def test_download_256mib_chunked(self):
        with RssSampler(self.gw.pid) as rss:
            n = self._download(256 * MiB, query="&chunked=1&chunk=65536")
        self.assertEqual(n, 256 * MiB)
        self.assertRssBounded(rss, "256 MiB chunked download")

    def test_slow_reader_64mib(self):
        # 64 KiB reads with a 4 ms pause: ~16 MiB/s, so ~4 s; the backend writes as fast as it can
        with RssSampler(self.gw.pid) as rss:
            n = self._download(64 * MiB, slow=(64 * 1024, 0.004))
        self.assertEqual(n, 64 * MiB)
        self.assertRssBounded(rss, "slow reader of 64 MiB")


if __name__ == "__main__":
    unittest.main(verbosity=2)
