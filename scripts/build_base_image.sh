#!/usr/bin/env bash
# Build a local base image for the Dockerfile from Debian's packages, for hosts that reach a Debian mirror and PyPI
# but no container registry (CI here, air-gapped observatory build hosts):
#
#   sudo scripts/build_base_image.sh [IMAGE]          # default IMAGE: localhost/tess-base:bookworm
#   podman build --format docker --build-arg BASE_IMAGE=localhost/tess-base:bookworm -t tess-service .
#
# The image is Debian bookworm "minbase" with Python 3.11 (python3, python3-venv: what the Dockerfile's stages use
# in place of python:3.11-slim-bookworm) and the CA certificates, including the host's own extra ones from
# /usr/local/share/ca-certificates, so that pip inside the build trusts a TLS-inspecting proxy the host trusts.
# Needs root, debootstrap and podman (or buildah). Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# ENGINE (default podman). Nothing is done when IMAGE already exists unless REBUILD=1.
set -euo pipefail

image="${1:-localhost/tess-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
engine="${ENGINE:-podman}"

if [ "${REBUILD:-0}" != 1 ] && "$engine" image exists "$image" 2>/dev/null; then
    echo "$image exists (REBUILD=1 builds it again)"
    exit 0
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/tess-base.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { cat "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# The host's extra CAs join the image's bundle (update-ca-certificates reads /usr/local/share/ca-certificates).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
fi

# What an image never uses: apt's package lists and downloads, documentation, man pages, translations.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*

tar --numeric-owner -C "$rootfs" -c . | "$engine" import --quiet \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$image" >/dev/null
echo "$image: $("$engine" image inspect --format '{{.Size}}' "$image") bytes"
