#!/usr/bin/python3
"""faultproxy.py - a loopback HTTP/1.1 proxy in front of a real registry that
injects the faults a real server will not produce on demand.

usage: faultproxy.py --upstream HOST:PORT --port-file FILE [--log FILE]
                     [--rule 'REGEX|ACTION|COUNT[|OPTIONS]' ...] [--rules-file FILE]
                     [--cdn-origin HOST:PORT] [--rewrite-realm URL]
                     [--ratelimit N [--ratelimit-limit L] [--ratelimit-window S]
                      [--ratelimit-retry-after S]]

Each request (one per connection: the proxy answers with Connection: close)
is matched against the rules in order; the first rule whose REGEX matches
the request path and that has been applied fewer than COUNT times applies.
OPTIONS (optional, comma-separated):
  per=path         count COUNT separately for each distinct METHOD PATH, so
                   'the first N requests' means the first N of every blob
  method=M         match only requests with method M (GET, HEAD, PATCH, PUT, ...)
  after=N          let the first N matching requests pass before the rule
                   applies (counted like COUNT)
Actions (several may be combined with commas, e.g. cut=5000,full200):
  cut=K            forward, then close the connection after K body bytes
  status=N         answer status N without forwarding (N=429 may add
                   ,retry-after=S to send a Retry-After header); no body for HEAD
  redirect[=TTL]   ask upstream; if it would serve the blob, answer 307 to the
                   CDN (--cdn-origin) under a URL signed for TTL seconds
                   (default 300; 0 or less: already expired), else pass its
                   answer (a 401 stays a 401)
  corrupt=K        forward, flipping the body byte at offset K
  stall=S          forward the headers, then send nothing for S seconds
  full200          drop the client's Range header (a 200 answer to a Range request)
  badlength=D      forward with Content-Length increased by D and close early
  slow=BPS         forward the body at BPS bytes per second, in pieces of
                   slowchunk=N bytes (default 1024)
  cutup=K          forward the request with only the first K bytes of its
                   body, then close both connections (the registry gets a
                   body cut short, as when a client's connection drops)
  slowup=BPS       read the request body from the client at BPS bytes per second
  relloc           make the answer's Location relative (scheme and host dropped)
  ocisubject       a manifest PUT whose body names a subject is answered with
                   OCI-Subject: <its digest> (a registry that keeps referrers
                   itself; distribution 2.8 does not)
  dropup=K         read K bytes of the request body from the client, then
                   close its connection; the registry never sees the request
  pass             forward unchanged
Request bodies (Content-Length, or chunked) are forwarded as they arrive.
The log gets one line per request: method, path, Range and Content-Range
headers, action.
--rules-file FILE: more rules, one a line, after the --rule ones (blank
lines and lines starting with # are skipped). On SIGHUP the file is read
again, its rules replace the previous ones with their counts at zero, and
FILE.loaded is written (atomically) with the number of loads so far: a test
changes the faults between runs without restarting the proxy.
The CDN (--cdn-origin ORIGIN): a second server on 127.0.0.2 (another host
to the client, as a storage CDN is), port in PORT_FILE.cdn. It serves
/cdn/v2/REPO/blobs/DIGEST?expires=T&sig=S by fetching that blob from ORIGIN
(a registry that needs no auth: the lab's plain instance), Range included;
an expired URL gets S3's answer, 403 with <Code>AccessDenied</Code>
<Message>Request has expired</Message>, a bad signature 403
SignatureDoesNotMatch. It logs "CDN METHOD PATH range=R authorization=yes|no
expired=yes|no status=N" per request (the query, which holds the signature,
is left out).
--rewrite-realm URL: the realm of upstream WWW-Authenticate challenges is
replaced by URL (to send clients to another token service).
--ratelimit N: Docker Hub's pull limit, N pulls left (of --ratelimit-limit L,
default 100). Every answer to a manifest request carries "RateLimit-Limit:
L;w=W" and "RateLimit-Remaining: R;w=W"; each GET of a manifest takes one; with none left it is answered 429
TOOMANYREQUESTS (with Retry-After when --ratelimit-retry-after is given)
and logged "ratelimit refused". HEADs and blobs are not counted.
--ratelimit-quiet-head: HEAD answers say nothing of the limit (a client
then meets the limit as a 429).
Binds 127.0.0.1 (and 127.0.0.2 for the CDN) only; stops on SIGTERM.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time

LOCK = threading.Lock()


class Rule:
    def __init__(self, text):
        parts = text.split("|")
        if len(parts) not in (3, 4):
            raise SystemExit("faultproxy: rule must be REGEX|ACTION|COUNT[|OPTIONS]: %r" % text)
        self.regex = re.compile(parts[0])
        self.count = int(parts[2])
        self.used = 0
        self.used_per = {}
        self.action = {}
        for item in parts[1].split(","):
            k, _, v = item.partition("=")
            self.action[k] = v
        self.per_path = False
        self.method = None
        self.after = 0
        self.seen = 0
        self.seen_per = {}
        for item in (parts[3].split(",") if len(parts) == 4 and parts[3] else []):
            k, _, v = item.partition("=")
            if k == "per" and v == "path":
                self.per_path = True
            elif k == "method":
                self.method = v.upper()
            elif k == "after":
                self.after = int(v)
            else:
                raise SystemExit("faultproxy: unknown rule option %r in %r" % (item, text))

    def take(self, method, path):
        """True (and counted) when this rule applies to the request."""
        if self.method and method != self.method:
            return False
        if not self.regex.search(path):
            return False
        if self.after:
            key = method + " " + path if self.per_path else ""
            if self.seen_per.get(key, 0) < self.after:
                self.seen_per[key] = self.seen_per.get(key, 0) + 1
                return False
        if self.per_path:
            key = method + " " + path
            if self.used_per.get(key, 0) >= self.count:
                return False
            self.used_per[key] = self.used_per.get(key, 0) + 1
            self.used += 1
            return True
        if self.used >= self.count:
            return False
        self.used += 1
        return True


RULES = []
LOG = None
UPSTREAM = None
CDN = {"origin": None, "port": 0, "secret": os.urandom(16)}
REALM = None
RATE = {"limit": None, "left": 0, "window": 21600, "retry_after": None, "quiet_head": False}


def log(line):
    with LOCK:
        if LOG:
            LOG.write(line + "\n")
            LOG.flush()


def pick_rule(method, path):
    with LOCK:
        for r in RULES:
            if r.take(method, path):
                return r.action
    return {"pass": ""}


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > 1 << 20:
            return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def forward_body(client, up, rest, length, chunked, limit, rate=None):
    """The rest of a request body, client -> upstream (at rate bytes a second
    when given). False when it was cut at limit bytes (the caller closes both
    ends)."""
    sent = len(rest)
    piece = 16384 if rate else 65536
    if limit is not None and sent >= limit:
        return False
    if chunked:  # forward until the last chunk has gone by
        tail = rest[-5:]
        while not tail.endswith(b"0\r\n\r\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            if limit is not None and sent + len(chunk) >= limit:
                up.sendall(chunk[: limit - sent])
                return False
            up.sendall(chunk)
            sent += len(chunk)
            tail = (tail + chunk)[-5:]
        return True
    while sent < length:
        chunk = client.recv(min(piece, length - sent))
        if not chunk:
            break
        if rate:
            time.sleep(len(chunk) / rate)
        if limit is not None and sent + len(chunk) >= limit:
            up.sendall(chunk[: limit - sent])
            return False
        up.sendall(chunk)
        sent += len(chunk)
    return True


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        head, rest = read_head(client)
        if head is None:
            return
        lines = head.split("\r\n")
        method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers = [l for l in lines[1:] if l]
        rng = next((l.split(":", 1)[1].strip() for l in headers if l.lower().startswith("range:")), "-")
        crng = next((l.split(":", 1)[1].strip() for l in headers if l.lower().startswith("content-range:")), None)
        action = pick_rule(method, path)
        log("%s %s range=%s%s action=%s" % (method, path, rng, " content-range=" + crng if crng else "",
                                           ",".join("%s=%s" % kv if kv[1] else kv[0] for kv in action.items())))
        rate_headers = ""
        if RATE["limit"] is not None and "/manifests/" in path and not (RATE["quiet_head"] and method == "HEAD"):
            with LOCK:
                refused = method == "GET" and RATE["left"] <= 0
                if method == "GET" and not refused:
                    RATE["left"] -= 1
                left = RATE["left"]
            rate_headers = "RateLimit-Limit: %d;w=%d\r\nRateLimit-Remaining: %d;w=%d\r\n" % (
                RATE["limit"], RATE["window"], left, RATE["window"])
            if refused:
                log("ratelimit refused %s %s" % (method, path))
                extra = rate_headers
                if RATE["retry_after"] is not None:
                    extra += "Retry-After: %d\r\n" % RATE["retry_after"]
                body = (b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your '
                        b'pull rate limit. You may increase the limit by authenticating and '
                        b'upgrading: https://www.docker.com/increase-rate-limits"}]}')
                client.sendall(("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                                "Content-Length: %d\r\n%sConnection: close\r\n\r\n" % (len(body), extra)).encode()
                               + (body if method != "HEAD" else b""))
                return
            log("ratelimit %s %s remaining=%d" % (method, path, left))
        length = next((int(l.split(":", 1)[1]) for l in headers if l.lower().startswith("content-length:")), 0)
        chunked = any(l.lower().startswith("transfer-encoding:") and "chunked" in l.lower() for l in headers)
        if "dropup" in action:
            want = min(int(action["dropup"]), length)
            got = len(rest)
            while got < want:
                chunk = client.recv(min(65536, want - got))
                if not chunk:
                    break
                got += len(chunk)
            log("  dropped the request after %d body bytes (never forwarded)" % got)
            client.shutdown(socket.SHUT_RDWR)
            return
        if "status" in action:
            status = int(action["status"])
            extra = "Retry-After: %s\r\n" % action["retry-after"] if action.get("retry-after") else ""
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by faultproxy"}]}'
            client.sendall(("HTTP/1.1 %d Injected\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\n%s%sConnection: close\r\n\r\n" % (status, len(body), extra, rate_headers)).encode()
                           + (body if method != "HEAD" else b""))
            return
        subject = None
        if "ocisubject" in action and not chunked and length <= 1 << 20:
            # a registry that keeps referrers: the subject of a manifest PUT
            # is read from its body and named in the answer's OCI-Subject
            while len(rest) < length:
                chunk = client.recv(length - len(rest))
                if not chunk:
                    break
                rest += chunk
            try:
                subject = json.loads(rest.decode()).get("subject", {}).get("digest")
            except (ValueError, AttributeError):
                subject = None
        keep = [l for l in headers if not l.lower().startswith(("connection:", "proxy-connection:", "keep-alive:"))]
        if "full200" in action:
            keep = [l for l in keep if not l.lower().startswith("range:")]
        up = socket.create_connection(UPSTREAM)
        limit_up = int(action["cutup"]) if "cutup" in action else None
        first = rest if limit_up is None else rest[:limit_up]
        up.sendall(("%s\r\n%s\r\nConnection: close\r\n\r\n" % (lines[0], "\r\n".join(keep))).encode("latin-1") + first)
        rate_up = float(action["slowup"]) if "slowup" in action else None
        if not forward_body(client, up, rest, length, chunked, limit_up, rate_up):
            log("  cut the request body after %d bytes" % limit_up)
            client.shutdown(socket.SHUT_RDWR)
            up.close()
            return
        rhead, body_start = read_head(up)
        if rhead is None:
            up.close()
            return
        rlines = rhead.split("\r\n")
        rh = [l for l in rlines[1:] if not l.lower().startswith(("connection:", "keep-alive:"))]
        if "relloc" in action:
            rh = [re.sub(r"^(location:\s*)https?://[^/]+", r"\1", l, flags=re.I) for l in rh]
        if REALM:
            rh = [re.sub(r'realm="[^"]*"', 'realm="%s"' % REALM, l) if l.lower().startswith("www-authenticate:") else l
                  for l in rh]
        if rate_headers:
            rh += [l for l in rate_headers.split("\r\n") if l]
        code = int(rlines[0].split(" ")[1]) if len(rlines[0].split(" ")) > 1 else 0
        if subject and method == "PUT" and code == 201:
            rh.append("OCI-Subject: %s" % subject)
            log("  answered OCI-Subject: %s" % subject)
        if "redirect" in action and method == "GET" and code in (200, 206):
            ttl = int(action["redirect"] or 300)
            expires = int(time.time()) + ttl
            cdn_path = "/cdn" + path.split("?")[0]
            sig = hmac.new(CDN["secret"], ("%s %d" % (cdn_path, expires)).encode(), hashlib.sha256).hexdigest()
            loc = "http://127.0.0.2:%d%s?expires=%d&sig=%s" % (CDN["port"], cdn_path, expires, sig)
            log("  redirect to CDN, %s" % ("expired" if ttl <= 0 else "valid %d s" % ttl))
            client.sendall(("HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n"
                            "Docker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n" % loc).encode())
            up.close()
            return
        if "badlength" in action:
            d = int(action["badlength"])
            rh = [("Content-Length: %d" % (int(l.split(":", 1)[1]) + d)) if l.lower().startswith("content-length:") else l for l in rh]
        client.sendall(("%s\r\n%s\r\nConnection: close\r\n\r\n" % (rlines[0], "\r\n".join(rh))).encode("latin-1"))
        if "stall" in action:
            time.sleep(float(action["stall"]))
        limit = int(action["cut"]) if "cut" in action else None
        corrupt = int(action["corrupt"]) if "corrupt" in action else None
        rate = float(action["slow"]) if "slow" in action else None
        piece = int(action.get("slowchunk") or 1024)
        sent = 0
        chunk = body_start
        try:
            while True:
                if not chunk:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                if corrupt is not None and sent <= corrupt < sent + len(chunk):
                    i = corrupt - sent
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                if limit is not None and sent + len(chunk) >= limit:
                    client.sendall(chunk[: limit - sent])
                    log("  cut after %d body bytes" % limit)
                    client.shutdown(socket.SHUT_RDWR)
                    break
                if rate:
                    for i in range(0, len(chunk), piece):
                        client.sendall(chunk[i:i + piece])
                        time.sleep(piece / rate)
                else:
                    client.sendall(chunk)
                sent += len(chunk)
                chunk = b""
        except OSError:
            pass
        up.close()


class CDNHandler(socketserver.BaseRequestHandler):
    """A storage CDN behind signed, expiring URLs."""

    def handle(self):
        client = self.request
        head, _ = read_head(client)
        if head is None:
            return
        lines = head.split("\r\n")
        method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers = [l for l in lines[1:] if l]
        hv = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in headers if ":" in l}
        path, _, query = target.partition("?")
        q = dict(kv.partition("=")[::2] for kv in query.split("&") if kv)
        try:
            expires = int(q.get("expires", "0"))
        except ValueError:
            expires = 0
        want = hmac.new(CDN["secret"], ("%s %d" % (path, expires)).encode(), hashlib.sha256).hexdigest()
        expired = expires <= time.time()
        if not hmac.compare_digest(want, q.get("sig", "")):
            status, code, msg = 403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
        elif expired:
            status, code, msg = 403, "AccessDenied", "Request has expired"
        else:
            status = 0
        log("CDN %s %s range=%s authorization=%s expired=%s status=%s" % (
            method, path, hv.get("range", "-"), "yes" if "authorization" in hv else "no",
            "yes" if expired else "no", status or "origin"))
        if status:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                    '<RequestId>occy-lab</RequestId></Error>' % (code, msg)).encode()
            client.sendall(("HTTP/1.1 %d Forbidden\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                            "Connection: close\r\n\r\n" % (status, len(body))).encode() + (body if method != "HEAD" else b""))
            return
        origin_path = path[len("/cdn"):]
        up = socket.create_connection(CDN["origin"])
        extra = "Range: %s\r\n" % hv["range"] if "range" in hv else ""
        up.sendall(("%s %s HTTP/1.1\r\nHost: %s:%d\r\n%sConnection: close\r\n\r\n" % (
            method, origin_path, CDN["origin"][0], CDN["origin"][1], extra)).encode())
        try:
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                client.sendall(chunk)
        except OSError:
            pass
        up.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global LOG, UPSTREAM, REALM
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--rules-file")
    ap.add_argument("--cdn-origin")
    ap.add_argument("--rewrite-realm")
    ap.add_argument("--ratelimit", type=int)
    ap.add_argument("--ratelimit-limit", type=int, default=100)
    ap.add_argument("--ratelimit-window", type=int, default=21600)
    ap.add_argument("--ratelimit-retry-after", type=int)
    ap.add_argument("--ratelimit-quiet-head", action="store_true")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    UPSTREAM = (host, int(port))
    REALM = a.rewrite_realm
    if a.ratelimit is not None:
        RATE.update(limit=a.ratelimit_limit, left=a.ratelimit, window=a.ratelimit_window,
                    retry_after=a.ratelimit_retry_after, quiet_head=a.ratelimit_quiet_head)
    fixed = [Rule(r) for r in a.rule]
    RULES.extend(fixed)
    if a.rules_file:
        loads = [0]

        def load(*_):
            with open(a.rules_file) as f:
                lines = [l.strip() for l in f]
            new = [Rule(l) for l in lines if l and not l.startswith("#")]
            with LOCK:
                RULES[:] = fixed + new
            loads[0] += 1
            log("rules loaded (%d from %s, load %d)" % (len(new), a.rules_file, loads[0]))
            with open(a.rules_file + ".loaded.tmp", "w") as f:
                f.write("%d\n" % loads[0])
            os.rename(a.rules_file + ".loaded.tmp", a.rules_file + ".loaded")

        load()
        signal.signal(signal.SIGHUP, load)
    LOG = open(a.log, "a") if a.log else None
    cdn = None
    if a.cdn_origin:
        ohost, oport = a.cdn_origin.rsplit(":", 1)
        CDN["origin"] = (ohost, int(oport))
        cdn = Server(("127.0.0.2", 0), CDNHandler)
        CDN["port"] = cdn.server_address[1]
        threading.Thread(target=cdn.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        with open(a.port_file + ".cdn.tmp", "w") as f:
            f.write(str(CDN["port"]))
        os.rename(a.port_file + ".cdn.tmp", a.port_file + ".cdn")
    srv = Server(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever(poll_interval=0.05)  # stops within 50 ms of SIGTERM


main()
