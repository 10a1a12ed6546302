#!/usr/bin/env bash
# mirror_progress.sh - what a human and a log see: on a terminal (a real
# pseudo-terminal) a redrawn status line with a bar, rate, ETA, images done
# and active layers; through a pipe plain lines, one per image, no escape
# codes; --json puts the report on stdout and only logs on stderr.
source "$(dirname "$0")/lib/common.sh"
NS=scratch/mirror-progress-$$
$PY "$TESTS_DIR/integration/lib/mkimage.py" "$LAB_PLAIN" "$NS/slow:v1" "$NS-big:2000000" "$NS-small:1000" > img.txt
big=$(sed -n 2p img.txt | cut -d' ' -f2)
# a slow registry (400 kB/s on the big layer) so the bar is drawn a few times
start_proxy slow "blobs/$big|slow=400000|10"
printf '{"registries": {"%s": {"insecure": true}}}\n' "$PROXY" > config.json
echo "$PROXY/$NS/slow:v1" > list.txt

$PY - "$OCCYSTRAP" config.json list.txt tty-store > tty.out <<'PY' || fail "the pty run failed"
import os, pty, sys, subprocess
occy, cfg, lst, store = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(occy, [occy, "--config", cfg, "mirror", lst, store])
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PY
redraws=$(grep -o $'\r\033\[K\[' tty.out | wc -l)
[ "$redraws" -ge 2 ] || { cat -v tty.out; fail "the status line was drawn $redraws times on a terminal"; }
grep -q 'images 0/1' tty.out && grep -q 'layers active' tty.out && grep -q 'ETA' tty.out ||
  { cat -v tty.out; fail "the status line lacks images/layers/ETA"; }
grep -q '^ok .*slow:v1' <(tr '\r' '\n' < tty.out | sed 's/\x1b\[K//g') || { cat -v tty.out; fail "no per-image line"; }
ok "terminal: status line redrawn $redraws times with bar, ETA, images and active layers"

"$OCCYSTRAP" --config config.json mirror list.txt pipe-store > pipe.stdout 2> pipe.stderr | cat
if grep -q $'\033' pipe.stderr; then cat -v pipe.stderr; fail "escape codes in piped output"; fi
grep -q "^ok .*$NS/slow:v1" pipe.stderr || { cat pipe.stderr; fail "no plain line for the image"; }
grep -q '^done: ' pipe.stderr || fail "no final status line"
[ ! -s pipe.stdout ] || fail "logs went to stdout"
ok "pipe: plain lines on stderr, nothing on stdout"

expect_status 0 "$OCCYSTRAP" --config config.json --json mirror list.txt pipe-store > report.out
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["totals"]["up_to_date"]==1, r' report.out ||
  fail "--json did not print the report on stdout"
ok "--json: the report on stdout"
finish
