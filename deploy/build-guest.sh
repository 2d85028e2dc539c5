#!/usr/bin/env bash
# Builds the tiny bootable test guest: OUTDIR/tiny.qcow2 (and the same disk as OUTDIR/tiny.raw).
#
#   bash deploy/build-guest.sh [OUTDIR]   # default build/guest; a relative OUTDIR is taken
#                                         # relative to the repo root, not the caller's cwd
#
# The disk is an unpartitioned FAT file system ("superfloppy") with SYSLINUX in its boot
# sector: SeaBIOS boots sector 0 of the first virtio disk, SYSLINUX loads Debian's cloud
# kernel and an initramfs with busybox and a handful of modules. The initramfs /init reads
# an OpenStack config drive (ISO 9660, label config-2) attached as a read-only virtio disk
# and prints, on the serial console (ttyS0):
#   stratus-guest: name=<meta_data.json "name"> uuid=<meta_data.json "uuid">
#   stratus-guest: user_data begins
#   <openstack/latest/user_data, raw>
#   stratus-guest: user_data ends
#   stratus-guest: ready
# (or "stratus-guest: no config drive" then "stratus-guest: ready"), then idles with
# busybox acpid running so an ACPI power-button press (virsh shutdown/reboot) powers it off.
#
# No loop devices, mounts or root-only tricks beyond mknod: everything is built in files
# with dpkg-deb, cpio, mkfs.vfat, mtools and the mtools-based `syslinux` installer.
# Idempotent: skipped when the output exists and was built by this very script (its
# sha256 is stored next to the output).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
OUT=${1:-build/guest}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

STAMP="$OUT/.build-guest.sha256"
HASH=$(sha256sum "$SELF" | cut -d' ' -f1)
if [ -f "$OUT/tiny.qcow2" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$HASH" ]; then
  echo "build-guest: $OUT/tiny.qcow2 is up to date"
  exit 0
fi

# Kernel command line. Measured under TCG (see deploy/guest-domain-example.xml for numbers):
#   console=ttyS0        the serial port libvirt writes to a file
#   quiet loglevel=1     kernel messages on an emulated UART cost boot time; level 1 still
#                        shows KERN_EMERG (a panic), so a guest that dies is not silent
#   cryptomgr.notests    skips the crypto self-tests: ~0.2 s of a ~1.3 s kernel boot
#   nokaslr              the decompressor skips relocating the kernel: ~0.08 s
#   mitigations=off      Spectre/Meltdown mitigations only slow down an emulated CPU
#   tsc=reliable no_timer_check 8250.nr_uarts=1 i8042.noaux   skip checks and probes
# Tried and rejected: pci=noacpi or acpi=noirq (ACPI PCI link setup costs ~0.1 s per virtio
# device on the 'pc' machine, but both make virtio_pci's MSI-X setup WARN in dmesg).
CMDLINE="console=ttyS0 quiet loglevel=1 cryptomgr.notests nokaslr mitigations=off tsc=reliable no_timer_check 8250.nr_uarts=1 i8042.noaux"

# Modules /init loads, in this order after dependencies are resolved (modules.dep decides):
# the ACPI power button with evdev so that busybox acpid sees the button as
# /dev/input/event* (first: a press before acpid runs is lost, so start it early), then
# virtio disks (the boot disk, the config drive) and ISO 9660.
WANT_MODULES=(button evdev virtio_pci virtio_blk isofs)

# --- build tools (installed normally; the guest's own packages are only downloaded) ------
need=()
command -v syslinux >/dev/null || need+=(syslinux)
[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || need+=(syslinux-common)
command -v mcopy >/dev/null || need+=(mtools)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v depmod >/dev/null || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
command -v qemu-img >/dev/null || need+=(qemu-utils)
export DEBIAN_FRONTEND=noninteractive
apt_updated=
if [ ${#need[@]} -gt 0 ]; then
  echo "build-guest: installing ${need[*]}"
  apt-get update -qq; apt_updated=1
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- download and unpack the kernel and busybox ------------------------------------------
kpkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null |
         awk '/Depends: linux-image-[0-9].*-cloud-amd64/ {print $2; exit}'; }
KPKG=$(kpkg)
if [ -z "$KPKG" ] && [ -z "$apt_updated" ]; then apt-get update -qq; KPKG=$(kpkg); fi
[ -n "$KPKG" ] || { echo "build-guest: cannot find the cloud kernel package" >&2; exit 1; }

WORK=$(mktemp -d /tmp/build-guest.XXXXXX)
chmod 755 "$WORK"   # apt downloads as _apt, which must reach $WORK/dl
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dl" "$WORK/kernel" "$WORK/busybox" "$WORK/root"
chown _apt "$WORK/dl" 2>/dev/null || true   # else apt warns that it downloads unsandboxed
(cd "$WORK/dl" && apt-get download -qq "$KPKG" busybox-static)
dpkg-deb -x "$WORK"/dl/linux-image-*.deb "$WORK/kernel"
dpkg-deb -x "$WORK"/dl/busybox-static_*.deb "$WORK/busybox"
KVER=$(ls "$WORK/kernel/lib/modules")
VMLINUZ="$WORK/kernel/boot/vmlinuz-$KVER"
MODDIR="$WORK/kernel/lib/modules/$KVER"
echo "build-guest: kernel $KVER, busybox $(dpkg-deb -f "$WORK"/dl/busybox-static_*.deb Version)"

# --- module load order from modules.dep ----------------------------------------------------
# modules.dep lines: "kernel/a/b.ko: kernel/dep1.ko kernel/dep2.ko" (deps listed so that the
# last one must be loaded first). Emit each module after its dependencies, once.
depmod -b "$WORK/kernel" "$KVER"
ORDER=()
declare -A seen=()
add_module() {  # $1 = path relative to $MODDIR (kernel/...ko)
  local rel=$1 dep deps
  [ -n "${seen[$rel]:-}" ] && return
  seen[$rel]=1
  deps=$(awk -F': *' -v m="$rel" '$1 == m {print $2}' "$MODDIR/modules.dep")
  for dep in $deps; do add_module "$dep"; done
  ORDER+=("$rel")
}
for m in "${WANT_MODULES[@]}"; do
  rel=$(awk -F: -v m="$m" '{n=$1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n)}
                          n == m {print $1; exit}' "$MODDIR/modules.dep")
  if [ -n "$rel" ]; then
    add_module "$rel"
  elif grep -qE "/${m//_/[-_]}\.ko" "$MODDIR/modules.builtin"; then
    echo "build-guest: $m is built into the kernel"
  else
    echo "build-guest: module $m not found" >&2; exit 1
  fi
done

# --- initramfs tree ------------------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,dev,proc,sys,mnt,tmp,etc/acpi/PWRF,lib/modules,var/run,var/log}
cp "$WORK/busybox/bin/busybox" "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
mknod -m 600 "$R/dev/console" c 5 1   # the kernel opens it for init's stdio before /init runs
: > "$R/lib/modules/load-order"
for rel in "${ORDER[@]}"; do
  name=$(basename "$rel"); name=${name%%.ko*}
  case "$rel" in
    *.ko) cp "$MODDIR/$rel" "$R/lib/modules/$name.ko" ;;
    *.ko.xz) xz -dc "$MODDIR/$rel" > "$R/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$MODDIR/$rel" > "$R/lib/modules/$name.ko" ;;
    *) echo "build-guest: unknown module format $rel" >&2; exit 1 ;;
  esac
  echo "$name" >> "$R/lib/modules/load-order"
done
echo "build-guest: modules: $(tr '\n' ' ' < "$R/lib/modules/load-order")"

# busybox acpid maps the power key (EV_KEY KEY_POWER) to the action "PWRF/00000080" and runs
# /etc/acpi/PWRF/00000080. poweroff -f calls reboot(RB_POWER_OFF) directly: no init needed.
cat > "$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "stratus-guest: power button, powering off" > /dev/console
sync
poweroff -f
EOF
chmod 755 "$R/etc/acpi/PWRF/00000080"

cat > "$R/init" <<'EOF'
#!/bin/sh
# PID 1 of the Stratus tiny guest (busybox sh). It must never exit.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# Drivers: ACPI power button + evdev, virtio disks, ISO 9660 (order computed at build time).
while read -r m; do
  insmod "/lib/modules/$m.ko" || echo "stratus-guest: insmod $m failed"
  # ACPI power button -> acpid -> /etc/acpi/PWRF/00000080 -> poweroff -f. Started as soon
  # as the button's /dev/input/event* exists: a press before that is lost.
  [ "$m" = evdev ] && acpid -c /etc/acpi -l /var/log/acpid.log
done < /lib/modules/load-order
# NOTE: a power-button press before button.ko is loaded is lost (installing the ACPI handler
# clears the latched event), i.e. `virsh shutdown` in the first ~2 s after create does
# nothing: whoever shuts the guest down must retry the request or fall back to destroy.

# Prints the top-level string value of key $1 in the JSON file $2 (a small JSON walker:
# sed cannot tell the top-level "name" from a nested one, e.g. inside "keys").
json_get() {
  awk -v want="$1" '
    { s = s $0 "\n" }
    END {
      n = length(s); depth = 0; isval = 0; key = ""
      for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (c == "\"") {
          str = ""
          for (i++; i <= n; i++) {
            d = substr(s, i, 1)
            if (d == "\\") { i++; e = substr(s, i, 1)
              # \uXXXX (json.dumps escapes non-ASCII) is kept as written
              str = str (e == "n" ? "\n" : e == "t" ? "\t" : e == "u" ? "\\u" : e); continue }
            if (d == "\"") break
            str = str d
          }
          if (depth == 1) {
            if (isval) { if (key == want) { print str; exit } isval = 0 }
            else key = str
          }
        } else if (c == "{" || c == "[") depth++
        else if (c == "}" || c == "]") depth--
        else if (c == ":" && depth == 1) isval = 1
        else if (c == ",") isval = 0
      }
    }' "$2"
}

# The config drive: whichever disk holds an ISO 9660 file system with the OpenStack layout.
found=
for dev in /dev/vd? /dev/sr?; do
  [ -b "$dev" ] || continue
  mount -t iso9660 -o ro "$dev" /mnt 2>/dev/null || continue
  if [ -f /mnt/openstack/latest/meta_data.json ]; then found=$dev; break; fi
  umount /mnt
done

if [ -n "$found" ]; then
  md=/mnt/openstack/latest/meta_data.json
  ud=/mnt/openstack/latest/user_data
  # printf, not echo: busybox echo would turn a backslash in the name into an escape
  printf 'stratus-guest: name=%s uuid=%s\n' "$(json_get name $md)" "$(json_get uuid $md)"
  echo "stratus-guest: user_data begins"
  if [ -f $ud ]; then
    cat $ud
    # keep the end marker on its own line when user_data lacks a final newline
    [ -s $ud ] && [ -n "$(tail -c 1 $ud)" ] && echo
  fi
  echo "stratus-guest: user_data ends"
  umount /mnt
else
  echo "stratus-guest: no config drive"
fi
echo "stratus-guest: ready"

while :; do sleep 3600; done
EOF
chmod 755 "$R/init"

# newc cpio, gzip: gzip decompresses faster than xz on an emulated CPU.
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 > "$WORK/initrd.gz"

# --- the boot disk ---------------------------------------------------------------------------
# SERIAL 0: SYSLINUX also prints its banner on ttyS0 (~0.1 s after create), so a console log
# that stays empty means the firmware or boot sector failed; one with only the banner, that
# the kernel did not get to /init ("Booting kernel failed" = too little memory to load it).
# PROMPT 0 / TIMEOUT 0: boot at once.
cat > "$WORK/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND $CMDLINE
EOF
# FAT image sized to its contents plus 2 MiB slack (ldlinux.sys/.c32 and FAT overhead).
kb=$(( ($(stat -c %s "$VMLINUZ") + $(stat -c %s "$WORK/initrd.gz")) / 1024 + 2048 ))
kb=$(( (kb + 1023) / 1024 * 1024 ))   # whole MiB
RAW="$WORK/tiny.raw"
mkfs.vfat -C -n STRATUS "$RAW" "$kb" >/dev/null
syslinux --install "$RAW"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$RAW" "$VMLINUZ" ::vmlinuz
mcopy -i "$RAW" "$WORK/initrd.gz" ::initrd.gz
mcopy -i "$RAW" "$WORK/syslinux.cfg" ::syslinux.cfg

qemu-img convert -f raw -O qcow2 "$RAW" "$WORK/tiny.qcow2"
echo "$CMDLINE" > "$WORK/cmdline"
cp "$VMLINUZ" "$WORK/vmlinuz"

# Into OUT: copy next to the target, then rename, so a QEMU that has the old file open (as
# a backing file) keeps reading the old inode. vmlinuz, initrd.gz and cmdline are there for
# direct kernel boot (<kernel>/<initrd>/<cmdline>), if someone wants to skip the bootloader.
for f in tiny.qcow2 tiny.raw vmlinuz initrd.gz cmdline; do
  cp "$WORK/$f" "$OUT/.$f.new"
  mv -f "$OUT/.$f.new" "$OUT/$f"
done
echo "$HASH" > "$STAMP"
echo "build-guest: wrote $OUT/tiny.qcow2 ($(du -h "$OUT/tiny.qcow2" | cut -f1), kernel $KVER, initrd $(du -h "$OUT/initrd.gz" | cut -f1))"
