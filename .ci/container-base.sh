#!/usr/bin/env bash
# Build the local container base image localhost/etl-base:bookworm (Debian bookworm
# minbase + python3/venv/pip) without any container registry: this machine reaches only
# package registries, so `FROM python:3.11-slim` cannot be pulled. Idempotent: does
# nothing when the image already exists. All buildah calls use the vfs driver (no
# overlay/fuse in nested sandboxes) and chroot isolation (no user namespaces needed).
set -euo pipefail

IMAGE="${ETL_BASE_IMAGE:-localhost/etl-base:bookworm}"
export BUILDAH_ISOLATION=chroot
# buildah 1.28 (bookworm) ignores $STORAGE_DRIVER once storage exists, so pass the flag.
b() { buildah --storage-driver vfs "$@"; }
SECONDS=0
t() { echo "container-base: [${SECONDS}s] $*"; }

need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    t "installing ${need[*]}"
    # Try with the lists apt has; refresh them only when that fails (none yet, or stale).
    install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need[@]}" >/dev/null
    }
    install || { apt-get update -qq && install; }
    t "installed ${need[*]}"
fi

if b images --format '{{.Name}}:{{.Tag}}' | grep -qx "$IMAGE"; then
    t "$IMAGE already present, nothing to do"
    exit 0
fi

# Reuse the mirror apt already uses here (the only reachable Debian archive).
MIRROR="${DEBIAN_MIRROR:-$(grep -rhoE '^(deb|URIs:)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^[:space:]]+' | head -n1 || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

ROOTFS="$(mktemp -d /var/tmp/etl-base.XXXXXX)"
ctr=""
cleanup() {
    [[ -n "$ctr" ]] && b rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$ROOTFS" "$ROOTFS.log"
}
trap cleanup EXIT

t "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
    bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
    || { tail -n 30 "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
# Slim it down: apt caches and lists are not needed in the image.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
t "debootstrap done ($(du -sh "$ROOTFS" | cut -f1))"

ctr="$(b from scratch)"
mnt="$(b mount "$ctr")"
cp -a "$ROOTFS"/. "$mnt"/
b umount "$ctr" >/dev/null
b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd /bin/bash "$ctr"
b commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
ctr=""
t "committed $IMAGE"
b images "$IMAGE"
