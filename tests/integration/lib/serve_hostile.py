#!/usr/bin/python3
# serve_hostile.py - raw-socket clients for serve_hostile.sh.
#
#   serve_hostile.py raw HOST:PORT
#       sends each hostile request of REQUESTS on its own connection and
#       prints, per request, its name and the status line the server
#       answered ("closed" when it closed without one, "timeout" when it
#       neither answered nor closed within 5 s)
#   serve_hostile.py stall HOST:PORT PATH READY_FILE HOLD_S
#       asks for PATH and never reads the answer (a receive buffer of 4 KiB),
#       writes READY_FILE, and closes after HOLD_S
#   serve_hostile.py idle HOST:PORT N READY_FILE HOLD_S
#       opens N connections that send nothing, writes READY_FILE (how many
#       connected), holds them up to HOLD_S seconds and prints
#       "closed C of N after S s" (C: closed by the server)
import os
import select
import socket
import sys
import time

LONG_NAME = "a" * 300
REQUESTS = [
    ("dotdot", b"GET /v2/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("dotdot-in-name", b"GET /v2/fixtures/../../secret/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("encoded-dotdot", b"GET /v2/%2e%2e/%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("encoded-dotdot-ref",
     b"GET /v2/fixtures/multilayer/manifests/..%2f..%2f..%2fsecret.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("encoded-slash", b"GET /v2/fixtures%2fmultilayer/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("nul", b"GET /v2/fixtures/multilayer%00/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("backslash", b"GET /v2/fixtures\\..\\..\\secret/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("nonhex-digest", b"GET /v2/fixtures/multilayer/blobs/sha256:" + b"g" * 64 +
     b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("short-digest", b"GET /v2/fixtures/multilayer/blobs/sha256:" + b"a" * 63 +
     b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("digest-dotdot", b"GET /v2/fixtures/multilayer/blobs/sha256:../../../secret.txt"
     b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("long-name", ("GET /v2/%s/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n" % LONG_NAME).encode()),
    ("huge-url", b"GET /v2/" + b"a/" * 50000 + b"manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("huge-header", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n"),
    ("many-headers", b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n"),
    ("not-http", b"HELLO THERE\r\n\r\n"),
    ("bad-method", b"BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("absolute-form", b"GET http://evil/v2/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("post-big-body", b"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
     + b"z" * 65536),
    ("chunked-put", b"PUT /v2/x/manifests/v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffff\r\n" + b"z" * 1000),
]


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def status_of(addr, data):
    s = connect(addr)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may close before it all went
    buf = b""
    deadline = time.time() + 5
    try:
        while b"\r\n" not in buf and time.time() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        return "timeout"
    except OSError:
        return "closed"
    finally:
        s.close()
    if b"\r\n" not in buf:
        return "closed" if buf == b"" else "garbled"
    return buf.split(b"\r\n", 1)[0].decode("latin-1")


def cmd_raw(addr):
    for name, data in REQUESTS:
        print(f"{name} {status_of(addr, data)}", flush=True)


def cmd_idle(addr, n, ready_file, hold):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(addr))
        except OSError:
            break
    with open(ready_file + ".tmp", "w") as f:
        f.write(str(len(socks)))
    os.rename(ready_file + ".tmp", ready_file)
    start = time.time()
    open_socks = set(socks)
    closed = 0
    while open_socks and time.time() - start < hold:
        r, _, _ = select.select(list(open_socks), [], [], 0.2)
        for s in r:
            try:
                data = s.recv(1024)
            except OSError:
                data = b""
            if not data:  # the server closed it (a 408 line would also end in EOF)
                closed += 1
                open_socks.discard(s)
                s.close()
    for s in open_socks:
        s.close()
    print(f"closed {closed} of {len(socks)} after {time.time() - start:.1f} s", flush=True)


def cmd_stall(addr, path, ready_file, hold):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    with open(ready_file + ".tmp", "w") as f:
        f.write("sent")
    os.rename(ready_file + ".tmp", ready_file)
    time.sleep(hold)
    s.close()


def main(argv):
    if len(argv) == 2 and argv[0] == "raw":
        cmd_raw(argv[1])
        return 0
    if len(argv) == 5 and argv[0] == "stall":
        cmd_stall(argv[1], argv[2], argv[3], float(argv[4]))
        return 0
    if len(argv) == 5 and argv[0] == "idle":
        cmd_idle(argv[1], int(argv[2]), argv[3], float(argv[4]))
        return 0
    print("usage: serve_hostile.py raw ADDR | idle ADDR N READY_FILE HOLD_S", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
