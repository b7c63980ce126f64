#!/usr/bin/env bash
# Load test of the release binary: PUT /status (the seed's Hold example, Hold -> Hold) against
# /health/live, both with wrk in the same run. Prints req/s, p50 and p99 of each, the ratio of the
# throughputs and the ratio of the p99s.
# The service verifies ES256 tokens with a configured public key (tests/fixtures/keys, test-only),
# and the PUTs carry an ES256 token, as an operator's deployment would.
#
#   scripts/loadtest.sh [memory|redis]     DURATION=10s CONNECTIONS=64 ROUNDS=3 to change the load
#
# Each round runs wrk against PUT /status, then against /health/live. The machines this runs on
# share their host, and their speed drifts by 15% or more over minutes, so the summary is the
# median of the rounds for each figure, and the ratio is the median of the rounds' ratios (each
# round's two runs are back to back, so a drift mostly moves both).
#
# SESSIONS=1 (default) sends every PUT to CAMARA's fixture session: one hot session, the worst case
# for compare-and-swap. SESSIONS=N creates N calls first and spreads the PUTs over them.
#
# EVENTS=1 subscribes a fast local sink (scripts/sink.js, on Node) to the session-status events of
# the sessions' receiver first, so every PUT makes one event; after each PUT run the script waits
# (up to 10 s) until the sink has every event and prints how many arrived and how long the rest
# took ("keeps up"), before /health/live runs.
#
# The service is pinned to core 0, wrk (and redis-server, and the sink) to core 1, so the figures
# are one core's worth of service. wrk and redis-server come from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${1:-memory}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
SESSIONS=${SESSIONS:-1}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-0}
SINK_PORT=${SINK_PORT:-19000}
PORT=${PORT:-18080}
REDIS_PORT=${REDIS_PORT:-16379}
ID=0AEE1B58BAEEDA3EABA42B32EBB3DFE07E9CFF402EAF9EED8EF
BIN=target/release/camara-webrtc

. scripts/common.sh
need wrk
cargo build --release --locked -q

PIDS=()
RESULTS=$(mktemp)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -f "$RESULTS"' EXIT
case "$STORE" in
  memory) ;;
  redis)
    start_redis loadtest
    ;;
  *) echo "usage: $0 [memory|redis]" >&2; exit 2 ;;
esac

export CAMARA_WEBRTC__AUTH__PUBLIC_KEYS='["tests/fixtures/keys/ec256-public.pem"]'
taskset -c 0 "$BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_ready "$PORT"

export TOKEN IDS=""
ES256=(--private-key tests/fixtures/keys/ec256-private.pem --alg ES256)
TOKEN=$("$BIN" token "${ES256[@]}" --sub tel:+17085854000 --client-id loadtest \
  --scope "webrtc-call-handling:sessions:write webrtc-call-handling:sessions:read")
CALLER=$("$BIN" token "${ES256[@]}" --sub tel:+17085852753 --client-id loadtest \
  --scope "webrtc-call-handling:sessions:create")
BASE="http://127.0.0.1:$PORT/webrtc/sessions"
if [ "$EVENTS" = 1 ]; then
  need node
  taskset -c 1 node scripts/sink.js "$SINK_PORT" &
  PIDS+=($!)
  PREFIX=org.camaraproject.webrtc-events.v0
  BOB=$("$BIN" token "${ES256[@]}" --sub tel:+17085854000 --client-id loadtest \
    --scope "webrtc-registration:sessions:create webrtc-events:$PREFIX.session-status:create")
  REGISTRATION=$(curl -sf -X POST "http://127.0.0.1:$PORT/webrtc-registration/vwip/sessions" \
    -H "Authorization: Bearer $BOB" -H "Content-Type: application/json" \
    -d '{"deviceId":"7d444840-9dc0-11d1-b245-5ffdce74fad2"}' |
    sed 's/.*"registrationId":"\([^"]*\)".*/\1/')
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/webrtc-events/vwip/subscriptions" \
    -H "Authorization: Bearer $BOB" -H "Content-Type: application/json" \
    -d "{\"protocol\":\"HTTP\",\"sink\":\"http://127.0.0.1:$SINK_PORT/\",\"types\":[\"$PREFIX.session-status\"],\"config\":{\"subscriptionDetail\":{\"registrationId\":\"$REGISTRATION\"}}}"
fi
# The events the sink has received so far.
sink_count() { curl -sf "http://127.0.0.1:$SINK_PORT/" | sed 's/.*"received":\([0-9]*\).*/\1/'; }
# Initial -> Connected -> Hold, so every PUT of the Hold example is a 200 (Hold -> Hold).
to_hold() {
  for status in Connected Hold; do
    curl -sf -o /dev/null -X PUT "$BASE/$1/status" -H "Authorization: Bearer $TOKEN" \
      -H "Content-Type: application/json" -d "{\"status\":\"$status\"}"
  done
}
to_hold "$ID"
if [ "$SESSIONS" -gt 1 ]; then
  for _ in $(seq "$SESSIONS"); do
    id=$(curl -sf -X POST "$BASE" -H "Authorization: Bearer $CALLER" -H "registrationId: loadtest" \
      -H "Content-Type: application/json" \
      -d '{"originatorAddress":"tel:+17085852753","receiverAddress":"tel:+17085854000","offer":{"sdp":"v=0\r\n"}}' \
      | sed 's/.*"mediaSessionId":"\([^"]*\)".*/\1/')
    to_hold "$id"
    IDS="$IDS $id"
  done
fi
URL="$BASE/$ID/status"

# "<req/s> <p50 ms> <p99 ms> <non-2xx> <requests>" from wrk --latency output.
summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    / requests in / { total = $1 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx/ { bad = $5 }
    END { printf "%.0f %.2f %.2f %d %d\n", rps, p50, p99, bad, total }'
}
run() {
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | summary
}
# The median of the values on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf 'store=%s sessions=%s connections=%s duration=%s rounds=%s\n' \
  "$STORE" "$SESSIONS" "$CONNECTIONS" "$DURATION" "$ROUNDS"
printf '%-14s %5s %10s %9s %9s %8s\n' route round req/s p50_ms p99_ms non2xx
expected=0
for round in $(seq "$ROUNDS"); do
  read -r rps p50 p99 bad total < <(run -s scripts/put-hold.lua "$URL")
  printf '%-14s %5s %10s %9s %9s %8s\n' "PUT /status" "$round" "$rps" "$p50" "$p99" "$bad"
  echo "put $rps $p50 $p99 $bad" >>"$RESULTS"
  if [ "$EVENTS" = 1 ]; then
    # Every 200 made one session-status event.
    expected=$((expected + total - bad))
    start=$(date +%s.%N)
    for _ in $(seq 100); do
      [ "$(sink_count)" -ge "$expected" ] && break
      sleep 0.1
    done
    got=$(sink_count)
    printf 'events: %s of %s at the sink, %.1f s after the load ended\n' "$got" "$expected" \
      "$(echo "$(date +%s.%N) - $start" | bc)"
    echo "events $got $expected" >>"$RESULTS"
  fi
  read -r rps p50 p99 bad _ < <(run "http://127.0.0.1:$PORT/health/live")
  printf '%-14s %5s %10s %9s %9s %8s\n' "/health/live" "$round" "$rps" "$p50" "$p99" "$bad"
  echo "live $rps $p50 $p99 $bad" >>"$RESULTS"
done
# "<median req/s> <median p50> <median p99> <total non-2xx>" of one route.
summarise() {
  local rows; rows=$(awk -v r="$1" '$1 == r' "$RESULTS")
  echo "$(cut -d' ' -f2 <<<"$rows" | median) $(cut -d' ' -f3 <<<"$rows" | median)" \
    "$(cut -d' ' -f4 <<<"$rows" | median) $(cut -d' ' -f5 <<<"$rows" | awk '{ n += $1 } END { print n }')"
}
read -r put_rps put_p50 put_p99 put_bad < <(summarise put)
read -r live_rps live_p50 live_p99 live_bad < <(summarise live)
echo "median of $ROUNDS rounds:"
printf '%-14s %5s %10.0f %9s %9s %8s\n' "PUT /status" "" "$put_rps" "$put_p50" "$put_p99" "$put_bad"
printf '%-14s %5s %10.0f %9s %9s %8s\n' "/health/live" "" "$live_rps" "$live_p50" "$live_p99" "$live_bad"
ratios=$(paste <(awk '$1 == "put" { print $2 }' "$RESULTS") <(awk '$1 == "live" { print $2 }' "$RESULTS") |
  awk '{ print $1 / $2 }')
printf 'ratio PUT / live: %.2f (median of the rounds; each round: %s)\n' \
  "$(median <<<"$ratios")" "$(printf '%.2f ' $ratios | sed 's/ $//')"
p99s=$(paste <(awk '$1 == "put" { print $4 }' "$RESULTS") <(awk '$1 == "live" { print $4 }' "$RESULTS") |
  awk '{ print $1 / $2 }')
printf 'ratio PUT p99 / live p99: %.2f (median of the rounds; each round: %s)\n' \
  "$(median <<<"$p99s")" "$(printf '%.2f ' $p99s | sed 's/ $//')"
if [ "$EVENTS" = 1 ]; then
  curl -sf "http://127.0.0.1:$SINK_PORT/" |
    sed 's/.*"received":\([0-9]*\),"distinct":\([0-9]*\).*/sink: \1 events received, \2 distinct ids/'
  echo
  echo "events expected (200s of PUT): $expected"
fi
