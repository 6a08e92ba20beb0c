#!/usr/bin/env python3
"""Idle keep-alive client for `bench/run.sh memory`.

Opens COUNT connections to 127.0.0.1:PORT, does one complete `GET /` on each (keep-alive), then
leaves them all open and idle. Requests go out in waves of WAVE connections, so the gateway never
has more than WAVE requests (and upstream connections) in flight. Prints `ready OPEN` once every
connection has its response, then holds them until SIGTERM, stdin EOF, or HOLD seconds (bounded).
Exit status 1 if any connection failed.
"""
import resource
import signal
import socket
import sys
import time


def main() -> int:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    wave = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))

    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle-clients\r\n\r\n"
    conns, failed = [], 0
    deadline = time.monotonic() + 120  # the whole opening phase is bounded
    for start in range(0, count, wave):
        batch = []
        for _ in range(min(wave, count - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(req)
                batch.append(s)
            except OSError as e:
                failed += 1
                print(f"connect/send failed: {e}", file=sys.stderr)
                s.close()
        for s in batch:  # read one response per connection (Content-Length framed)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed before the response head")
                    buf += chunk
                head, body = buf.split(b"\r\n\r\n", 1)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise OSError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                clen = None
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        clen = int(v.strip())
                if clen is None:
                    raise OSError("no Content-Length")
                while len(body) < clen:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed inside the body")
                    body += chunk
                conns.append(s)
            except OSError as e:
                failed += 1
                print(f"response failed: {e}", file=sys.stderr)
                s.close()
        if time.monotonic() > deadline:
            print("opening phase took over 120 s, giving up", file=sys.stderr)
            break

    print(f"ready {len(conns)} failed {failed}", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    end = time.monotonic() + hold
    while not stop["now"] and time.monotonic() < end:
        time.sleep(0.2)
    # before closing: how many connections did the server keep open for us?
    alive = 0
    for s in conns:
        s.setblocking(False)
        try:
            alive += 1 if s.recv(1) else 0  # data would be unexpected; count as open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print(f"still_open {alive}", flush=True)
    for s in conns:
        s.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
