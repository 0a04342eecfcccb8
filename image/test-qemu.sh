#!/bin/bash
# The appliance image's end-to-end test: build the image and two update bundles, boot the image
# under QEMU (UEFI, virtio disk, the std VGA the kiosk draws on) to the "pos ready" marker on
# the serial console, apply a signed update from a USB stick, then a bad update that fails its
# trial boot and must roll back by itself; on the way: corrupt, unsigned-by-us and downgrade
# bundles are refused, and a power cut in the middle of an update leaves the old system booting.
#
#   sudo image/test-qemu.sh [--accel kvm|tcg] [--out DIR] [--pos-bin PATH] [--keep] [--fast]
#
# --accel: kvm when /dev/kvm works (default), tcg = software emulation (slower, same steps).
# Prints each step with its time and, at the end, the figures (image size, build time, boot
# time to "pos ready" against the bare kernel's boot time in the same run, update apply time).
# Needs root and the build tools: image/install-build-deps.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
accel=auto out="$repo/image/out" pos_bin= keep=0 fast=()
while [ $# -gt 0 ]; do
    case "$1" in
        --accel) accel=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --pos-bin) pos_bin=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        # Development: faster, larger slot images (the figures are then not the release's).
        --fast) fast=(--fast); shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "error: run as root" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
run="$out/qemu-run"
rm -rf "$run"
mkdir -p "$run"
T0=$(date +%s)
log() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
trap 'echo "FAIL: command failed at line $LINENO: $BASH_COMMAND" >&2' ERR
# To stderr: fail is also called inside $(...).
fail() {
    {
        log "FAIL: $*"
        if [ -f "$run/serial.log" ]; then
            echo "--- serial console (last 60 lines)"
            tail -60 "$run/serial.log" | tr -d '\000'
        fi
    } >&2
    exit 1
}

if [ "$accel" = auto ]; then
    # KVM works when the UEFI firmware runs on it for a few seconds without an internal error
    # (some nested or paravirtualised KVMs start QEMU but cannot run the firmware).
    status=0
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run/kvm-vars.fd"
    timeout 6 qemu-system-x86_64 -accel kvm -machine q35 -m 256 -nodefaults -display none \
        -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
        -drive if=pflash,format=raw,unit=1,file="$run/kvm-vars.fd" \
        </dev/null >"$run/kvm-check.txt" 2>&1 || status=$?
    if [ "$status" = 124 ] && ! grep -q "internal error" "$run/kvm-check.txt"; then
        accel=kvm
    else
        accel=tcg
    fi
fi
log "accelerator: $accel"

# --- the pos binary, the test keys --------------------------------------------------------
if [ -z "$pos_bin" ]; then
    log "cargo build --release -p pos"
    (cd "$repo" && cargo build --release --locked -p pos)
    pos_bin="$repo/target/release/pos"
fi
keys="$out/test-keys"
mkdir -p "$keys"
if [ ! -f "$keys/update.key.pem" ]; then
    # The shop's update CA (what the image trusts) and another one (an attacker's).
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/O=3PlugPOS test/CN=update key" \
        -keyout "$keys/update.key.pem" -out "$keys/update.cert.pem" 2>/dev/null
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/O=Someone else/CN=other key" \
        -keyout "$keys/other.key.pem" -out "$keys/other.cert.pem" 2>/dev/null
    ssh-keygen -q -t ed25519 -N '' -C technician -f "$keys/technician"
fi
signing=(--signing-key "$keys/update.key.pem" --signing-cert "$keys/update.cert.pem"
    --keyring "$keys/update.cert.pem" --technician-key "$keys/technician.pub"
    --pos-bin "$pos_bin" --out "$out" --cache "$out/cache" "${fast[@]}")

# --- build: the image (1.0.0), a good update (1.0.1), a bad one (1.0.2) ----------------------
tb=$(date +%s)
"$here/build.sh" --version 1.0.0 "${signing[@]}"
build_s=$(( $(date +%s) - tb ))
"$here/build.sh" --version 1.0.1 "${signing[@]}"
"$here/build.sh" --version 1.0.2 --broken-health "${signing[@]}"
# The same 1.0.1 system signed by a CA the box does not trust, and a damaged copy.
rauc resign --cert="$keys/other.cert.pem" --key="$keys/other.key.pem" \
    --keyring="$keys/update.cert.pem" --signing-keyring="$keys/other.cert.pem" \
    "$out/3plugpos-1.0.1.raucb" "$run/foreign-1.0.1.raucb" >/dev/null 2>&1 ||
    fail "rauc resign (the foreign-signed bundle) failed"
# Damaged in its signature (the CMS at the end: `rauc info` refuses it) and in its payload
# (verity bundles: found by dm-verity while installing, which then fails).
size=$(stat -c %s "$out/3plugpos-1.0.1.raucb")
cp "$out/3plugpos-1.0.1.raucb" "$run/damaged-1.0.1.raucb"
printf '\xff\xff\xff\xff' | dd of="$run/damaged-1.0.1.raucb" bs=1 seek=$((size - 300)) conv=notrunc status=none
cp "$out/3plugpos-1.0.1.raucb" "$run/corrupt-1.0.1.raucb"
printf '\xff\xff\xff\xff' | dd of="$run/corrupt-1.0.1.raucb" bs=1 seek=$((20 * 1024 * 1024)) conv=notrunc status=none

# --- the disk and a USB stick with the bundles ----------------------------------------------
disk="$run/disk.raw"
truncate -s 4G "$disk"
# The box's disk is flashed the way a technician does it: `pos image flash` of the .img.zst onto
# a block device (a loop device over the disk file), written and read back.
loopdev=$(losetup --find --show "$disk")
"$pos_bin" image flash --yes "$out/3plugpos-1.0.0.img.zst" "$loopdev" > "$run/flash.txt" 2>&1 ||
    { losetup -d "$loopdev"; cat "$run/flash.txt"; fail "pos image flash failed"; }
losetup -d "$loopdev"
log "flashed with pos image flash: $(grep -m1 Done "$run/flash.txt")"
# Provision the box as a hub without the screen, and service mode (SSH) for this test.
cat > "$run/provision.toml" <<EOF
role = "hub"
branch = "qemu-test"
name = "hub-1"
EOF
mcopy -o -i "$disk@@1M" "$run/provision.toml" ::/pos/provision.toml
set_grubenv() {
    mcopy -o -i "$disk@@1M" ::/EFI/BOOT/grubenv "$run/grubenv"
    grub-editenv "$run/grubenv" set "$@"
    mcopy -o -i "$disk@@1M" "$run/grubenv" ::/EFI/BOOT/grubenv
}
# The boot counters as the running box sees them.
grubenv_get() { vm 'grub-editenv /boot/efi/EFI/BOOT/grubenv list'; }
stick="$run/stick.img"
truncate -s 2G "$stick"
mkfs.vfat -F 32 -n POSUPDATE "$stick" >/dev/null
for f in "$out/3plugpos-1.0.0.raucb" "$out/3plugpos-1.0.1.raucb" "$out/3plugpos-1.0.2.raucb" \
        "$run/foreign-1.0.1.raucb" "$run/damaged-1.0.1.raucb" "$run/corrupt-1.0.1.raucb"; do
    mcopy -i "$stick" "$f" ::/
done

# --- QEMU ----------------------------------------------------------------------------------
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run/vars.fd"
# A TPM 2.0 (swtpm; its state survives the VM's restarts like a chip on the mainboard): the
# data partition's key is bound to it, so every boot unlocks through the TPM.
mkdir -p "$run/tpm"
swtpm_pid=
start_tpm() {
    swtpm socket --tpm2 --tpmstate dir="$run/tpm" --ctrl type=unixio,path="$run/tpm.sock" \
        --flags startup-clear >"$run/swtpm.log" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 50); do [ -S "$run/tpm.sock" ] && return 0; sleep 0.1; done
    fail "swtpm did not start"
}
ssh_port=$((20000 + RANDOM % 20000))
qemu_pid=
boot() {
    : > "$run/serial.log"
    rm -f "$run/tpm.sock"
    start_tpm
    qemu-system-x86_64 -accel "$accel" -machine q35 -cpu max -smp 2 -m 2048 \
        -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
        -drive if=pflash,format=raw,unit=1,file="$run/vars.fd" \
        -drive if=virtio,format=raw,file="$disk",cache=unsafe \
        -device qemu-xhci -drive if=none,id=stick,format=raw,file="$stick" \
        -device usb-storage,drive=stick \
        -netdev user,id=net0,hostfwd=tcp:127.0.0.1:$ssh_port-:22 \
        -device virtio-net-pci,netdev=net0 \
        -chardev socket,id=chrtpm,path="$run/tpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
        -device tpm-tis,tpmdev=tpm0 \
        -vga std -display none -monitor unix:"$run/monitor.sock",server,nowait \
        -serial file:"$run/serial.log" -no-reboot &
    qemu_pid=$!
    boot_t0=$(date +%s.%N)
}
# -no-reboot: a reboot ends QEMU; the test starts the next boot itself, so each boot's serial
# log is its own and the slot chosen by GRUB is read from it.
wait_exit() {
    local t=$1 i=0
    while kill -0 "$qemu_pid" 2>/dev/null; do
        sleep 1; i=$((i + 1))
        [ "$i" -lt "$t" ] || fail "the VM did not restart within $t s"
    done
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
    [ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null && wait "$swtpm_pid" 2>/dev/null || true
    swtpm_pid=
}
stop_vm() {
    [ -n "$qemu_pid" ] && kill -9 "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
    [ -n "$swtpm_pid" ] && kill "$swtpm_pid" 2>/dev/null && wait "$swtpm_pid" 2>/dev/null || true
    swtpm_pid=
}
trap 'stop_vm' EXIT
wait_serial() {
    local pattern=$1 t=$2 i=0
    while ! grep -q -a -- "$pattern" "$run/serial.log"; do
        if ! kill -0 "$qemu_pid" 2>/dev/null; then
            grep -q -a -- "$pattern" "$run/serial.log" && break
            fail "the VM stopped before \"$pattern\""
        fi
        sleep 0.2; i=$((i + 1))
        [ "$i" -lt $((t * 5)) ] || fail "no \"$pattern\" on the serial console within $t s"
    done
    echo "$(date +%s.%N) - $boot_t0" | bc
}
vm() {
    ssh -q -p "$ssh_port" -i "$keys/technician" -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 root@127.0.0.1 "$@"
}
wait_ssh() {
    local i=0
    until vm true 2>/dev/null; do
        sleep 1; i=$((i + 1))
        [ "$i" -lt 120 ] || fail "SSH (service mode) did not come up"
    done
}
boot_limit=$([ "$accel" = kvm ] && echo 180 || echo 900)
# What the box's screen shows, as PNG (QEMU's screendump writes PPM).
screenshot() {
    printf 'screendump %s\n' "$run/screen.ppm" | python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.send(sys.stdin.buffer.read()); time.sleep(2)
' "$run/monitor.sock"
    python3 - "$run/screen.ppm" "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
magic, size, maxval, pixels = data.split(b"\n", 3)
w, h = map(int, size.split())
rows = b"".join(b"\0" + pixels[y * w * 3:(y + 1) * w * 3] for y in range(h))
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
open(sys.argv[2], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
PY
}

# --- 0. the bare kernel, for the boot-time ratio --------------------------------------------
unsquashfs -q -d "$run/kernel" "$out/rootfs-1.0.0.img" boot/vmlinuz boot/initrd.img 'boot/vmlinuz-*' 'boot/initrd.img-*' >/dev/null
: > "$run/serial.log"
qemu-system-x86_64 -accel "$accel" -machine q35 -cpu max -smp 2 -m 2048 -display none \
    -kernel "$run/kernel/boot/vmlinuz" -initrd "$run/kernel/boot/initrd.img" \
    -append "console=ttyS0 panic=-1 rdinit=/bin/nonexistent" -serial file:"$run/serial.log" \
    -no-reboot &
qemu_pid=$!
boot_t0=$(date +%s.%N)
kernel_s=$(wait_serial "Kernel panic\|Run /bin/nonexistent\|Run /init" "$boot_limit")
stop_vm
log "bare kernel boot (to running init): ${kernel_s} s"

# --- 1. first boot: data partition, provisioning, hub up, "pos ready" -----------------------
set_grubenv pos_service_mode=1
boot
first_s=$(wait_serial "pos ready" "$boot_limit")
grep -a -q "pos ready (slot A, version 1.0.0)" "$run/serial.log" || fail "wrong slot/version in the marker"
log "first boot to \"pos ready\": ${first_s} s (slot A, 1.0.0)"
wait_ssh
vm 'pos setup is-role hub --data-dir /var/lib/pos' || fail "the box is not a hub after provisioning"
vm 'findmnt -no FSTYPE,OPTIONS /' | grep '^squashfs ro' >/dev/null || fail "the root is not a read-only squashfs"
vm 'cryptsetup status posdata' | grep 'type:    LUKS2' >/dev/null || fail "the data partition is not LUKS2"
vm 'cryptsetup luksDump /dev/disk/by-partlabel/pos-data' | grep systemd-tpm2 >/dev/null ||
    fail "the data partition's key is not bound to the TPM"
vm 'ls /boot/efi/pos' | grep data.key >/dev/null && fail "a TPM box keeps the data key on the ESP"
vm 'findmnt -no SOURCE /var/lib/pos' | grep posdata >/dev/null || fail "/var/lib/pos is not on the data partition"
vm 'nft list chain inet pos input' | grep 'policy drop' >/dev/null || fail "the firewall does not drop by default"
vm 'nft list set inet pos pos_tcp' | grep 7443 >/dev/null || fail "the hub's sync port is not open"
sandbox=$(vm 'systemctl show -p User,NoNewPrivileges,ProtectSystem,CapabilityBoundingSet,PrivateTmp pos-hub.service')
for want in User=pos NoNewPrivileges=yes ProtectSystem=strict CapabilityBoundingSet= PrivateTmp=yes; do
    grep -x "$want" <<<"$sandbox" >/dev/null || fail "pos-hub is not sandboxed: no $want in: $sandbox"
done
vm 'ls /media' | grep usb- >/dev/null || fail "the USB stick was not mounted under /media"
screenshot "$out/screen-first-boot.png"
log "checked: read-only squashfs root, LUKS2 data, default-deny firewall with 7443, sandbox, USB stick"

# --- 2. refused bundles ---------------------------------------------------------------------
stickdir=$(vm 'ls -d /media/usb-*' | head -1)
for bad in foreign-1.0.1 damaged-1.0.1 3plugpos-1.0.0; do
    if vm "pos update verify $stickdir/$bad.raucb" > "$run/verify-$bad.txt" 2>&1; then
        fail "pos update verify accepted $bad"
    fi
    log "refused $bad: $(grep -m1 -i 'error' "$run/verify-$bad.txt" || head -1 "$run/verify-$bad.txt")"
done
if vm "rauc install $stickdir/3plugpos-1.0.0.raucb" > "$run/rauc-downgrade.txt" 2>&1; then
    fail "a plain rauc install of an older bundle was not refused by the pre-install handler"
fi
log "refused: plain rauc install of 1.0.0 (pre-install handler)"
if vm "pos update apply --yes $stickdir/corrupt-1.0.1.raucb" > "$run/apply-corrupt.txt" 2>&1; then
    fail "a bundle with a corrupted payload was installed"
fi
grubenv_get | grep '^ORDER=A B$' >/dev/null || fail "a failed install changed the boot order"
log "refused while installing: corrupted payload ($(grep -m1 -i error "$run/apply-corrupt.txt" | cut -c1-100))"

# --- 3. power cut during an update: the old system still boots ------------------------------
# The power goes while RAUC is writing the new system into slot B (seen in its progress).
vm "nohup pos update apply --yes $stickdir/3plugpos-1.0.1.raucb > /tmp/apply.log 2>&1 &"
i=0
until vm 'cat /tmp/apply.log' 2>/dev/null | grep -i 'copying image' >/dev/null; do
    sleep 1; i=$((i + 1))
    [ "$i" -lt 300 ] || fail "the update never started writing the slot: $(vm 'cat /tmp/apply.log')"
done
sleep 2
progress=$(vm 'cat /tmp/apply.log' | grep -o '[0-9]*%' | tail -1)
stop_vm
log "power cut while writing slot B (update 1.0.0 -> 1.0.1 at $progress)"
set_grubenv pos_service_mode=1
boot
wait_serial "pos ready" "$boot_limit" >/dev/null
grep -a -q "pos ready (slot A, version 1.0.0)" "$run/serial.log" || fail "after the power cut the box did not start 1.0.0 from slot A"
log "after the power cut: slot A, 1.0.0 starts"
wait_ssh

# --- 4. a good update ----------------------------------------------------------------------
ta=$(date +%s.%N)
vm "pos update apply --yes $stickdir/3plugpos-1.0.1.raucb" > "$run/apply-1.0.1.txt" 2>&1 ||
    { cat "$run/apply-1.0.1.txt"; fail "pos update apply 1.0.1 failed"; }
apply_s=$(echo "$(date +%s.%N) - $ta" | bc)
log "update 1.0.1 applied in ${apply_s} s; rebooting"
vm 'systemctl reboot' || true
wait_exit 120
set_grubenv pos_service_mode=1
boot
wait_serial "pos ready" "$boot_limit" >/dev/null
grep -a -q "pos ready (slot B, version 1.0.1)" "$run/serial.log" || fail "the update did not start 1.0.1 from slot B"
grubenv_get | grep '^B_TRY=0' >/dev/null || fail "slot B was not marked good"
later_s=$(grep -a "pos ready" "$run/serial.log" | head -1 | sed 's/^\[ *\([0-9.]*\)\].*/\1/')
log "trial boot of 1.0.1 in slot B healthy, marked good ($later_s s from kernel start to pos ready)"
wait_ssh
if vm "pos update verify $stickdir/3plugpos-1.0.0.raucb" > "$run/verify-downgrade.txt" 2>&1; then
    fail "a downgrade to 1.0.0 was accepted"
fi
grep -i downgrade "$run/verify-downgrade.txt" >/dev/null || fail "the downgrade was not named: $(cat "$run/verify-downgrade.txt")"
log "refused: downgrade 1.0.1 -> 1.0.0"

# --- a full data partition: the hub keeps running, refuses writes with a clear error, the
# --- system (journal, RAUC, the health check) goes on from the space reserved for root -------
vm 'runuser -u pos -- fallocate -l $(df -B1 --output=avail /var/lib/pos | tail -1) /var/lib/pos/fill' || true
vm 'runuser -u pos -- sh -c "head -c 1048576 /dev/zero > /var/lib/pos/more"' 2>/dev/null &&
    fail "the data partition is not full for the pos user"
vm 'systemctl restart pos-hub.service' && sleep 20
hub_state=$(vm 'systemctl show -p ActiveState,NRestarts pos-hub.service')
grep -x ActiveState=active <<<"$hub_state" >/dev/null && grep -x NRestarts=0 <<<"$hub_state" >/dev/null ||
    fail "the hub did not keep running on a full data partition: $hub_state"
vm 'journalctl -b -u pos-hub.service' | grep 'disk full' >/dev/null || fail "no clear 'disk full' in the hub's log"
vm 'logger -p warning pos-test-full-disk && sleep 1 && journalctl -b' | grep pos-test-full-disk >/dev/null ||
    fail "the journal stopped on a full data partition"
vm 'runuser -u pos -- pos audit verify --data-dir /var/lib/pos' > "$run/verify-full.txt" 2>&1 ||
    fail "the audit log does not verify on a full disk: $(cat "$run/verify-full.txt")"
vm 'rm -f /var/lib/pos/fill /var/lib/pos/more'
log "full data partition: hub running (\"disk full\" logged, nothing written), journal and audit verify fine"

# --- 5. a bad update: its trial boot fails, the box rolls back by itself ---------------------
vm "pos update apply --yes $stickdir/3plugpos-1.0.2.raucb" > "$run/apply-1.0.2.txt" 2>&1 ||
    { cat "$run/apply-1.0.2.txt"; fail "pos update apply 1.0.2 failed"; }
vm 'systemctl reboot' || true
wait_exit 120
set_grubenv pos_service_mode=1
boot
wait_serial "pos health check failed" "$boot_limit" >/dev/null
grep -a -q "marking slot A bad" "$run/serial.log" || fail "the failed trial did not mark slot A bad"
log "trial boot of 1.0.2 in slot A failed its health check; restarting"
wait_exit 300
set_grubenv pos_service_mode=1
boot
wait_serial "pos ready" "$boot_limit" >/dev/null
grep -a -q "pos ready (slot B, version 1.0.1)" "$run/serial.log" || fail "no rollback to 1.0.1 in slot B"
log "rolled back: slot B, 1.0.1 runs"
wait_ssh
vm 'pos update status' > "$run/status.txt" 2>&1 || true
vm 'systemctl poweroff' || true
wait_exit 120

img_bytes=$(stat -c %s "$out/3plugpos-1.0.0.img")
img_alloc=$(( $(stat -c %b "$out/3plugpos-1.0.0.img") * 512 ))
slot_bytes=$(stat -c %s "$out/rootfs-1.0.0.img")
bundle_bytes=$(stat -c %s "$out/3plugpos-1.0.1.raucb")
cat <<EOF | tee "$out/figures.txt"
image test passed ($accel), $(date -u +%FT%TZ)
image size                 $((img_bytes >> 20)) MiB raw, $(( $(stat -c %s "$out/3plugpos-1.0.0.img.zst") >> 20 )) MiB as .img.zst (allocated $((img_alloc >> 20)) MiB; system slot $((slot_bytes >> 20)) MiB)
update bundle size         $((bundle_bytes >> 20)) MiB
image build time           ${build_s} s (first image; base tree $( [ -n "$(ls "$out"/cache/base-*.tar 2>/dev/null)" ] && echo cached or built ))
boot to "pos ready"        ${first_s} s (first boot, incl. making the encrypted data partition)
bare kernel boot           ${kernel_s} s (same kernel to init, no firmware)
ratio                      $(echo "scale=1; $first_s / $kernel_s" | bc)
update apply time          ${apply_s} s (1.0.1 from the USB stick, verified and written)
whole test                 $(( $(date +%s) - T0 )) s
EOF
[ "$keep" = 1 ] || rm -f "$disk" "$stick"
