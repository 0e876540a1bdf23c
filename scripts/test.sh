#!/usr/bin/env bash
# The full test suite, as CI and a newcomer run it: installs the interop clients (grpcurl,
# Python grpcio, Node grpc-js) under .interop/ and Prometheus with promtool (Debian package
# prometheus; needs root the first time), then runs every Rust test — unit, integration, interop
# and metrics — against one release build.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-nextest >/dev/null || { echo "ERROR: cargo-nextest is required (cargo install cargo-nextest)" >&2; exit 1; }
scripts/setup-interop.sh
scripts/setup-prometheus.sh
cargo nextest run --release --workspace --no-fail-fast "$@"
