#!/usr/bin/env bash
# Installs the system packages Stratus needs on Debian 12, only when they are missing.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
