#!/usr/bin/env bash
# Installs the system packages Stratus needs on Debian 12, only when they are missing:
# etcd, Python's venv, and what the libvirt driver uses (the libvirt library and headers to build
# libvirt-python, qemu-img for disks, genisoimage for config drives). The libvirt daemon itself is
# `make libvirtd` (deploy/libvirtd.sh).
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || need+=(libvirt-dev)
command -v gcc >/dev/null || need+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || need+=(python3-dev)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v genisoimage >/dev/null || need+=(genisoimage)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
