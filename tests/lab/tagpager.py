#!/usr/bin/python3
"""tagpager.py - a loopback HTTP/1.1 proxy in front of a lab registry that
pages tag lists the way the distribution spec describes, because the lab's
registry (distribution 2.8) ignores "n" and "last" and always answers the
whole list.

usage: tagpager.py --upstream HOST:PORT --port-file FILE [--page-size N] [--log FILE]

GET /v2/<name>/tags/list[?n=N][&last=T] is answered here: the upstream's
whole list, sorted (byte order, as distribution 3 does), the tags after T,
at most N of them (N defaults to --page-size and is capped by it, as
registries cap it), and a Link header <...?n=N&last=LAST>; rel="next" when
more follow. Every other request is forwarded as it is, headers and body
streamed both ways, over keep-alive connections. The log gets one line per
request: method, path, status. Binds 127.0.0.1 only; stops on SIGTERM.
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
LOG = None
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade"}


def log(line):
    if LOG:
        with LOCK:
            LOG.write(line + "\n")
            LOG.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def upstream(self):
        c = getattr(self, "_up", None)
        if c is None:
            c = http.client.HTTPConnection(self.server.upstream, timeout=120)
            self._up = c
        return c

    def send_upstream(self, method, path, body, headers):
        for attempt in range(2):
            c = self.upstream()
            try:
                c.request(method, path, body=body, headers=headers)
                return c.getresponse()
            except (http.client.HTTPException, OSError):
                c.close()
                self._up = None
                if attempt == 1:
                    raise
        return None

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "host"}
        r = self.send_upstream(self.command, self.path, body, headers)
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if r.getheader("Content-Length") is None and self.command != "HEAD":
            data = r.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.end_headers()
            if self.command != "HEAD":
                while True:
                    chunk = r.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
        r.read()
        log("%s %s %d" % (self.command, self.path, r.status))

    def tags(self, name, query):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "host"}
        r = self.send_upstream("GET", "/v2/%s/tags/list" % name, None, headers)
        data = r.read()
        if r.status != 200:
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            log("GET %s %d" % (self.path, r.status))
            return
        tags = sorted(json.loads(data).get("tags") or [])
        q = urllib.parse.parse_qs(query)
        n = self.server.page_size
        if "n" in q:
            n = max(0, min(int(q["n"][0]), self.server.page_size))
        if "last" in q:
            tags = [t for t in tags if t > q["last"][0]]
        page, more = tags[:n], len(tags) > n
        out = json.dumps({"name": name, "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        if more and page:
            link = "/v2/%s/tags/list?%s" % (name, urllib.parse.urlencode({"n": n, "last": page[-1]}))
            self.send_header("Link", '<%s>; rel="next"' % link)
        self.end_headers()
        self.wfile.write(out)
        log("GET %s 200 %d tags%s" % (self.path, len(page), " (more)" if more else ""))

    def handle_one(self):
        path, _, query = self.path.partition("?")
        if self.command == "GET" and path.startswith("/v2/") and path.endswith("/tags/list"):
            self.tags(path[4:-len("/tags/list")], query)
        else:
            self.forward()

    def do_GET(self):
        self.handle_one()

    def do_HEAD(self):
        self.handle_one()

    def do_POST(self):
        self.handle_one()

    def do_PUT(self):
        self.handle_one()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--log")
    a = ap.parse_args()
    if a.log:
        LOG = open(a.log, "a")
    srv = Server(("127.0.0.1", 0), Handler)
    srv.upstream = a.upstream
    srv.page_size = a.page_size
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, a.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever()


main()
