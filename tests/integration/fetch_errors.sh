#!/usr/bin/env bash
# fetch_errors.sh - platform selection and the errors users act on: each
# failure exits non-zero with one line naming the image and the cause, and
# leaves no TARFILE and no scratch directory.
source "$(dirname "$0")/lib/common.sh"

no_leftovers() {
  [ ! -e "$1" ] || fail "$1 exists after a failed fetch"
  if ls -a "$(dirname "$1")" | grep -q '\.occy-\|^\.tmp-'; then fail "scratch left beside $1"; fi
}

# --platform linux/arm64 yields the arm64 image's content (/platform says so).
expect_status 0 "$OCCYSTRAP" -q --insecure --platform linux/arm64 fetch-to-tarfile "$LAB_PLAIN" fixtures/multiplatform v1 arm.tar
$PY "$CHECK_TARBALL" arm.tar "$LAB_FIXTURES" fixtures/multiplatform linux/arm64 >/dev/null || fail "arm64 tarball check"
mkdir arm && tar -xf arm.tar -C arm
layer=$($PY -c 'import json;print(json.load(open("arm/manifest.json"))[0]["Layers"][-1])')
[ "$(tar -xOf "arm/$layer" platform)" = "arm64/v8" ] || fail "arm64 tarball does not hold the arm64 layer"
ok "--platform linux/arm64 picks the arm64/v8 image"

expect_status 0 "$OCCYSTRAP" -q --insecure --platform linux/arm/v7 fetch-to-tarfile "$LAB_PLAIN" fixtures/multiplatform v1 armv7.tar
$PY "$CHECK_TARBALL" armv7.tar "$LAB_FIXTURES" fixtures/multiplatform linux/arm/v7 >/dev/null || fail "arm/v7 tarball check"
ok "--platform linux/arm/v7 picks the arm/v7 image"

expect_status 1 "$OCCYSTRAP" --insecure --platform linux/s390x fetch-to-tarfile "$LAB_PLAIN" fixtures/multiplatform v1 s390x.tar
expect_stderr "linux/s390x"
expect_stderr "linux/amd64, linux/arm64/v8, linux/arm/v7"
no_leftovers "$WORK_DIR/s390x.tar"
ok "--platform linux/s390x fails and lists the platforms"

expect_status 2 "$OCCYSTRAP" --insecure --platform linux fetch-to-tarfile "$LAB_PLAIN" fixtures/multiplatform v1 bad.tar
ok "a malformed --platform is a usage error"

# by digest: the index digest from fixtures.json
digest=$($PY -c 'import json,sys;print(json.load(open(sys.argv[1]))["fixtures"]["fixtures/multilayer"]["digest"])' "$LAB_FIXTURES")
expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-tarfile "$LAB_PLAIN" fixtures/multilayer "$digest" bydigest.tar
$PY "$CHECK_TARBALL" bydigest.tar "$LAB_FIXTURES" fixtures/multilayer "" "$LAB_PLAIN/fixtures/multilayer@$digest" >/dev/null || fail "by-digest tarball"
ok "fetch by digest"

expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" fixtures/multilayer no-such-tag missing-tag.tar
expect_stderr "fixtures/multilayer:no-such-tag"
expect_stderr "not found"
no_leftovers "$WORK_DIR/missing-tag.tar"
ok "missing tag: clear error"

expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_PLAIN" fixtures/no-such-repo v1 missing-repo.tar
expect_stderr "fixtures/no-such-repo"
expect_stderr "not found"
no_leftovers "$WORK_DIR/missing-repo.tar"
ok "missing repository: clear error"

expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_TOKEN" private/secret v1 anon.tar
expect_stderr "authentication refused"
no_leftovers "$WORK_DIR/anon.tar"
ok "token registry, private repository, anonymous: refused"

expect_status 1 "$OCCYSTRAP" --insecure --username "$LAB_USER" --password wrong fetch-to-tarfile "$LAB_TOKEN" private/secret v1 wrong.tar
expect_stderr "refused the credentials"
no_leftovers "$WORK_DIR/wrong.tar"
ok "token registry, wrong password: refused"

expect_status 1 "$OCCYSTRAP" --insecure fetch-to-tarfile "$LAB_BASIC" fixtures/multilayer v1 basic-anon.tar
expect_stderr "requires credentials"
no_leftovers "$WORK_DIR/basic-anon.tar"
ok "basic registry without credentials: refused"

expect_status 1 "$OCCYSTRAP" --insecure --username "$LAB_USER" --password wrong fetch-to-tarfile "$LAB_BASIC" fixtures/multilayer v1 basic-wrong.tar
expect_stderr "authentication refused"
no_leftovers "$WORK_DIR/basic-wrong.tar"
ok "basic registry with a wrong password: refused"

# credentials from a docker config.json (DOCKER_CONFIG), base64 auth
mkdir dockercfg
auth=$(printf '%s:%s' "$LAB_USER" "$LAB_PASS" | base64)
printf '{"auths":{"%s":{"auth":"%s"}}}' "$LAB_BASIC" "$auth" > dockercfg/config.json
DOCKER_CONFIG=$WORK_DIR/dockercfg expect_status 0 "$OCCYSTRAP" -q --insecure fetch-to-tarfile "$LAB_BASIC" fixtures/multilayer v1 cfg.tar
$PY "$CHECK_TARBALL" cfg.tar "$LAB_FIXTURES" fixtures/multilayer >/dev/null || fail "config.json tarball"
ok "credentials from DOCKER_CONFIG/config.json"

expect_status 2 "$OCCYSTRAP" fetch-to-tarfile "$LAB_PLAIN" 'Bad/UPPER' v1 x.tar
ok "a malformed image name is a usage error"
expect_status 2 "$OCCYSTRAP" fetch-to-tarfile "$LAB_PLAIN" fixtures/multilayer
ok "missing arguments are a usage error"

# the registry gone for good: a clear error after the retries, no TARFILE
port=$($PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
expect_status 1 "$OCCYSTRAP" --insecure --retries 3 fetch-to-tarfile "127.0.0.1:$port" fixtures/multilayer v1 gone.tar
expect_stderr "gave up after 3 attempts"
expect_stderr "127.0.0.1:$port"
no_leftovers "$WORK_DIR/gone.tar"
ok "registry gone: clear error after the retries"
finish
