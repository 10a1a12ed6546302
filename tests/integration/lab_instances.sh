#!/usr/bin/env bash
# lab_instances.sh - integration test proving the test lab itself works: each
# registry instance (plain, tls, token, basic) and the token service behave as
# tests/lab/README.md promises, and fixtures.json matches what is served.
# Needs LAB_DIR (set by ctest; the `lab` fixture has run tests/lab/lab.sh start).
set -euo pipefail

: "${LAB_DIR:?LAB_DIR must point at a started lab (tests/lab/lab.sh start DIR)}"
[ -r "$LAB_DIR/env.sh" ] || { echo "FAIL: $LAB_DIR/env.sh missing: is the lab started?" >&2; exit 1; }
# shellcheck disable=SC1091
source "$LAB_DIR/env.sh"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
N=0
ok() { N=$((N + 1)); echo "ok $N - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

ACCEPT_D2=application/vnd.docker.distribution.manifest.v2+json
ACCEPT_OCI=application/vnd.oci.image.manifest.v1+json
ACCEPT_ALL="$ACCEPT_D2,$ACCEPT_OCI,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json"

fx() { jq -er --arg r "$1" ".fixtures[\$r]$2" "$LAB_FIXTURES"; }
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# header FILE NAME: value of the last NAME: header in a curl -D dump
header() { tr -d '\r' <"$1" | grep -i "^$2:" | tail -n1 | cut -d: -f2- | sed 's/^ *//'; }

ML_DIGEST=$(fx fixtures/multilayer .digest) || fail "fixtures/multilayer not in $LAB_FIXTURES"
SECRET_DIGEST=$(fx private/secret .digest) || fail "private/secret not in $LAB_FIXTURES"

# --- TLS instance: HTTP/2, CA, digest as recorded ------------------------------
for repo in fixtures/multilayer fixtures/multilayer-oci fixtures/multiplatform; do
  want=$(fx "$repo" .digest)
  out=$(curl -sS --cacert "$LAB_CA" -H "Accept: $ACCEPT_ALL" -o "$TMP/m" -D "$TMP/h" \
    -w '%{http_version} %{http_code}' "https://$LAB_TLS/v2/$repo/manifests/v1") ||
    fail "tls: curl https://$LAB_TLS/v2/$repo/manifests/v1 failed"
  [ "$out" = "2 200" ] || fail "tls: $repo manifest: want HTTP/2 200, got '$out'"
  got=$(sha "$TMP/m")
  [ "$got" = "$want" ] || fail "tls: $repo manifest sha256 $got != fixtures.json $want"
  [ "$(header "$TMP/h" Docker-Content-Digest)" = "$want" ] ||
    fail "tls: $repo Docker-Content-Digest $(header "$TMP/h" Docker-Content-Digest) != $want"
  [ "$(header "$TMP/h" Content-Type)" = "$(fx "$repo" .media_type)" ] ||
    fail "tls: $repo Content-Type '$(header "$TMP/h" Content-Type)' != $(fx "$repo" .media_type)"
  ok "tls: $repo:v1 over HTTP/2 with the lab CA, digest $want"
done
out=$(curl -sS --cacert "$LAB_CA" -o /dev/null -w '%{http_version} %{http_code}' \
  "https://localhost:${LAB_TLS##*:}/v2/") || fail "tls: https://localhost:${LAB_TLS##*:}/v2/ failed (SAN DNS:localhost?)"
[ "$out" = "2 200" ] || fail "tls: https://localhost/v2/ gave '$out'"
ok "tls: certificate also valid for DNS:localhost"
if curl -s -o /dev/null "https://$LAB_TLS/v2/" 2>/dev/null; then
  fail "tls: the lab certificate was accepted WITHOUT the lab CA"
fi
ok "tls: certificate rejected without --cacert"

# --- token instance ------------------------------------------------------------
code=$(curl -sS -o /dev/null -D "$TMP/h" -w '%{http_code}' -H "Accept: $ACCEPT_D2" \
  "http://$LAB_TOKEN/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 401 ] || fail "token: anonymous manifest GET gave $code, want 401"
chal=$(header "$TMP/h" WWW-Authenticate)
[[ $chal == Bearer\ * ]] || fail "token: WWW-Authenticate '$chal' is not Bearer"
realm=$(sed -n 's/.*realm="\([^"]*\)".*/\1/p' <<<"$chal")
service=$(sed -n 's/.*service="\([^"]*\)".*/\1/p' <<<"$chal")
scope=$(sed -n 's/.*scope="\([^"]*\)".*/\1/p' <<<"$chal")
[ "$realm" = "$LAB_TOKEN_SERVICE" ] || fail "token: realm '$realm' != LAB_TOKEN_SERVICE $LAB_TOKEN_SERVICE"
[ "$service" = occy-lab ] || fail "token: service '$service' != occy-lab"
[ "$scope" = "repository:fixtures/multilayer:pull" ] || fail "token: scope '$scope'"
ok "token: anonymous GET -> 401, $chal"

# get_token OUTFILE [curl args...] SCOPE: writes the JSON answer, prints HTTP code
get_token() {
  local outf=$1 scope=${*: -1}
  local -a extra=("${@:2:$#-2}")
  curl -sS -o "$outf" -w '%{http_code}' "${extra[@]}" -G "$realm" \
    --data-urlencode "service=$service" --data-urlencode "scope=$scope"
}
code=$(get_token "$TMP/t" "$scope")
[ "$code" = 200 ] || fail "token: anonymous token request gave $code: $(cat "$TMP/t")"
jq -e '(.token | length > 0) and .access_token == .token and .expires_in == 300 and (.issued_at | length > 0)' \
  "$TMP/t" >/dev/null || fail "token: bad token JSON: $(cat "$TMP/t")"
TOK=$(jq -r .token "$TMP/t")
ok "token: anonymous token from the realm (token, access_token, expires_in 300, issued_at)"
code=$(curl -sS -o "$TMP/m" -w '%{http_code}' -H "Accept: $ACCEPT_D2" -H "Authorization: Bearer $TOK" \
  "http://$LAB_TOKEN/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 200 ] || fail "token: manifest GET with anonymous bearer gave $code: $(cat "$TMP/m")"
[ "$(sha "$TMP/m")" = "$ML_DIGEST" ] || fail "token: manifest digest $(sha "$TMP/m") != $ML_DIGEST"
ok "token: fixtures/multilayer:v1 with Bearer token -> 200, digest matches"

# an anonymous push request is cut down to pull
code=$(get_token "$TMP/t" "repository:fixtures/multilayer:pull,push")
[ "$code" = 200 ] || fail "token: anonymous pull,push token request gave $code"
acts=$(jq -r .token "$TMP/t" | cut -d. -f2 | tr '_-' '/+' | { read -r p; while [ $((${#p} % 4)) != 0 ]; do p="$p="; done; echo "$p"; } |
  base64 -d | jq -c '[.access[] | select(.name == "fixtures/multilayer") | .actions[]]')
[ "$acts" = '["pull"]' ] || fail "token: anonymous pull,push granted $acts, want [\"pull\"]"
ok "token: anonymous pull,push request granted only pull"

code=$(get_token "$TMP/t" "repository:private/secret:pull")
[ "$code" = 200 ] || fail "token: anonymous token request for private/secret gave $code"
code=$(curl -sS -o "$TMP/m" -w '%{http_code}' -H "Accept: $ACCEPT_D2" \
  -H "Authorization: Bearer $(jq -r .token "$TMP/t")" "http://$LAB_TOKEN/v2/private/secret/manifests/v1")
case $code in 401 | 403) ;; *) fail "token: private/secret with anonymous token gave $code, want 401/403" ;; esac
ok "token: private/secret with an anonymous token -> $code"

code=$(get_token "$TMP/t" -u "$LAB_USER:$LAB_PASS" "repository:private/secret:pull")
[ "$code" = 200 ] || fail "token: token request with credentials gave $code: $(cat "$TMP/t")"
code=$(curl -sS -o "$TMP/m" -w '%{http_code}' -H "Accept: $ACCEPT_D2" \
  -H "Authorization: Bearer $(jq -r .token "$TMP/t")" "http://$LAB_TOKEN/v2/private/secret/manifests/v1")
[ "$code" = 200 ] || fail "token: private/secret with an authenticated token gave $code: $(cat "$TMP/m")"
[ "$(sha "$TMP/m")" = "$SECRET_DIGEST" ] || fail "token: private/secret digest $(sha "$TMP/m") != $SECRET_DIGEST"
ok "token: private/secret with a token obtained with Basic credentials -> 200"

code=$(get_token "$TMP/t" -u "$LAB_USER:wrong-password" "repository:private/secret:pull")
[ "$code" = 401 ] || fail "token: token request with a wrong password gave $code, want 401"
ok "token: token request with a wrong password -> 401"

grep -qF 'GET /token?' "$LAB_LOG_TOKEN_SERVICE" || fail "token: $LAB_LOG_TOKEN_SERVICE does not log requests"
ok "token: token service logs requests to $LAB_LOG_TOKEN_SERVICE"

# --- basic instance ------------------------------------------------------------
B="$LAB_BASIC_SCHEME://$LAB_BASIC"
bcurl() { curl -sS --cacert "$LAB_CA" -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT_D2" "$@"; }
code=$(bcurl -u "$LAB_USER:$LAB_PASS" "$B/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 200 ] || fail "basic: with credentials gave $code, want 200"
ok "basic: with credentials -> 200"
code=$(bcurl -u "$LAB_USER:nope" "$B/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 401 ] || fail "basic: wrong password gave $code, want 401"
ok "basic: wrong password -> 401"
code=$(bcurl -D "$TMP/h" "$B/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 401 ] || fail "basic: no credentials gave $code, want 401"
[[ $(header "$TMP/h" WWW-Authenticate) == Basic\ * ]] || fail "basic: no Basic challenge"
ok "basic: no credentials -> 401 with $(header "$TMP/h" WWW-Authenticate)"

# --- plain instance + access log ------------------------------------------------
ua="occy-lab-check-$$-$RANDOM"
code=$(curl -sS -o "$TMP/m" -w '%{http_code}' -A "$ua" -H "Accept: $ACCEPT_D2" \
  "http://$LAB_PLAIN/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 200 ] || fail "plain: manifest GET gave $code"
[ "$(sha "$TMP/m")" = "$ML_DIGEST" ] || fail "plain: digest $(sha "$TMP/m") != $ML_DIGEST"
ok "plain: fixtures/multilayer:v1 -> 200, digest matches"

# wait_log FILE PATTERN COUNT: wait (<= 3 s) until PATTERN occurs COUNT times
wait_log() {
  local n
  for _ in $(seq 30); do
    n=$(grep -cF -- "$2" "$1" || true)
    [ "$n" -ge "$3" ] && { echo "$n"; return 0; }
    sleep 0.1
  done
  echo "$n"
  return 1
}
line="\"GET /v2/fixtures/multilayer/manifests/v1 HTTP/1.1\" 200"
n=$(wait_log "$LAB_LOG_PLAIN" "$ua" 1) || fail "plain: access log $LAB_LOG_PLAIN lacks the request (UA $ua)"
grep -F -- "$ua" "$LAB_LOG_PLAIN" | grep -F -- "$line" >/dev/null || fail "plain: access log line for $ua lacks '$line'"
ok "plain: access log has $line"

blob=$(fx fixtures/multilayer '.layers[0].digest')
# other tests read the same blob meanwhile (ctest -j): count this test's own
# requests, by their user agent
bua="$ua-blob"
pat="\"GET /v2/fixtures/multilayer/blobs/$blob HTTP/1.1\" 200 [0-9]* \"\" \"$bua\""
before=$(grep -c -- "$pat" "$LAB_LOG_PLAIN" || true)
for _ in 1 2; do
  curl -sS -A "$bua" -o "$TMP/b" "http://$LAB_PLAIN/v2/fixtures/multilayer/blobs/$blob"
  [ "$(sha "$TMP/b")" = "$blob" ] || fail "plain: blob $blob content mismatch"
done
n=$(wait_log "$LAB_LOG_PLAIN" "\"$bua\"" $((before + 2))) ||
  fail "plain: expected $((before + 2)) access log lines for the blob, got $n"
n=$(grep -c -- "$pat" "$LAB_LOG_PLAIN" || true)
[ "$n" = $((before + 2)) ] || fail "plain: expected $((before + 2)) access log lines for the blob, got $n"
ok "plain: 2 blob GETs -> exactly 2 more access log lines"

# --- push targets: the same kinds over their own storage -------------------------
[ -n "${LAB_PUSH_PLAIN:-}" ] || fail "env.sh has no LAB_PUSH_PLAIN"
for pair in "push-plain http://$LAB_PUSH_PLAIN 200" "push-tls https://$LAB_PUSH_TLS 200" \
  "push-token http://$LAB_PUSH_TOKEN 401" "push-basic http://$LAB_PUSH_BASIC 401"; do
  set -- $pair
  code=$(curl -s --cacert "$LAB_CA" -o /dev/null -w '%{http_code}' "$2/v2/") || true
  [ "$code" = "$3" ] || fail "$1: $2/v2/ answered $code, not $3"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$LAB_PUSH_PLAIN/v2/fixtures/multilayer/manifests/v1")
[ "$code" = 404 ] || fail "push-plain serves the fixtures (HTTP $code): its storage is not its own"
ok "push targets: plain, tls, token (401), basic (401) answer; their storage is not the fixtures'"

echo "lab_instances: all $N checks passed"
