#!/usr/bin/env bash
# Set up everything courier-routing needs on a fresh Debian/Ubuntu machine with Python 3.11+:
# OS packages (when missing and we may install them), a virtual environment in .venv, and the
# project with its extras. Safe to run again: it only installs what is missing.
# Usage: source scripts/bootstrap.sh [extras]     (extras default: dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-dev}"
VENV="${COURIER_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

# OS packages: the venv module (Debian splits it out), redis-server for the service and its tests,
# and for the tests (dev extras) Debian's Chromium, which Playwright drives (no browser download).
missing=()
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then missing+=(python3-venv); fi
if ! command -v redis-server >/dev/null 2>&1; then missing+=(redis-server); fi
if [[ ",$EXTRAS," == *",dev,"* ]] && [ -z "${COURIER_CHROMIUM:-}" ] \
    && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
if ((${#missing[@]})); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing OS packages: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
        echo "installing OS packages with sudo: ${missing[*]}" >&2
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: please install ${missing[*]} with your package manager" >&2
    fi
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "error: Python 3.11 or newer is needed ($("$PYTHON" --version))" >&2
    exit 2
}
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)-$EXTRAS"
if [ ! -f "$stamp" ]; then
    echo "installing courier-routing[$EXTRAS] into $VENV (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
