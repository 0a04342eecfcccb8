#!/bin/sh
# The Debian 12 packages image/build.sh and image/test-qemu.sh need (run as root).
set -e
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    mmdebstrap squashfs-tools dosfstools mtools fdisk grub-efi-amd64-bin grub-common \
    rauc zstd openssl openssh-client qemu-system-x86 ovmf swtpm swtpm-tools bc ca-certificates
