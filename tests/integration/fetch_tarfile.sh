#!/usr/bin/env bash
# fetch_tarfile.sh - every fixture through every lab instance (plain HTTP,
# TLS with --ca-cert, token auth, Basic auth) with fetch-to-tarfile; each
# tarball checked by check_tarball.py (digests, diff_ids, layer order,
# end blocks) and accepted by skopeo.
source "$(dirname "$0")/lib/common.sh"

fetch_and_check() { # INSTANCE_LABEL REGISTRY KEY OPTS...
  local label=$1 reg=$2 key=$3
  shift 3
  local out="$WORK_DIR/$label-${key//\//_}.tar"
  expect_status 0 "$OCCYSTRAP" -q "$@" fetch-to-tarfile "$reg" "$key" v1 "$out"
  $PY "$CHECK_TARBALL" "$out" "$LAB_FIXTURES" "$key" "" "$reg/$key:v1" >/dev/null ||
    fail "$label $key: tarball check failed"
  ls -a "$WORK_DIR" | grep -q '\.occy-' && fail "$label $key: scratch directory left behind"
  rm -f "$out"
  ok "$label: $key"
}

for key in $(fixture_keys); do
  case $key in private/*) continue ;; esac
  fetch_and_check plain "$LAB_PLAIN" "$key" --insecure
  fetch_and_check tls "$LAB_TLS" "$key" --ca-cert "$LAB_CA"
  fetch_and_check token "$LAB_TOKEN" "$key" --insecure
  fetch_and_check basic "$LAB_BASIC" "$key" --insecure --username "$LAB_USER" --password "$LAB_PASS"
done
fetch_and_check token-private "$LAB_TOKEN" private/secret --insecure --username "$LAB_USER" --password "$LAB_PASS"

# Without trusting the lab CA, TLS must fail and leave nothing behind.
expect_status 1 "$OCCYSTRAP" --retries 1 fetch-to-tarfile "$LAB_TLS" fixtures/multilayer v1 "$WORK_DIR/untrusted.tar"
[ ! -e "$WORK_DIR/untrusted.tar" ] || fail "a TARFILE was left after a TLS failure"
expect_stderr "certificate"
ok "tls without the CA is refused"
finish
