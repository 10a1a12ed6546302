#!/usr/bin/env bash
# serve_tls_auth.sh - `occystrap serve` over TLS (the lab CA's certificate)
# speaks HTTP/2 by ALPN (curl says 2; --http1.1 still works) and HTTP/2 by
# prior knowledge on plain HTTP; skopeo pulls over TLS with the original
# digests; with --htpasswd (a bcrypt and a {SHA} entry, made by Apache's
# htpasswd) requests without credentials or with a wrong password get 401
# and WWW-Authenticate, right ones get through (curl and skopeo), and the
# access log names the user; bad TLS files and unsupported htpasswd entries
# are refused at start with exit 2.
source "$(dirname "$0")/lib/common.sh"
source "$TESTS_DIR/integration/lib/serve_lib.sh"

STORE="$WORK_DIR/store"
build_store "$STORE" fixtures/multilayer:v1 fixtures/multiplatform:v1
ML=$(fixture_field fixtures/multilayer digest)
CERT="$LAB_DIR/tls/server.crt"
KEY="$LAB_DIR/tls/server.key"
CERTS="$WORK_DIR/certs" # skopeo's --src-cert-dir
mkdir -p "$CERTS"
cp "$LAB_CA" "$CERTS/ca.crt"

start_serve plain "$STORE"
PLAIN_PID=$SERVE_PID
v=$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version}' "$SERVE_URL/v2/")
[ "$v" = 2 ] || fail "plain HTTP/2 (prior knowledge): http_version $v"
ok "plain HTTP: HTTP/2 by prior knowledge"
stop_serve "$PLAIN_PID"

start_serve tls "$STORE" --tls-cert "$CERT" --tls-key "$KEY"
[ "${SERVE_URL%%:*}" = https ] || fail "serve does not say https: $SERVE_URL"
v=$(curl -s --cacert "$LAB_CA" -o /dev/null -w '%{http_version}' "$SERVE_URL/v2/")
[ "$v" = 2 ] || fail "TLS: http_version $v, wanted 2"
v=$(curl -s --cacert "$LAB_CA" --http1.1 -o /dev/null -w '%{http_version}' "$SERVE_URL/v2/")
[ "$v" = 1.1 ] || fail "TLS --http1.1: http_version $v"
got=$(curl -s --cacert "$LAB_CA" "$SERVE_URL/v2/fixtures/multilayer/manifests/v1" | sha256sum | cut -d' ' -f1)
[ "sha256:$got" = "$ML" ] || fail "manifest over TLS: sha256:$got"
# every blob at once over one HTTP/2 connection
urls=()
for d in $(jq -r '.fixtures["fixtures/multilayer"].layers[].digest' "$LAB_FIXTURES"); do
  urls+=(-o "$WORK_DIR/blob-${d#sha256:}" "$SERVE_URL/v2/fixtures/multilayer/blobs/$d")
done
curl -s --no-progress-meter --cacert "$LAB_CA" --parallel --parallel-immediate "${urls[@]}" 2>/dev/null
for d in $(jq -r '.fixtures["fixtures/multilayer"].layers[].digest' "$LAB_FIXTURES"); do
  [ "sha256:$(sha256sum <"$WORK_DIR/blob-${d#sha256:}" | cut -d' ' -f1)" = "$d" ] || fail "blob $d over HTTP/2"
done
grep -q '"GET /v2/fixtures/multilayer/blobs/sha256:[0-9a-f]* HTTP/2" 200 ' "$SERVE_OUT" || fail "the access log shows no HTTP/2 blob request"
ok "TLS: HTTP/2 by ALPN (curl says 2), HTTP/1.1 on request, blobs in parallel over HTTP/2 with their digests"
expect_status 0 skopeo copy -q --all --src-cert-dir "$CERTS" "docker://$SERVE_ADDR/fixtures/multiplatform:v1" \
  "dir:$WORK_DIR/mp"
[ "sha256:$(sha256sum <"$WORK_DIR/mp/manifest.json" | cut -d' ' -f1)" = "$(fixture_field fixtures/multiplatform digest)" ] ||
  fail "skopeo over TLS: not the index's digest"
ok "skopeo over TLS (verifying the certificate): the index and its images with their digests"
stop_serve

# Basic authentication, over TLS
HT="$WORK_DIR/htpasswd"
htpasswd -bcB "$HT" alice 'alice pw' 2>/dev/null
htpasswd -bs "$HT" bob 'bob-pw' 2>/dev/null
grep -q '^alice:\$2y\$' "$HT" || fail "htpasswd -B did not make a bcrypt entry: $(cat "$HT")"
grep -q '^bob:{SHA}' "$HT" || fail "htpasswd -s did not make a {SHA} entry: $(cat "$HT")"
start_serve auth "$STORE" --tls-cert "$CERT" --tls-key "$KEY" --htpasswd "$HT"
c() { curl -s --cacert "$LAB_CA" -o "$WORK_DIR/body" -D "$WORK_DIR/headers" -w '%{http_code}' "$@"; }
[ "$(c "$SERVE_URL/v2/")" = 401 ] || fail "no credentials: not 401"
grep -qi '^WWW-Authenticate: Basic realm="occystrap"' "$WORK_DIR/headers" || fail "no WWW-Authenticate: $(cat "$WORK_DIR/headers")"
[ "$(jq -r '.errors[0].code' "$WORK_DIR/body")" = UNAUTHORIZED ] || fail "401 body: $(cat "$WORK_DIR/body")"
[ "$(c -u 'alice:wrong' "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 401 ] || fail "wrong password: not 401"
grep -qi '^WWW-Authenticate: Basic' "$WORK_DIR/headers" || fail "wrong password: no WWW-Authenticate"
[ "$(c -u 'bob:alice pw' "$SERVE_URL/v2/")" = 401 ] || fail "another user's password: not 401"
[ "$(c -u 'carol:x' "$SERVE_URL/v2/")" = 401 ] || fail "unknown user: not 401"
[ "$(c -H 'Authorization: Basic !!!!' "$SERVE_URL/v2/")" = 401 ] || fail "garbage credentials: not 401"
[ "$(c -u 'alice:alice pw' "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 200 ] || fail "bcrypt user refused"
[ "sha256:$(sha256sum <"$WORK_DIR/body" | cut -d' ' -f1)" = "$ML" ] || fail "manifest with auth: wrong bytes"
[ "$(c -u 'bob:bob-pw' "$SERVE_URL/v2/fixtures/multilayer/manifests/v1")" = 200 ] || fail "{SHA} user refused"
ok "Basic auth: 401 + WWW-Authenticate without credentials, with a wrong password, for an unknown user and for garbage; the bcrypt and the {SHA} user get through"
expect_status 0 skopeo copy -q --src-cert-dir "$CERTS" --src-creds 'alice:alice pw' \
  "docker://$SERVE_ADDR/fixtures/multilayer:v1" "dir:$WORK_DIR/authed"
[ "sha256:$(sha256sum <"$WORK_DIR/authed/manifest.json" | cut -d' ' -f1)" = "$ML" ] || fail "skopeo with credentials: wrong digest"
expect_status 1 skopeo copy -q --src-cert-dir "$CERTS" --src-creds 'alice:nope' \
  "docker://$SERVE_ADDR/fixtures/multilayer:v1" "dir:$WORK_DIR/refused"
ok "skopeo with the right credentials copies (original digest), with a wrong password it is refused"
grep -q '^127.0.0.1 - alice \[.*"GET /v2/fixtures/multilayer/manifests/v1 HTTP/2" 200 ' "$SERVE_OUT" ||
  fail "the access log does not name alice"
grep -q '^127.0.0.1 - - \[.*"GET /v2/fixtures/multilayer/manifests/v1 HTTP/2" 401 ' "$SERVE_OUT" ||
  fail "the access log does not show the refused request"
ok "the access log names the user of accepted requests only"
stop_serve

# what will not do is refused at start
expect_status 2 "$OCCYSTRAP" serve --listen 127.0.0.1:0 --tls-cert "$CERT" --tls-key "$LAB_DIR/token/signing.key" "$STORE"
expect_stderr "does not match"
expect_status 2 "$OCCYSTRAP" serve --listen 127.0.0.1:0 --tls-cert "$WORK_DIR/nope.crt" --tls-key "$KEY" "$STORE"
expect_stderr "nope.crt"
expect_status 2 "$OCCYSTRAP" serve --listen 127.0.0.1:0 --tls-cert "$CERT" "$STORE"
expect_stderr "go together"
printf 'alice:$apr1$x$y\n' >"$WORK_DIR/apr1"
expect_status 2 "$OCCYSTRAP" serve --listen 127.0.0.1:0 --htpasswd "$WORK_DIR/apr1" "$STORE"
expect_stderr "line 1"
expect_status 2 "$OCCYSTRAP" serve --listen 300.1.1.1:5000 "$STORE"
expect_status 2 "$OCCYSTRAP" serve --listen 127.0.0.1:0 "$WORK_DIR/no-such-store"
ok "refused at start with exit 2: a key that does not match, a missing certificate, a key without a certificate, an \$apr1\$ entry, a bad address, a missing store"
finish
