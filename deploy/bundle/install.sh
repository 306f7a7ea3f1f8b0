#!/bin/sh
# Offline installer of the SOC platform from this bundle (built by `soc package`).
# Usage: sudo ./install.sh [--prefix /opt/soc/venv] [--python python3.11] [--agent]
#   default: everything the bundle's Linux set holds (the server extra, or the agent when the
#   bundle was built with --agent-only); --agent: the agent only, from a full bundle.
# Nothing is fetched from the network: pip runs with --no-index from wheelhouse/linux.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/soc/venv
python=python3
role=bundle
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --agent) role=agent; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

echo "checking the bundle against SHA256SUMS"
(cd "$here" && sha256sum --quiet --strict -c SHA256SUMS) || { echo "the bundle is damaged or altered" >&2; exit 1; }

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "$python is older than 3.11" >&2; exit 2; }
[ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"

pip="$prefix/bin/python -m pip --disable-pip-version-check --no-input"
if [ "$role" = agent ]; then
  # The agent and its accelerators: pip picks the dependencies from the bundle (checked above).
  $pip install --no-index --find-links "$here/wheelhouse/linux" "soc-platform[fast,flows]"
else
  # Exactly the locked wheels, each checked against its SHA-256.
  $pip install --no-index --find-links "$here/wheelhouse/linux" --require-hashes \
    -r "$here/requirements-linux.txt"
fi

echo "installed: $("$prefix/bin/soc" --version)"
echo "next: see $here/deploy/README.md (service users, units, configuration)"
