#!/bin/bash
# Build the 3PlugPOS appliance image and its signed update bundle from Debian 12 packages.
#
#   sudo image/build.sh --pos-bin target/release/pos --version 1.0.0 --out image/out \
#        --signing-key KEY.pem --signing-cert CERT.pem --keyring CA.pem
#
# Produces in --out:
#   3plugpos-VERSION.img[.zst]  the disk image to flash (`pos image flash`): GPT with
#                               ESP (GRUB, boot counters), rootfs-a, rootfs-b, pos-data
#   3plugpos-VERSION.raucb      the signed RAUC update bundle of the same system
#   rootfs-VERSION.img          the slot image (squashfs) inside both
#
# Needs root (mmdebstrap's root mode, file ownership in the tree) but no KVM, no loop devices
# and no mounts of the image: file systems are made from directories (mksquashfs, mkfs.vfat +
# mtools) and placed into the disk image with dd. Debian's packages come from the host's apt
# sources (deb.debian.org by default); the base tree is cached by its package list.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pos_bin= version= out= key= cert= keyring= tech_key= grub_hash= cache= broken=0 comp_level=9
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --pos-bin) pos_bin=$2; shift 2 ;;
        --version) version=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --signing-key) key=$2; shift 2 ;;
        --signing-cert) cert=$2; shift 2 ;;
        --keyring) keyring=$2; shift 2 ;;
        # The technician's SSH public key, accepted in service mode only.
        --technician-key) tech_key=$2; shift 2 ;;
        # grub-mkpasswd-pbkdf2's hash of the technician's GRUB password (service mode entry,
        # editing boot entries). Without it the password is random: nobody can.
        --grub-password-hash) grub_hash=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        # Faster, larger slot images (gzip level 1) for development builds.
        --fast) comp_level=1; shift ;;
        # Test only: a system whose pos service never becomes healthy (rollback test).
        --broken-health) broken=1; shift ;;
        -h|--help) usage ;;
        *) echo "unknown option $1" >&2; usage ;;
    esac
done
[ -n "$pos_bin" ] && [ -n "$version" ] && [ -n "$out" ] || usage
[ -n "$key" ] && [ -n "$cert" ] && [ -n "$keyring" ] || {
    echo "error: --signing-key, --signing-cert and --keyring are needed (see image/README.md)" >&2
    exit 2
}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "error: --version must be MAJOR.MINOR.PATCH" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: run as root (mmdebstrap root mode)" >&2; exit 2; }
for tool in mmdebstrap mksquashfs mkfs.vfat mcopy sfdisk grub-mkstandalone grub-editenv rauc zstd; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is missing: sudo image/install-build-deps.sh" >&2
        exit 2
    }
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${cache:-$out/cache}
mkdir -p "$cache"
work=$(mktemp -d "$out/.work.XXXXXX")
# Never delete through a mount (a killed chroot step could leave /proc or /dev bound inside).
cleanup() {
    if grep -q " $work/" /proc/self/mounts; then
        echo "warning: mounts left under $work; not deleting it" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
t0=$(date +%s)

# Partition sizes (MiB). The data partition starts small and grows to the disk at first boot.
ESP_MB=64
SLOT_MB=768
DATA_MB=64
COMPATIBLE=3plugpos-x86_64

# --- 1. The base tree: Debian packages and an initramfs that mounts a squashfs root ---------
packages=$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | sort | tr '\n' ',' | sed 's/,$//')
base_id=$( (echo "$packages"; cat "$here/initramfs-modules") | sha256sum | cut -c1-16)
base="$cache/base-$base_id.tar"
if [ ! -f "$base" ]; then
    log "mmdebstrap: Debian 12 base tree ($(echo "$packages" | tr ',' '\n' | wc -l) packages)"
    mmdebstrap --mode=root --format=tar --variant=apt --include="$packages" \
        --customize-hook="cat '$here/initramfs-modules' >> \"\$1/etc/initramfs-tools/modules\"" \
        --customize-hook='chroot "$1" update-initramfs -u -k all' \
        --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*' \
        bookworm "$base.partial"
    mv "$base.partial" "$base"
else
    log "base tree from cache: $base"
fi
root="$work/rootfs"
mkdir "$root"
tar -C "$root" -xf "$base"

# --- 2. The appliance: pos, its units, lock-down -------------------------------------------
log "customising the tree (version $version)"
install -m 0755 "$pos_bin" "$root/usr/bin/pos"
cp -a "$here/overlay/." "$root/"
install -m 0644 "$here/../config/terminal.toml" "$here/../config/hub.toml" "$root/etc/pos/"
mkdir -p "$root/usr/share/doc/3plugpos"
cp "$here/../docs/"*.md "$root/usr/share/doc/3plugpos/"
install -m 0644 "$keyring" "$root/etc/rauc/keyring.pem"
if [ -n "$tech_key" ]; then
    install -m 0644 "$tech_key" "$root/etc/pos/technician_keys"
else
    : > "$root/etc/pos/technician_keys"
fi
if [ "$broken" = 1 ]; then
    # The rollback test's bad update: the role services exit at once, the health check fails.
    for unit in pos-terminal pos-hub pos-setup; do
        mkdir -p "$root/etc/systemd/system/$unit.service.d"
        printf '[Service]\nExecStart=\nExecStart=/bin/false\n' \
            > "$root/etc/systemd/system/$unit.service.d/broken-for-test.conf"
    done
fi
cat >> "$root/etc/os-release" <<EOF
IMAGE_ID=3plugpos
IMAGE_VERSION=$version
EOF
chroot "$root" /bin/sh -e <<'EOF'
# The service user: owns /var/lib/pos, may use the screen, touch input, serial/USB devices.
useradd --system --home-dir /var/lib/pos --no-create-home --shell /usr/sbin/nologin \
    --user-group --groups video,input,dialout,lp,render pos
systemctl enable pos-data.service pos-setup.service pos-terminal.service pos-hub.service \
    pos-health.service pos-service-mode.service nftables.service systemd-networkd.service \
    pos-usb-mount@.service 2>/dev/null || true
systemctl enable pos-data.service pos-setup.service pos-terminal.service pos-hub.service \
    pos-health.service pos-service-mode.service nftables.service systemd-networkd.service
# No shell on any screen or serial port: the kiosk owns tty1, the serial console only prints.
systemctl mask getty@tty1.service serial-getty@ttyS0.service autovt@.service console-getty.service
# SSH only in service mode (pos-service-mode.service starts it for one boot).
systemctl disable ssh.service ssh.socket 2>/dev/null || true
rm -f /etc/ssh/ssh_host_*
# machine-id comes from the kernel command line (systemd.machine_id=, kept in the GRUB env).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Mount points on the read-only root.
mkdir -p /boot/efi /data /var/lib/pos /media
chown pos:pos /var/lib/pos
# Locked: no passwords anywhere.
passwd -l root >/dev/null
EOF
# The kernel and initramfs for GRUB, at fixed names inside the slot.
ln -sf "$(basename "$(ls "$root"/boot/vmlinuz-* | head -1)")" "$root/boot/vmlinuz"
ln -sf "$(basename "$(ls "$root"/boot/initrd.img-* | head -1)")" "$root/boot/initrd.img"
rm -rf "$root/var/log/"* "$root/var/cache/apt/archives/"*.deb "$root/tmp/"*

# --- 3. The slot image (squashfs: GRUB 2.06 reads it, erofs it cannot) -----------------------
log "mksquashfs: the slot image"
slot="$out/rootfs-$version.img"
mksquashfs "$root" "$slot" -noappend -comp gzip -Xcompression-level "$comp_level" -quiet -no-progress
slot_bytes=$(stat -c %s "$slot")
if [ "$slot_bytes" -gt $((SLOT_MB * 1024 * 1024)) ]; then
    echo "error: the slot image ($((slot_bytes >> 20)) MiB) is larger than a slot ($SLOT_MB MiB)" >&2
    exit 1
fi

# --- 4. The ESP: GRUB with the A/B script built in, the boot counters -----------------------
log "ESP: GRUB (standalone EFI) and grubenv"
if [ -z "$grub_hash" ]; then
    pw=$(head -c 24 /dev/urandom | base64)
    grub_hash=$(printf '%s\n%s\n' "$pw" "$pw" | grub-mkpasswd-pbkdf2 | sed -n 's/.* is //p')
fi
{
    echo "# Only the technician may start service mode or edit a boot entry (init=/bin/sh)."
    echo 'set superusers="technician"'
    echo "password_pbkdf2 technician $grub_hash"
    cat "$here/grub/grub.cfg"
} > "$work/grub.cfg"
grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" \
    --modules="part_gpt fat squash4 linux loadenv regexp test echo normal password_pbkdf2" \
    "boot/grub/grub.cfg=$work/grub.cfg"
grub-editenv "$work/grubenv" create
grub-editenv "$work/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
esp="$work/esp.img"
truncate -s "${ESP_MB}M" "$esp"
mkfs.vfat -F 32 -n ESP "$esp" >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/pos
mcopy -i "$esp" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$work/grubenv" ::/EFI/BOOT/grubenv

# --- 5. The disk image ---------------------------------------------------------------------
log "disk image"
img="$out/3plugpos-$version.img"
total_mb=$((1 + ESP_MB + 2 * SLOT_MB + DATA_MB + 1))
rm -f "$img"
truncate -s "${total_mb}M" "$img"
sfdisk --quiet "$img" <<EOF
label: gpt
first-lba: 2048
start=1MiB, size=${ESP_MB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
size=${SLOT_MB}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="rootfs-a"
size=${SLOT_MB}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="rootfs-b"
size=${DATA_MB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="pos-data"
EOF
dd if="$esp" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$slot" of="$img" bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
# What is handed out: `pos image flash` writes the .zst without unpacking it first.
zstd -q -T0 -6 -f "$img" -o "$img.zst"

# --- 6. The signed update bundle ------------------------------------------------------------
log "RAUC bundle"
bdir="$work/bundle"
mkdir "$bdir"
cp "$slot" "$bdir/rootfs.img"
cat > "$bdir/manifest.raucm" <<EOF
[update]
compatible=$COMPATIBLE
version=$version
description=3PlugPOS appliance system $version
build=$(date -u +%Y%m%dT%H%M%SZ)

[bundle]
format=verity

[image.rootfs]
filename=rootfs.img
EOF
rm -f "$out/3plugpos-$version.raucb"
rauc bundle --cert="$cert" --key="$key" "$bdir" "$out/3plugpos-$version.raucb" >/dev/null

t1=$(date +%s)
cat > "$out/build-$version.txt" <<EOF
version=$version
build_seconds=$((t1 - t0))
image_bytes=$(stat -c %s "$img")
image_allocated_bytes=$(($(stat -c %b "$img") * 512))
image_zst_bytes=$(stat -c %s "$img.zst")
slot_image_bytes=$slot_bytes
bundle_bytes=$(stat -c %s "$out/3plugpos-$version.raucb")
EOF
log "done in $((t1 - t0)) s: $img ($((slot_bytes >> 20)) MiB system), $out/3plugpos-$version.raucb"
