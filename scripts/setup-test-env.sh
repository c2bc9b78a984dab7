#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine (with Rust already installed) to run Phoenix's tests:
# installs missing apt packages (only when something is missing) and creates or refreshes the
# Python virtualenv of the end-to-end tests. Idempotent; safe to run on every test run.
#
# Prints nothing but progress; the venv lives in ${PHOENIX_CACHE:-$HOME/.cache/phoenix}/venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PHOENIX_CACHE:-$HOME/.cache/phoenix}"
VENV="$CACHE/venv"
REQS="$ROOT/tests/e2e/requirements.txt"

log() { printf '    %s\n' "$*"; }

# ---- apt packages, installed only if missing ---------------------------------------------------
missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)          # C code in zstd-sys, ring
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# Debian ships venv/ensurepip separately; `python3 -m venv` fails without it.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=("python3-venv")
fi
command -v timeout >/dev/null 2>&1 || missing+=(coreutils)

if ((${#missing[@]})); then
    log "installing apt packages: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # python3-venv on Debian is versioned (python3.X-venv); install the matching one too.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "python${pyver}-venv"
    fi
else
    log "apt packages: nothing missing"
fi

# ---- Python virtualenv ------------------------------------------------------------------------------
# Rebuilt when requirements.txt or the interpreter changes; otherwise reused as is.
stamp="$VENV/.phoenix-requirements"
want="$(sha256sum "$REQS" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$VENV/bin/python" ]] && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]] \
    && "$VENV/bin/python" -c 'import pytest' >/dev/null 2>&1; then
    log "python venv: up to date ($VENV)"
else
    log "python venv: installing tests/e2e/requirements.txt into $VENV"
    mkdir -p "$CACHE"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" >"$stamp"
fi
