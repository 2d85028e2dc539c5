#!/usr/bin/env bash
# Create a separate virtualenv holding OpenStack Nova, for bench/nova_baseline.py.
#
#   bash bench/setup_nova_venv.sh [DIR]        # DIR defaults to /tmp/nova-venv
#
# Nova is only installed and imported from there; nothing of it is copied into this repo.
# NOVA_VERSION overrides the pinned release.
set -euo pipefail

DIR="${1:-/tmp/nova-venv}"
NOVA_VERSION="${NOVA_VERSION:-34.0.0}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"  # nova 34.0.0 runs on 3.11

if [ ! -x "$DIR/bin/python" ]; then
    "$PYTHON" -m venv "$DIR"
fi
"$DIR/bin/python" -m pip install --quiet --upgrade pip
"$DIR/bin/python" -m pip install --quiet "nova==$NOVA_VERSION"
"$DIR/bin/python" -W ignore -c 'import nova.scheduler.host_manager, importlib.metadata as m; print("nova", m.version("nova"), "in", "'"$DIR"'")'
