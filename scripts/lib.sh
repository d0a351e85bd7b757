# Shared by scripts/demo, scripts/test and scripts/bench: a pinned moto in a project venv, moto
# started on a free 127.0.0.1 port and stopped by its pid, and one cargo target dir outside the
# clone. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOTO_VERSION=5.2.1
# scripts/moto_server.py keeps connections open by overriding parts of werkzeug's request handler,
# so the werkzeug under moto is pinned too.
WERKZEUG_VERSION=3.1.9
VENV="$ROOT/.venv"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rectify/target}
RECTIFY="$CARGO_TARGET_DIR/debug/rectify"

# Bold only when stdout is a terminal and NO_COLOR is unset: a log file or a CI capture gets
# plain text.
say() {
  if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    printf '\n\033[1m==> %s\033[0m\n' "$*"
  else
    printf '\n==> %s\n' "$*"
  fi
}

ensure_moto() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit((m.version('moto'), m.version('werkzeug')) != ('$MOTO_VERSION', '$WERKZEUG_VERSION'))" 2>/dev/null; then
    say "installing moto[server]==$MOTO_VERSION (werkzeug==$WERKZEUG_VERSION) into .venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "werkzeug==$WERKZEUG_VERSION"
  fi
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts moto and exports the AWS variables every client (rectify, boto3, the tests) reads.
start_moto() {
  local port log
  port=$(free_port)
  log=${MOTO_LOG:-$(mktemp -t rectify-moto.XXXXXX.log)}
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" 127.0.0.1 "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  trap stop_moto EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_DEFAULT_REGION=$AWS_REGION
  unset AWS_PROFILE AWS_SESSION_TOKEN
  # Wait for the server to answer, with a deadline.
  if ! "$VENV/bin/python" - "$AWS_ENDPOINT_URL" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1] + "/moto-api/", time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=2)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
  then
    echo "moto did not start; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "moto $MOTO_VERSION on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}

build_debug() {
  say "building rectify (debug; target dir $CARGO_TARGET_DIR)"
  cargo build --locked --bins
}
