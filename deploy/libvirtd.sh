#!/usr/bin/env bash
# Makes sure a libvirtd serving qemu:///system runs on this Debian 12 machine (no systemd).
# Idempotent: when the daemon already answers it does nothing and exits 0 at once.
#
# Steps, each only when needed: install the packages; create the groups/user libvirt's
# compiled-in defaults look up; write a minimal /etc/libvirt/qemu.conf (run QEMU as root);
# start virtlogd; start libvirtd in the foreground under deploy/subreaper.py (a parent that
# sets PR_SET_CHILD_SUBREAPER and reaps QEMU at once: `virsh destroy` ~0.2 s instead of
# ~1.5 s with this machine's slow PID 1), detached, logging to $LOG; wait until it answers.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

URI=qemu:///system
LOG=/var/log/libvirt/libvirtd.log
VIRTLOGD_SOCK=/run/libvirt/virtlogd-sock
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils libvirt-clients
      libvirt-dev pkg-config genisoimage)   # NOT libvirt-daemon-system: it pulls in systemd
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

did=()

# Answers when the daemon is up (virsh exists only once the packages are installed).
daemon_up() { command -v virsh >/dev/null && virsh -c "$URI" version >/dev/null 2>&1; }

# Fast path: nothing to do.
if daemon_up; then
  pid=$(cat /run/libvirtd.pid 2>/dev/null || pgrep -o -x libvirtd || echo '?')
  ppid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  echo "libvirtd.sh: already running (libvirtd pid $pid, parent pid ${ppid:-?}); nothing to do"
  exit 0
fi

# 1. Packages, only those missing (apt-get update only when installing).
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "libvirtd.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  did+=("installed ${#missing[@]} packages")
fi

# 2. Groups and user: libvirtd looks up its compiled-in default user/group before it reads
#    qemu.conf and refuses to start when they do not exist.
for g in kvm libvirt libvirt-qemu; do
  getent group "$g" >/dev/null || { groupadd -r "$g"; did+=("group $g"); }
done
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
  did+=("user libvirt-qemu")
fi
mkdir -p /var/log/libvirt /etc/libvirt

# 3. qemu.conf: run QEMU as root (no dynamic ownership juggling of image files needed).
QCONF=/etc/libvirt/qemu.conf
if ! { grep -qx 'user = "root"' "$QCONF" && grep -qx 'group = "root"' "$QCONF"; } 2>/dev/null; then
  if [ -f "$QCONF" ]; then   # keep whatever else is there, replace only user/group
    sed -i -E '/^[[:space:]]*(user|group)[[:space:]]*=/d' "$QCONF"
  else
    echo '# Written by deploy/libvirtd.sh: QEMU runs as root on this machine.' > "$QCONF"
  fi
  printf 'user = "root"\ngroup = "root"\n' >> "$QCONF"
  did+=("wrote $QCONF")
fi

# 4. virtlogd: without it virDomainCreate fails on $VIRTLOGD_SOCK.
sock_served() {
  "$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1])' \
    "$1" 2>/dev/null
}
if ! sock_served "$VIRTLOGD_SOCK"; then
  virtlogd -d || { echo "libvirtd.sh: virtlogd -d failed" >&2; exit 1; }
  for _ in $(seq 50); do sock_served "$VIRTLOGD_SOCK" && break; sleep 0.1; done
  sock_served "$VIRTLOGD_SOCK" || { echo "libvirtd.sh: virtlogd did not come up" >&2; exit 1; }
  did+=("started virtlogd")
fi

# 5. libvirtd, in the foreground (so its stderr is the log) under the subreaper, detached
#    from this shell (setsid + nohup) so the script can return.
#    `libvirtd -d` is not used: it exits 0 even when the daemon dies right after forking.
echo "=== $(date -Is) deploy/libvirtd.sh starting libvirtd" >> "$LOG"
setsid nohup "$PY" "$REPO/deploy/subreaper.py" /usr/sbin/libvirtd >> "$LOG" 2>&1 < /dev/null &
parent=$!   # setsid execs in place (we are not a process-group leader), so this is the parent

# 6. Wait up to ~30 s for it to answer; fail loudly otherwise.
t0=$(date +%s.%N)
for _ in $(seq 300); do
  daemon_up && break
  kill -0 "$parent" 2>/dev/null || break   # died: no point waiting
  sleep 0.1
done
if ! daemon_up; then
  echo "libvirtd.sh: libvirtd did not come up (parent pid $parent); tail of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
pid=$(pgrep -o -P "$parent" -x libvirtd || echo '?')
did+=("started libvirtd in ${secs}s")
summary=$(printf '%s, ' "${did[@]}")
echo "libvirtd.sh: ${summary%, } (libvirtd pid $pid, subreaper parent pid $parent, log $LOG)"
