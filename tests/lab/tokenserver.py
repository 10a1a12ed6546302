#!/usr/bin/python3
# tokenserver.py - the occystrap test lab's Docker registry token service.
#
# A tiny implementation of the "Docker Registry v2 authentication via central
# service" protocol (distribution's docs/spec/auth/token.md) for the lab's
# `token` registry instance. Stdlib http.server + python3-cryptography only;
# always run it with Debian's /usr/bin/python3 (it has python3-cryptography).
#
#   /usr/bin/python3 tokenserver.py --key KEY.pem --port-file FILE --log FILE
#                                   [--service occy-lab] [--issuer occy-lab-issuer]
#                                   [--user occy] [--password lab-secret]
#                                   [--lifetime SECONDS] [--delay SECONDS]
#
# --lifetime sets the tokens' expires_in and JWT exp (default 300 s; short
# lifetimes test a client's expiry margin); --delay makes every answer wait
# that long (a slow token service, for signal tests).
#
# It binds 127.0.0.1 on a kernel-chosen free port and writes that port to
# --port-file once it is listening. Endpoints: GET /token (and /token/) with
# ?service=&scope=...&scope=... (Basic credentials optional), POST /token with
# an OAuth2 form (grant_type=password|refresh_token, used by some clients).
#
# Tokens are RS256 JWTs whose header carries a libtrust "kid" (base32 of the
# first 30 bytes of SHA-256 of the DER SubjectPublicKeyInfo, in groups of 4
# joined by ':'), which is what registry 2.8 looks up in its rootcertbundle.
#
# Policy:
#   * wrong credentials                  -> 401 (no token)
#   * valid credentials (occy/lab-secret) -> pull,push,delete on every repository,
#                                           plus registry:catalog:*
#   * anonymous                           -> pull only, and only on repositories
#                                           NOT under private/
# Requested scopes are honoured: the token grants the intersection of what was
# asked and what the policy allows (possibly nothing, then the registry answers
# 401/403 for the resource).
import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

TOKEN_LIFETIME = 300


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_kid(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def parse_scopes(values):
    """Each value may hold several space-separated scopes 'type:name:actions'."""
    out = []
    for v in values:
        for item in v.split():
            parts = item.split(":")
            if len(parts) < 3:
                continue
            rtype, actions = parts[0], parts[-1]
            name = ":".join(parts[1:-1])
            acts = [a for a in actions.split(",") if a]
            out.append((rtype, name, acts))
    return out


class TokenServer:
    def __init__(self, args):
        with open(args.key, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        self.kid = libtrust_kid(self.key.public_key())
        self.service = args.service
        self.issuer = args.issuer
        self.user = args.user
        self.password = args.password
        self.lifetime = args.lifetime
        self.delay = args.delay
        self.logf = open(args.log, "a", buffering=1, encoding="utf-8")
        self.loglock = threading.Lock()

    def log(self, line):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.loglock:
            self.logf.write(f"{stamp} {line}\n")

    def allowed(self, user, rtype, name, acts):
        if rtype == "repository":
            if user is not None:
                permitted = {"pull", "push", "delete", "*"}
            elif name.startswith("private/"):
                permitted = set()
            else:
                permitted = {"pull"}
        elif rtype == "registry" and name == "catalog":
            permitted = {"*"} if user is not None else set()
        else:
            permitted = set()
        return [a for a in acts if a in permitted]

    def make_token(self, user, scopes):
        access = []
        for rtype, name, acts in scopes:
            granted = self.allowed(user, rtype, name, acts)
            if granted:
                access.append({"type": rtype, "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + b64url(sig)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        return token, access, issued


def make_handler(ts):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "occy-lab-tokenserver/1"

        def log_message(self, fmt, *a):  # silence the default stderr log
            pass

        def reply(self, status, body, extra=None, who="-", note=""):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            ts.log(f'{self.client_address[0]} "{self.command} {self.path}" {status} user={who} {note}')

        def credentials(self):
            """None if anonymous, the user name if valid, False if invalid."""
            h = self.headers.get("Authorization")
            if not h:
                return None
            if not h.lower().startswith("basic "):
                return False
            try:
                user, _, pw = base64.b64decode(h[6:].strip()).decode("utf-8").partition(":")
            except Exception:
                return False
            if user == ts.user and pw == ts.password:
                return user
            return False

        def issue(self, user, service, scopes, who, refresh=False):
            if service and service != ts.service:
                self.reply(400, {"errors": [{"code": "INVALID_SERVICE",
                                             "message": f"unknown service {service!r}"}]}, who=who)
                return
            if ts.delay:
                time.sleep(ts.delay)
            token, access, issued = ts.make_token(user, scopes)
            body = {"token": token, "access_token": token,
                    "expires_in": ts.lifetime, "issued_at": issued}
            if refresh and user:
                # Opaque refresh token: the lab only needs it to round-trip.
                body["refresh_token"] = b64url(f"{user}:{ts.password}".encode())
            grants = ";".join(f'{a["type"]}:{a["name"]}:{",".join(a["actions"])}' for a in access)
            self.reply(200, body, who=who, note=f"granted=[{grants}] expires_in={ts.lifetime}")

        def unauthorized(self, who):
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "invalid username or password"}]},
                       extra={"WWW-Authenticate": 'Basic realm="occy-lab-token"'}, who=who)

        def do_GET(self):
            u = urlsplit(self.path)
            if u.path not in ("/token", "/token/"):
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": u.path}]})
                return
            q = parse_qs(u.query)
            cred = self.credentials()
            if cred is False:
                self.unauthorized("invalid")
                return
            who = cred if cred else "anonymous"
            self.issue(cred, q.get("service", [""])[0], parse_scopes(q.get("scope", [])), who,
                       refresh=q.get("offline_token", [""])[0] == "true")

        def do_POST(self):
            u = urlsplit(self.path)
            if u.path not in ("/token", "/token/"):
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": u.path}]})
                return
            n = int(self.headers.get("Content-Length") or 0)
            q = parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
            grant = q.get("grant_type", [""])[0]
            user = None
            if grant == "password":
                if (q.get("username", [""])[0] != ts.user or
                        q.get("password", [""])[0] != ts.password):
                    self.unauthorized("invalid")
                    return
                user = ts.user
            elif grant == "refresh_token":
                try:
                    u2, _, pw = base64.urlsafe_b64decode(
                        q.get("refresh_token", [""])[0] + "==").decode().partition(":")
                except Exception:
                    u2, pw = "", ""
                if u2 != ts.user or pw != ts.password:
                    self.unauthorized("invalid")
                    return
                user = ts.user
            else:
                self.reply(400, {"errors": [{"code": "UNSUPPORTED",
                                             "message": f"grant_type {grant!r}"}]})
                return
            self.issue(user, q.get("service", [""])[0], parse_scopes(q.get("scope", [])), user,
                       refresh=q.get("access_type", [""])[0] == "offline")

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--service", default="occy-lab")
    ap.add_argument("--issuer", default="occy-lab-issuer")
    ap.add_argument("--user", default="occy")
    ap.add_argument("--password", default="lab-secret")
    ap.add_argument("--lifetime", type=int, default=TOKEN_LIFETIME)
    ap.add_argument("--delay", type=float, default=0)
    args = ap.parse_args()
    ts = TokenServer(args)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(ts))
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args.port_file)
    ts.log(f"listening on 127.0.0.1:{port} kid={ts.kid} pid={os.getpid()}")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
