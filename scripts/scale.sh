#!/usr/bin/env bash
# Scale of the simulated network (issue 16): CALLS concurrent calls to the ten built-in test
# numbers, all live at once, each played to its end by the timers; a sink (scripts/scale.js, on
# Node) checks that every call's whole sequence of session-status events is the one its number's
# script makes, and the run prints how late the timers fired (p50/p99 from the service's
# camara_webrtc_timer_lateness_seconds) and the memory per live call.
#
#   scripts/scale.sh [memory|redis]     CALLS=10000 TIME_SCALE=10 to change the run
#
# memory: one instance. redis: two replicas on one redis-server, calls placed through both.
# TIME_SCALE=10 makes the scripts ten times slower (first steps at 5 s, the no-answer time 60 s),
# so that every call is still live when the last is placed. The service is pinned to core 0,
# Node and redis-server to core 1. redis-server and node come from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${1:-memory}
CALLS=${CALLS:-10000}
TIME_SCALE=${TIME_SCALE:-10}
PORT=${PORT:-18090}
REDIS_PORT=${REDIS_PORT:-16380}
SINK_PORT=${SINK_PORT:-19001}
BIN=target/release/camara-webrtc

. scripts/common.sh
need node
cargo build --release --locked -q

export CAMARA_WEBRTC__NETWORK__TIME_SCALE=$TIME_SCALE
# The no-answer time, scaled, comes after every script's last step.
export CAMARA_WEBRTC__NETWORK__NO_ANSWER_SECONDS=6
export CAMARA_WEBRTC__SESSIONS__MAX_SESSIONS=$((CALLS * 3))
export CAMARA_WEBRTC__SESSIONS__MAX_SESSIONS_PER_CONSUMER=$((CALLS * 2))
export CAMARA_WEBRTC__LOG__LEVEL=warn
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
REPLICAS=1
case "$STORE" in
  memory) ;;
  redis)
    start_redis scale
    export REDIS_PORT
    REPLICAS=2
    ;;
  *) echo "usage: $0 [memory|redis]" >&2; exit 2 ;;
esac

URLS=()
SERVICE=()
for i in $(seq 0 $((REPLICAS - 1))); do
  taskset -c 0 "$BIN" serve --listen "127.0.0.1:$((PORT + i))" >/dev/null 2>&1 &
  PIDS+=($!)
  SERVICE+=($!)
  URLS+=("http://127.0.0.1:$((PORT + i))")
done
for i in $(seq 0 $((REPLICAS - 1))); do wait_ready $((PORT + i)); done
BOB=$("$BIN" token --sub tel:+17085854000 --client-id scale --scope "webrtc-registration:sessions:create \
webrtc-events:org.camaraproject.webrtc-events.v0.session-status:create webrtc-call-handling:sessions:create")
export BOB CALLS SINK_PORT
BASES=$(IFS=,; echo "${URLS[*]}")
SERVICE_PIDS=$(IFS=,; echo "${SERVICE[*]}")
export BASES SERVICE_PIDS
export SETTLE_S=$((7 * ${TIME_SCALE%.*} + 30))
echo "store: $STORE, $REPLICAS replica(s), time_scale $TIME_SCALE"
taskset -c 1 node scripts/scale.js
