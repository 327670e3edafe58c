#!/usr/bin/env bash
# Runs Strata's whole test suite on a fresh Debian machine: installs the real peers the tests
# talk to (Prometheus 2.42 + promtool, Alertmanager, node-exporter, haproxy, dnsmasq, and Chromium with
# chromedriver for the web UI tests, from Debian; Python
# clients from PyPI), then runs every cargo test target. The S3 server (s3s-fs 0.14.1) is a
# dev-dependency and runs inside the tests, so it needs no install step.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(prometheus prometheus-alertmanager prometheus-node-exporter haproxy chromium chromium-driver fonts-dejavu-core dnsmasq-base)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these services when systemd runs; the tests start their own copies on free ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

python3 -m pip install --quiet --disable-pip-version-check prometheus-client prometheus-api-client >/dev/null 2>&1 \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages prometheus-client prometheus-api-client

export CARGO_TERM_COLOR=never
cargo test --locked --all-targets "$@"
