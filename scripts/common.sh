# Sourced by the measuring scripts (loadtest.sh, memory.sh, instructions.sh): the set-up they share.

# Makes sure each command is on PATH, installing the Debian package of the same name when missing.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq "$tool"; else sudo apt-get install -y -qq "$tool"; fi
  done
}

# Waits (up to 30 s, for a binary under valgrind) until "$BIN" on port $1 answers /health/ready.
wait_ready() {
  for _ in $(seq 100); do
    "$BIN" healthcheck --url "http://127.0.0.1:$1/health/ready" 2>/dev/null && break
    sleep 0.3
  done
}

# Starts redis-server on $REDIS_PORT, pinned to core 1, without persistence (its pid joins the
# PIDS array the caller's trap kills), and points the service at it under a key prefix named
# after $1 and this shell.
start_redis() {
  need redis-server
  taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --loglevel warning >/dev/null &
  PIDS+=($!)
  export CAMARA_WEBRTC__STORE__BACKEND=redis
  export CAMARA_WEBRTC__STORE__REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
  export CAMARA_WEBRTC__STORE__KEY_PREFIX="$1:$$:"
}
