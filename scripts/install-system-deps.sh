#!/usr/bin/env bash
# Installs the Debian packages the test suite drives as real peers: PostgreSQL (database suite),
# rsyslog/logger (syslog), softflowd + nfdump (NetFlow), tshark (capture cross-checks),
# systemd (systemd-analyze verify of our units), systemd-journal-remote (writes real journal files for
# the journald source tests), chromium (browser tests, driven by Playwright), fonts-dejavu-core + poppler-utils (Vietnamese PDF reports and their checks), util-linux (unshare for the offline-install test), iproute2 (network namespaces for the soak partition). Idempotent: does nothing when all are present.
set -euo pipefail

packages=(postgresql chromium fonts-dejavu-core poppler-utils rsyslog rsyslog-gnutls rsyslog-openssl softflowd nfdump tshark systemd systemd-journal-remote bsdutils util-linux iproute2)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && { echo "system packages: all present"; exit 0; }

if ! command -v apt-get >/dev/null; then
  echo "system packages missing (${missing[*]}) and apt-get is not available: install them by hand" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: installed ${missing[*]}"
