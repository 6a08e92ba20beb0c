"""Shared harness for lunagate's integration tests (Python standard library only).

Every test starts the real `lunagate` binary and real `lg-backend` upstreams on 127.0.0.1, each on
a free port, and stops exactly the processes it started (by PID). Every wait is bounded.

Environment (set by ctest; the defaults suit a by-hand run from the repository):
  LUNAGATE_BIN    the gateway binary            (default: <repo>/build/lunagate)
  LG_BACKEND_BIN  the test upstream             (default: <repo>/build/lg-backend)
  LG_SHARED_DIR   the shared corpora directory  (default: <repo>/../shared)
  LG_SOURCE_DIR   the repository root           (default: two levels above this file)
  LG_KEEP_TMP=1   keep the gateway's temp dir (config, access.log, error.log) for inspection

Main pieces: free_port(), Backend, Gateway, run_cli(), raw_request()/raw_exchange(),
parse_responses(), parse_requests() (for --record files), http(), to_yaml().
"""
import collections
import http.client as httpclient
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
LG_SOURCE_DIR = os.environ.get("LG_SOURCE_DIR") or os.path.normpath(os.path.join(_HERE, "..", ".."))
LG_SHARED_DIR = os.environ.get("LG_SHARED_DIR") or os.path.normpath(os.path.join(LG_SOURCE_DIR, "..", "shared"))
# Absolute, so that a relative LUNAGATE_BIN=build/lunagate still works once Gateway runs the
# binary with cwd set to its temp dir.
LUNAGATE_BIN = os.path.abspath(os.environ.get("LUNAGATE_BIN") or os.path.join(LG_SOURCE_DIR, "build", "lunagate"))
LG_BACKEND_BIN = os.path.abspath(os.environ.get("LG_BACKEND_BIN") or os.path.join(LG_SOURCE_DIR, "build", "lg-backend"))
KEEP_TMP = os.environ.get("LG_KEEP_TMP") == "1"

LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------------------------
# small utilities

def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value (returned) or `timeout` s pass (TimeoutError)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _stop_process(proc, term_wait):
    """SIGTERM, wait `term_wait` s, then SIGKILL: only ever the Popen we started."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=term_wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------------------------
# configuration text

_PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


def fill(template, values):
    """Replaces {NAME} placeholders (upper-case names only, so YAML flow maps like `{ a: 1 }`
    are left alone). An unknown placeholder is an error, not a silent hole in the config."""
    def repl(m):
        if m.group(1) not in values:
            raise KeyError(f"config placeholder {{{m.group(1)}}} has no value (have: {sorted(values)})")
        return str(values[m.group(1)])
    return _PLACEHOLDER.sub(repl, template)


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, dict) and not v:
        return "{}"
    if isinstance(v, (list, tuple)) and not v:
        return "[]"
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _yaml_key(k):
    k = str(k)
    return k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", k) else json.dumps(k)


def _yaml_emit(obj, indent, out):
    pad = "  " * indent
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list, tuple)) and v:
                out.append(f"{pad}{_yaml_key(k)}:")
                _yaml_emit(v, indent + 1, out)
            else:
                out.append(f"{pad}{_yaml_key(k)}: {_yaml_scalar(v)}")
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            if isinstance(item, (dict, list, tuple)) and item:
                sub = []
                _yaml_emit(item, indent + 1, sub)
                sub[0] = pad + "- " + sub[0].lstrip()
                out.extend(sub)
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        out.append(pad + _yaml_scalar(obj))


def to_yaml(obj):
    """Block-style YAML for a dict/list/scalar tree (strings always double-quoted)."""
    out = []
    _yaml_emit(obj, 0, out)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# lg-backend

class Backend:
    """Runs lg-backend on a free port:  with Backend("app", record_dir=True) as b: ... b.port

    record_dir: None (no recording), True (a temp dir owned and removed by this object) or a path.
    """

    def __init__(self, name="backend", record_dir=None, idle_close_ms=None, start_timeout=10.0):
        self.name = name
        self._own_record_dir = record_dir is True
        self.record_dir = tempfile.mkdtemp(prefix=f"lg-rec-{name}-") if record_dir is True else record_dir
        self.idle_close_ms = idle_close_ms
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        if self._own_record_dir and not KEEP_TMP:
            shutil.rmtree(self.record_dir, ignore_errors=True)
        return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if not os.path.isfile(LG_BACKEND_BIN):
            raise FileNotFoundError(f"lg-backend binary not found: {LG_BACKEND_BIN} (set LG_BACKEND_BIN)")
        args = [LG_BACKEND_BIN, "--listen", f"{LOOPBACK}:0", "--name", self.name]
        if self.record_dir:
            os.makedirs(self.record_dir, exist_ok=True)
            args += ["--record", self.record_dir]
        if self.idle_close_ms is not None:
            args += ["--idle-close-ms", str(int(self.idle_close_ms))]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None)
        line = self._read_listening_line()
        m = re.fullmatch(r"listening (\S+):(\d+)", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"lg-backend {self.name}: unexpected first line {line!r}")
        self.port = int(m.group(2))
        # Nothing else is printed, but drain stdout anyway so the pipe can never fill up.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_listening_line(self):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + self.start_timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"lg-backend {self.name} did not report 'listening' within "
                                   f"{self.start_timeout} s (exit code {self.proc.returncode}); got {buf!r}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue  # EOF: poll() above reports the exit
                buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace")

    def _drain(self):
        try:
            while self.proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def stop(self):
        _stop_process(self.proc, term_wait=5)
        if self.proc and self.proc.stdout:
            try:
                self.proc.stdout.close()
            except OSError:
                pass

    # ---- recordings (--record) -------------------------------------------------------------
    def recording_files(self):
        """conn-*.raw paths in connection order."""
        if not self.record_dir or not os.path.isdir(self.record_dir):
            return []
        names = [n for n in os.listdir(self.record_dir) if re.fullmatch(r"conn-\d+\.raw", n)]
        names.sort(key=lambda n: int(n[5:-4]))
        return [os.path.join(self.record_dir, n) for n in names]

    def mark(self):
        """Snapshot of the recording sizes; new_bytes(mark) returns what arrived since."""
        return {p: os.path.getsize(p) for p in self.recording_files()}

    def new_bytes(self, mark=None):
        """{path: bytes received since `mark`} for every connection that received something.
        Pooled upstream connections are reused across requests, so this reads from the marked
        offset of old files too, not only new files."""
        mark = mark or {}
        out = {}
        for p in self.recording_files():
            with open(p, "rb") as f:
                f.seek(mark.get(p, 0))
                data = f.read()
            if data:
                out[p] = data
        return out

    def new_requests(self, mark=None, with_paths=False):
        """Requests parsed from new_bytes(mark), in connection order; with_paths: as
        (recording path, RecordedRequest) pairs."""
        reqs = []
        for path, data in self.new_bytes(mark).items():
            reqs.extend((path, r) if with_paths else r for r in parse_requests(data))
        return reqs


# --------------------------------------------------------------------------------------------
# lunagate

class PortTaken(RuntimeError):
    """lunagate could not bind a port that was free when it was picked."""


class Gateway:
    """Runs `lunagate run -c FILE` with a generated config in a temp dir.

        cfg = '''listen: [ { address: "127.0.0.1:{PORT}" } ] ... "127.0.0.1:{APP_PORT}" ...'''
        with Backend("app") as app, Gateway(cfg, values={"APP_PORT": app.port}) as gw:
            status, headers, body = http(gw.port, "GET", "/")

    config: YAML text or a dict (turned into YAML). Placeholders {PORT} and {ADMIN_PORT} are
    filled with free ports, {DIR} with the temp dir, anything else from `values`.
    extra_files: {relative path: str or bytes} written into the temp dir (not templated).
    The admin /ready check is skipped when the config has no {ADMIN_PORT}.
    """

    def __init__(self, config, extra_files=None, values=None, ready_timeout=15.0, port=None, admin_port=None):
        self.config = config
        self.extra_files = extra_files or {}
        self.values = dict(values or {})
        self.ready_timeout = ready_timeout
        self._fixed_ports = (port, admin_port)
        self._pick_ports()
        self.proc = None
        self.dir = None
        self._out = self._err = None

    def _pick_ports(self):
        port, admin_port = self._fixed_ports
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()

    # Ports from free_port() can be taken by another test's process before lunagate binds them
    # (tests run in parallel); then lunagate exits with "Address already in use". Ports this
    # object picked itself are re-picked a bounded number of times; fixed ones are not.
    PORT_RACE_RETRIES = 4

    def __enter__(self):
        for attempt in range(self.PORT_RACE_RETRIES + 1):
            try:
                self.start()
                return self
            except PortTaken:
                self.close()
                if attempt == self.PORT_RACE_RETRIES or self._fixed_ports == (self.port, self.admin_port):
                    raise
                self._pick_ports()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def config_path(self):
        return os.path.join(self.dir, "gateway.yaml")

    @property
    def access_log_path(self):
        return os.path.join(self.dir, "access.log")

    @property
    def error_log_path(self):
        return os.path.join(self.dir, "error.log")

    def render_config(self):
        text = self.config if isinstance(self.config, str) else to_yaml(self.config)
        values = {"PORT": self.port, "ADMIN_PORT": self.admin_port, "DIR": self.dir, **self.values}
        return fill(text, values)

    def start(self):
        if not os.path.isfile(LUNAGATE_BIN):
            raise FileNotFoundError(f"gateway binary not found: {LUNAGATE_BIN} (set LUNAGATE_BIN)")
        self.dir = tempfile.mkdtemp(prefix="lg-gw-")
        template = self.config if isinstance(self.config, str) else to_yaml(self.config)
        has_admin = "{ADMIN_PORT}" in template
        with open(self.config_path, "w") as f:
            f.write(self.render_config())
        for rel, content in self.extra_files.items():
            path = os.path.join(self.dir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb" if isinstance(content, bytes) else "w") as f:
                f.write(content)
        self._out = open(self.access_log_path, "wb")
        self._err = open(self.error_log_path, "wb")
        self.proc = subprocess.Popen([LUNAGATE_BIN, "run", "-c", self.config_path], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)

        def ready():
            if self.proc.poll() is not None:
                err = self.stderr_text()[-4000:]
                kind = PortTaken if "Address already in use" in err else RuntimeError
                raise kind(f"lunagate exited with {self.proc.returncode} during startup:\n{err}")
            if not port_accepts(self.port):
                return False
            if not has_admin:
                return True
            try:
                return http(self.admin_port, "GET", "/ready", timeout=1.0)[0] == 200
            except (OSError, httpclient.HTTPException):
                return False
        try:
            wait_until(ready, self.ready_timeout, what=f"lunagate on :{self.port} to be ready")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- stderr ---\n{self.stderr_text()[-4000:]}") from None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Exit code, or None if still running after `timeout` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        _stop_process(self.proc, term_wait=10)

    def close(self):
        self.stop()
        for f in (self._out, self._err):
            if f:
                f.close()
        self._out = self._err = None
        if self.dir and not KEEP_TMP:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- logs -----------------------------------------------------------------------------
    def stderr_text(self):
        try:
            with open(self.error_log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def access_log_text(self):
        try:
            with open(self.access_log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def access_log_lines(self, min_lines=0, timeout=3.0):
        """Access log lines parsed as JSON (other lines skipped). The log is asynchronous: with
        min_lines, waits (bounded) until at least that many lines are there."""
        def parsed():
            out = []
            for line in self.access_log_text().splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
            return out
        if min_lines <= 0:
            return parsed()
        try:
            return wait_until(lambda: (lambda l: l if len(l) >= min_lines else None)(parsed()), timeout,
                              what=f"{min_lines} access log lines")
        except TimeoutError:
            return parsed()


def run_cli(args, timeout=30.0, cwd=None, binary=None):
    """Runs `lunagate ARGS...` -> (returncode, stdout text, stderr text). Killed after `timeout` s."""
    proc = subprocess.Popen([binary or LUNAGATE_BIN, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise TimeoutError(f"lunagate {' '.join(args)} did not finish within {timeout} s")
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# raw HTTP

Response = collections.namedtuple("Response", "status headers body")
Response.__doc__ = "status: int, headers: [(name, value)] as received, body: bytes (de-chunked)"


def header(headers, name, default=None):
    """First value of `name` (case-insensitive) in a [(name, value)] list."""
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return default


def header_all(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def _decode_chunked(data, pos):
    """-> (body, position after the trailer section or None if incomplete)."""
    body = b""
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return body, None
        size_text = data[pos:nl].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return body, None
        pos = nl + 1
        if size == 0:
            while True:  # trailer section up to an empty line
                nl = data.find(b"\n", pos)
                if nl < 0:
                    return body, None
                line = data[pos:nl].rstrip(b"\r")
                pos = nl + 1
                if not line:
                    return body, pos
        if len(data) < pos + size:
            return body + data[pos:], None
        body += data[pos:pos + size]
        pos += size
        if data[pos:pos + 2] == b"\r\n":
            pos += 2
        elif data[pos:pos + 1] == b"\n":
            pos += 1
        elif len(data) - pos < 2:
            return body, None


def parse_responses_detail(data, request_method=None):
    """Parses a stream of HTTP/1.x responses. -> (responses, complete, rest)
    complete is False when the last response is cut short or the stream holds something that is
    not a response (rest starts there). Handles 1xx interim responses, 204/304, Content-Length,
    chunked and read-until-close bodies; a 101 ends the HTTP part (the rest is its body)."""
    out, pos = [], 0
    while pos < len(data):
        if not data.startswith(b"HTTP/", pos):
            return out, False, data[pos:]
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return out, False, data[pos:]
        lines = data[pos:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return out, False, data[pos:]
        headers = []
        for line in lines[1:]:
            if ":" in line:
                n, v = line.split(":", 1)
                headers.append((n.strip(), v.strip()))
        pos = end + 4
        if status == 101:
            out.append(Response(status, headers, data[pos:]))
            return out, True, b""
        if 100 <= status < 200:
            out.append(Response(status, headers, b""))
            continue
        te, cl = header(headers, "transfer-encoding", ""), header(headers, "content-length")
        if status in (204, 304) or request_method == "HEAD":
            body = b""
        elif "chunked" in te.lower():
            body, after = _decode_chunked(data, pos)
            if after is None:
                out.append(Response(status, headers, body))
                return out, False, b""
            pos = after
        elif cl is not None:
            try:
                n = int(cl.split(",")[0].strip())
            except ValueError:
                n = len(data) - pos
            body = data[pos:pos + n]
            if len(body) < n:
                out.append(Response(status, headers, body))
                return out, False, b""
            pos += n
        else:  # delimited by the close
            body, pos = data[pos:], len(data)
        out.append(Response(status, headers, body))
    return out, True, b""


def parse_responses(data, request_method=None):
    """[(status, [(name, value)], body)] for a stream of responses (tolerant; see _detail)."""
    return parse_responses_detail(data, request_method)[0]


def final_statuses(responses):
    return [r.status for r in responses if r.status >= 200 or r.status == 101]


class RawResult:
    """What one raw exchange produced: data (all bytes received, interim included), closed (the
    server closed: FIN or RST), reset (RST seen), interim (bytes received after the head in
    split-expect mode, before the body was sent), elapsed (s until the last byte), send_error."""

    def __init__(self):
        self.data = b""
        self.closed = False
        self.reset = False
        self.interim = b""
        self.elapsed = None
        self.send_error = None

    @property
    def responses(self):
        return parse_responses(self.data)


def _complete_final(data):
    responses, complete, rest = parse_responses_detail(data)
    return complete and not rest and any(r.status >= 200 for r in responses)


def raw_exchange(port, data, timeout=2.0, read_until_close=True, split_expect=False, expect_wait=1.0,
                 settle=None, max_total=60.0):
    """Sends `data` on a fresh connection and reads until the server closes or `timeout` s of
    silence (never longer than max_total s in all).
    read_until_close=False: stop as soon as a complete final response has arrived.
    settle: once the bytes end with a complete final response, a shorter silence ends the read.
    split_expect: send the head, wait <= expect_wait s for an interim response, then the body."""
    res = RawResult()
    start = time.monotonic()
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    try:
        try:
            if split_expect and b"\r\n\r\n" in data:
                head, body = data.split(b"\r\n\r\n", 1)
                s.sendall(head + b"\r\n\r\n")
                s.settimeout(expect_wait)
                try:
                    res.interim = s.recv(65536)
                    if not res.interim:
                        res.closed = True
                except socket.timeout:
                    pass
                res.data = res.interim
                s.settimeout(timeout)
                if not res.closed:
                    s.sendall(body)
            else:
                s.sendall(data)  # bounded by the socket timeout
        except (socket.timeout, OSError) as e:
            res.send_error = repr(e)  # the server may have answered and closed early: read on
        deadline = start + max_total
        while not res.closed and time.monotonic() < deadline:
            quiet = timeout
            if settle is not None and _complete_final(res.data):
                quiet = min(timeout, settle)
            s.settimeout(max(0.01, min(quiet, deadline - time.monotonic())))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                res.closed = res.reset = True
                break
            except OSError:
                res.closed = True
                break
            if not chunk:
                res.closed = True
                break
            res.data += chunk
            res.elapsed = time.monotonic() - start
            if not read_until_close and _complete_final(res.data):
                break
    finally:
        s.close()
    return res


def raw_request(port, data, timeout=2.0, read_until_close=True):
    """-> (bytes received, closed) for `data` sent on a fresh connection; reads until the server
    closes or `timeout` s of silence (see raw_exchange for more options)."""
    res = raw_exchange(port, data, timeout=timeout, read_until_close=read_until_close)
    return res.data, res.closed


# --------------------------------------------------------------------------------------------
# recorded requests (what lg-backend --record saw)

RecordedRequest = collections.namedtuple(
    "RecordedRequest", "method target version headers head body complete head_complete")
RecordedRequest.__doc__ = """One request as an upstream received it. head: the raw bytes of the
request line and field lines (without the final empty line); headers: [(name, value)] split
leniently (latin-1); complete: False when the stream ended inside it (head_complete: the head
itself was complete, only the body was cut short) or it is a leftover fragment."""


def parse_requests(data):
    """Splits a raw byte stream that one upstream connection received into requests.
    Lenient on purpose (it must describe whatever the gateway sent): the head ends at the first
    CRLFCRLF (or LFLF if there is none); framing is chunked if any Transfer-Encoding names
    chunked, else Content-Length, else no body. Leftover bytes become an incomplete request."""
    out, pos = [], 0
    while pos < len(data):
        while data.startswith(b"\r\n", pos):
            pos += 2
        if pos >= len(data):
            break
        end, sep = data.find(b"\r\n\r\n", pos), 4
        if end < 0:
            end, sep = data.find(b"\n\n", pos), 2
        if end < 0:
            out.append(_recorded(data[pos:], b"", False, False))
            break
        head = data[pos:end]
        pos = end + sep
        req = _recorded(head, b"", True, True)
        te, cl = header(req.headers, "transfer-encoding", ""), header(req.headers, "content-length")
        body, complete = b"", True
        if "chunked" in te.lower():
            body, after = _decode_chunked(data, pos)
            if after is None:
                complete, pos = False, len(data)
            else:
                pos = after
        elif cl is not None:
            try:
                n = int(cl.split(",")[0].strip())
            except ValueError:
                n = 0
            body = data[pos:pos + n]
            complete = len(body) == n
            pos += len(body)
        out.append(req._replace(body=body, complete=complete))
    return out


def _recorded(head, body, complete, head_complete):
    lines = re.split(rb"\r?\n", head)
    parts = lines[0].decode("latin-1").split(" ")
    method = parts[0] if parts else ""
    target = parts[1] if len(parts) > 1 else ""
    version = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        text = line.decode("latin-1")
        if ":" in text:
            n, v = text.split(":", 1)
            headers.append((n, v.strip(" \t")))
        else:
            headers.append((text, None))
    return RecordedRequest(method, target, version, headers, head, body, complete, head_complete)


# --------------------------------------------------------------------------------------------
# ordinary HTTP

def http(port, method, path, headers=None, body=None, timeout=5.0):
    """One request with http.client -> (status, {lower-case name: value}, body bytes).
    Repeated response fields are joined with ', '."""
    conn = httpclient.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        out = {}
        for n, v in resp.getheaders():
            n = n.lower()
            out[n] = f"{out[n]}, {v}" if n in out else v
        return resp.status, out, data
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# helpers added for the functional suites (test_proxy_http.py, test_limits.py, ...)

class RawConn:
    """A persistent raw client connection: send bytes, read complete responses one at a time.

        with RawConn(gw.port) as c:
            c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            r = c.read_response()          # Response(status, headers, body)
    Bytes after a response stay buffered for the next read_response(). Every read is bounded."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("RawConn: deadline passed")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk
        return chunk

    def read_response(self, timeout=None, method=None, allow_interim=False):
        """The next final response (1xx skipped unless allow_interim; a 101 is returned with an
        empty body). A close-delimited body is read until the server closes. Raises
        socket.timeout (nothing complete in time) or ConnectionError (closed before complete)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            got = _first_response(self.buf, method, self.closed)
            if got is not None:
                resp, used = got
                self.buf = self.buf[used:]
                if 100 <= resp.status < 200 and resp.status != 101 and not allow_interim:
                    continue
                return resp
            if self.closed:
                raise ConnectionError(f"connection closed before a complete response; buffered {self.buf[:300]!r}")
            self._recv(deadline)

    def read_until_close(self, timeout=None):
        """Everything until the server closes (bounded); returns the new bytes incl. buffered."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            try:
                self._recv(deadline)
            except socket.timeout:
                break
        data, self.buf = self.buf, b""
        return data

    def is_closed_by_peer(self, wait=1.0):
        """True if the server closes (EOF/RST) within `wait` s; False if the connection stays
        open that long. Bytes that arrive meanwhile are kept in self.buf."""
        deadline = time.monotonic() + wait
        while not self.closed:
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                return False
            if chunk:
                continue
        return True


def _first_response(buf, method, closed):
    """-> (Response, bytes used) for the first complete response in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    try:
        st = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"not an HTTP response: {buf[:200]!r}")
    hdrs = []
    for line in lines[1:]:
        if ":" in line:
            n, v = line.split(":", 1)
            hdrs.append((n.strip(), v.strip()))
    pos = end + 4
    if (100 <= st < 200) or st in (204, 304) or method == "HEAD":
        return Response(st, hdrs, b""), pos
    te = (header(hdrs, "transfer-encoding") or "").lower()
    cl = header(hdrs, "content-length")
    if "chunked" in te:
        body, after = _decode_chunked(buf, pos)
        return None if after is None else (Response(st, hdrs, body), after)
    if cl is not None:
        n = int(cl.split(",")[0].strip())
        return None if len(buf) < pos + n else (Response(st, hdrs, buf[pos:pos + n]), pos + n)
    if closed:
        return Response(st, hdrs, buf[pos:]), len(buf)
    return None


def echo_json(body):
    """Parses an lg-backend /echo body: dict with headers as [(name, value)]."""
    obj = json.loads(body)
    obj["headers"] = [tuple(h) for h in obj["headers"]]
    return obj


def echo_header(echo, name):
    return header(echo["headers"], name)


def echo_header_all(echo, name):
    return header_all(echo["headers"], name)


_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric(samples, name, **labels):
    """Sum of the samples called `name` whose labels include `labels` (0.0 if none)."""
    total = 0.0
    for n, l, v in samples:
        if n == name and all(l.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


def get_metrics(admin_port):
    status, _, body = http(admin_port, "GET", "/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}")
    return parse_metrics(body.decode("utf-8", "replace"))


def rss_kib(pid):
    """VmRSS of a process in KiB (None if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class ScriptedUpstream:
    """A tiny threaded upstream on 127.0.0.1 that answers each request with canned raw bytes,
    for upstream misbehaviour lg-backend can't produce:

        with ScriptedUpstream({"/smuggle": b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nokEXTRA"}) as up:
            up.port, up.requests (list of (method, target) seen), up.connections (count)

    script: {path: bytes or callable(method, target, headers) -> bytes}; a value ending the
    connection is marked with close_after={path,...}. Unknown paths get a 200 "default".
    Request bodies are read (and discarded) first, except for paths in early={...}: those are
    answered as soon as the head is in, and the connection is then closed."""

    def __init__(self, script, close_after=(), early=()):
        self.script = script
        self.close_after = set(close_after)
        self.early = set(early)  # paths answered right after the head, body unread, then closed
        self.requests = []
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass
        self._thread.join(timeout=2)
        return False

    def _accept(self):
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        conn.settimeout(10)
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
                cl = int(header(headers, "content-length") or 0)
                if target.split("?", 1)[0] in self.early:
                    with self._lock:
                        self.requests.append((method, target))
                    conn.sendall(self.script[target.split("?", 1)[0]])
                    try:
                        conn.shutdown(socket.SHUT_WR)
                        conn.settimeout(1.0)
                        while conn.recv(65536):  # drain a little so the close is a FIN, not a RST
                            pass
                    except OSError:
                        pass
                    return
                if "chunked" in (header(headers, "transfer-encoding") or "").lower():
                    while True:
                        _, after = _decode_chunked(buf, 0)
                        if after is not None:
                            buf = buf[after:]
                            break
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                else:
                    while len(buf) < cl:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    buf = buf[cl:]
                with self._lock:
                    self.requests.append((method, target))
                path = target.split("?", 1)[0]
                answer = self.script.get(path, b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndefault")
                if callable(answer):
                    answer = answer(method, target, headers)
                conn.sendall(answer)
                if path in self.close_after:
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# pieces shared by the functional suites (request builders, config head, fixtures, checks)

# The first lines of most test configs: one worker, the listener on {PORT}, the admin on
# {ADMIN_PORT}, access log to stdout. Append `limits:`, `upstreams:`, `routes:` to it.
CONFIG_HEAD = """\
workers: 1
listen: [ { address: "127.0.0.1:{PORT}" } ]
admin: { address: "127.0.0.1:{ADMIN_PORT}" }
log: { access: stdout, error: stderr, level: info }
"""


def host_route(name, scripts, upstream="app"):
    """YAML of a route for host `<name>.test` (any path) to `upstream` with `scripts` (a YAML
    flow list, e.g. "[ a, { name: b, config: {...} } ]"), for a `routes:` list."""
    return (f"  - name: {name}\n"
            f"    match: {{ host: [ {name}.test ], path: \"/*\" }}\n"
            f"    upstream: {upstream}\n"
            f"    scripts: {scripts}\n")


SCRIPTS_HEAD = """\
scripts:
  dir: scripts
  watch: false
  budget: { cpu: 50ms, memory: 32m }
"""


def req(method, path, extra=b"", body=b"", host="gw.test", version=b"HTTP/1.1"):
    """Raw request bytes: `METHOD path version`, Host, the `extra` field lines (each ending in
    CRLF), the empty line, then `body` as is (no framing is added)."""
    return (method.encode() + b" " + path.encode() + b" " + version + b"\r\nHost: " + host.encode() + b"\r\n"
            + extra + b"\r\n" + body)


def get(path, host="gw.test", extra=b"", version=b"HTTP/1.1"):
    """Raw bytes of a bodiless GET (see req)."""
    return req("GET", path, extra=extra, host=host, version=version)


class AppGatewayMixin:
    """Mix into a unittest.TestCase (before it: `class T(lgtest.AppGatewayMixin, unittest.TestCase)`)
    for one gateway shared by every test of the class, started from the class attribute CONFIG
    in front of one lg-backend "app" (its port is {APP_PORT}): cls.app, cls.gw. APP_RECORD (default
    True) gives the backend a temp --record dir. Both are stopped after the class (also when
    setUpClass fails part-way). setUp checks that the gateway is still alive."""

    CONFIG = None
    APP_RECORD = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.app = cls.enterClassContext(Backend("app", record_dir=True if cls.APP_RECORD else None))
        cls.gw = cls.enterClassContext(Gateway(cls.CONFIG, values={"APP_PORT": cls.app.port}))

    def setUp(self):
        super().setUp()
        self.assertTrue(self.gw.alive(), "gateway died:\n" + self.gw.stderr_text()[-2000:])


def assert_no_connection_leak(test, admin_port, timeout=5.0):
    """Fails `test` unless gateway_active_connections (admin /metrics) drops to 0 within
    `timeout` s: meant for a last test, once every connection the others opened is closed."""
    def active():
        return metric(get_metrics(admin_port), "gateway_active_connections")
    try:
        wait_until(lambda: active() == 0, timeout, what="gateway_active_connections == 0")
    except TimeoutError:
        test.fail(f"gateway_active_connections is {active()} with no client connected (leak?)")


class InThread:
    """Runs fn(*args, **kwargs) in a thread, started at once (a request kept in flight while the
    test does something else):  t = InThread(http, port, "GET", "/delay?ms=1500", timeout=6)
    .join(timeout), .is_alive(); afterwards .result (fn's return value, None if it raised),
    .error (the exception it raised, else None) and .value() (the result, or that exception
    raised again)."""

    def __init__(self, fn, *args, daemon=False, **kwargs):
        self.result = None
        self.error = None

        def run():
            try:
                self.result = fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                self.error = e
        self._thread = threading.Thread(target=run, daemon=daemon)
        self._thread.start()

    def join(self, timeout=None):
        self._thread.join(timeout)

    def is_alive(self):
        return self._thread.is_alive()

    def value(self):
        if self.error is not None:
            raise self.error
        return self.result
