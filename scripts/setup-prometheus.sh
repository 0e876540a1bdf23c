#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian package `prometheus`) for the metrics tests:
# `tests/promtool_metrics.rs` runs `promtool check metrics` and `tests/dashboards_prometheus.rs`
# starts its own Prometheus on a free loopback port.
#
# Idempotent: when both binaries are on PATH it only prints their versions. Otherwise it needs
# root and apt-get: `apt-get update` once, then the package without its recommends (which would
# pull in and start node-exporter). The package's init script would start a Prometheus on
# :9090; the tests never use it, so the install runs with service starts denied, and a daemon
# started anyway (an existing policy that allows starts) is stopped again.
set -euo pipefail

die() { echo "setup-prometheus: ERROR: $*" >&2; exit 1; }
log() { echo "setup-prometheus: $*" >&2; }

versions() {
  echo "prometheus: $(prometheus --version 2>&1 | head -n1)"
  echo "promtool: $(promtool --version 2>&1 | head -n1)"
}

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  versions
  exit 0
fi

[ "$(id -u)" = 0 ] \
  || die "prometheus/promtool are missing and installing them needs root: run 'sudo scripts/setup-prometheus.sh' (or 'sudo apt-get install prometheus')"
command -v apt-get >/dev/null 2>&1 \
  || die "prometheus/promtool are missing and apt-get is not available: install Prometheus 2.x so that 'prometheus' and 'promtool' are on PATH"

# Deny service starts during the install unless a policy is already in place.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# Written by streamstorm scripts/setup-prometheus.sh during an install.\nexit 101\n' >"$POLICY"
  chmod +x "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi

log "installing the Debian package prometheus"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends prometheus >&2 \
  || die "apt-get install prometheus failed"

# A daemon the package started (only possible when an existing policy allowed it).
PIDFILE=/run/prometheus/prometheus.pid
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "stopping the Prometheus service the package started (pid $(cat "$PIDFILE"))"
  /etc/init.d/prometheus stop >&2 || die "could not stop the packaged Prometheus service"
fi

command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
  || die "the package installed, but prometheus/promtool are not on PATH"
versions
