#!/usr/bin/env bash
# User-space instructions per request, counted by valgrind's callgrind: unlike req/s on a shared
# host, the count is the same from run to run, so it shows what a change did to the code path.
# It leaves out the kernel (sockets, wakeups), which is about 40% of a request's time here.
#
#   scripts/instructions.sh [put|live] [REQUESTS]     (default: put 2000)
#   KEEP=out.callgrind scripts/instructions.sh put    also keeps the profile, for
#                                                     callgrind_annotate --inclusive=yes out.callgrind
#
# The release binary runs under callgrind with the ES256 public key configured, as in
# scripts/loadtest.sh. One keep-alive connection sends 50 warm-up requests (the token cache, the
# metric series), the counters are zeroed, then REQUESTS requests are counted: PUT /status with
# the seed's Hold example and an ES256 token, or GET /health/live.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTE=${1:-put}
REQUESTS=${2:-2000}
PORT=${PORT:-18082}
BIN=target/release/camara-webrtc
. scripts/common.sh
need valgrind
cargo build --release --locked -q

OUT=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
export CAMARA_WEBRTC__AUTH__PUBLIC_KEYS='["tests/fixtures/keys/ec256-public.pem"]'
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" \
  "$BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>"$OUT/valgrind.log" &
PID=$!
wait_ready "$PORT"
ES256=(--private-key tests/fixtures/keys/ec256-private.pem --alg ES256)
export TOKEN
TOKEN=$("$BIN" token "${ES256[@]}" --sub tel:+17085854000 --client-id instructions \
  --scope "webrtc-call-handling:sessions:write webrtc-call-handling:sessions:read")
ID=0AEE1B58BAEEDA3EABA42B32EBB3DFE07E9CFF402EAF9EED8EF
for status in Connected Hold; do
  curl -sf -o /dev/null -X PUT "http://127.0.0.1:$PORT/webrtc/sessions/$ID/status" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -d "{\"status\":\"$status\"}"
done

# Sends $2 requests of kind $1 on one connection, each answered 200 before the next.
send() {
  python3 - "$PORT" "$1" "$2" "$ID" <<'PY'
import os, socket, sys
port, route, count, session = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
if route == "put":
    body = open("tests/fixtures/seed/request-4-hold.json", "rb").read()
    head = (f"PUT /webrtc/sessions/{session}/status HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {os.environ['TOKEN']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    request = head.encode() + body
else:
    request = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"
conn = socket.create_connection(("127.0.0.1", port))
pending = b""
for _ in range(count):
    conn.sendall(request)
    while b"\r\n\r\n" not in pending:
        pending += conn.recv(65536)
    head, rest = pending.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200 "):
        sys.exit(f"unexpected answer: {head.splitlines()[0]!r}")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        rest += conn.recv(65536)
    pending = rest[length:]
PY
}
send "$ROUTE" 50
callgrind_control -z "$PID" >/dev/null 2>&1
send "$ROUTE" "$REQUESTS"
callgrind_control -d "$PID" >/dev/null 2>&1
sleep 1
TOTAL=$(callgrind_annotate "$OUT"/callgrind.*.1 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
printf 'route=%s requests=%s instructions=%s per_request=%s\n' \
  "$ROUTE" "$REQUESTS" "$TOTAL" "$((TOTAL / REQUESTS))"
if [ -n "${KEEP:-}" ]; then cp "$OUT"/callgrind.*.1 "$KEEP"; fi
