#!/usr/bin/env bash
# Memory per stored session: the release binary (memory store) is filled with SESSIONS calls by
# wrk POSTing CAMARA's createSession body, and its resident memory is read before and after.
# Prints the bytes per session beyond its SDP offer.
#
#   scripts/memory.sh            SESSIONS=100000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${SESSIONS:-100000}
PORT=${PORT:-18081}
BIN=target/release/camara-webrtc
. scripts/common.sh
need wrk
cargo build --release --locked -q

# Room for exactly SESSIONS new calls besides the fixture: further POSTs get 429 and store nothing.
export CAMARA_WEBRTC__SESSIONS__MAX_SESSIONS=$((SESSIONS + 1))
"$BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready "$PORT"
export TOKEN
TOKEN=$("$BIN" token --sub tel:+17085852753 --client-id memory \
  --scope "webrtc-call-handling:sessions:create")
rss() { awk '/VmRSS/ { print $2 * 1024 }' "/proc/$PID/status"; }
# Warm up the token cache and the metrics with a few requests, then measure.
for _ in $(seq 10); do
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/webrtc/sessions" -H "Authorization: Bearer $TOKEN" \
    -H "registrationId: memory-test" -H "Content-Type: application/json" \
    -d '{"originatorAddress":"tel:+17085852753","receiverAddress":"tel:+17085854000","offer":{"sdp":"v=0\r\n"}}'
done
warm=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk -F' ' '/^camara_webrtc_sessions\{status="Initial"\}/ { print $2 }')
before=$(rss)
until [ "$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^camara_webrtc_sessions\{status="Initial"\}/ { print $2 }')" -ge "$SESSIONS" ]; do
  wrk -t1 -c64 -d5s -s scripts/post-call.lua "http://127.0.0.1:$PORT/webrtc/sessions" >/dev/null
done
stored=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^camara_webrtc_sessions\{status="Initial"\}/ { print $2 }')
after=$(rss)
sdp=$(grep -o 'local sdp = "[^"]*"' scripts/post-call.lua | sed 's/local sdp = "//; s/"$//' | sed 's/\\\\r\\\\n/xx/g' | tr -d '\n' | wc -c)
awk -v b="$before" -v a="$after" -v n="$((stored - warm))" -v s="$sdp" 'BEGIN {
  printf "sessions added: %d, SDP offer: %d bytes each\n", n, s
  printf "resident memory: %.1f MiB before, %.1f MiB after\n", b / 1048576, a / 1048576
  printf "per session: %.0f bytes, %.0f bytes beyond its SDP\n", (a - b) / n, (a - b) / n - s
}'
