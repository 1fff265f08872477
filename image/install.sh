#!/usr/bin/env bash
# What `make image` and the image's end-to-end test (tests/e2e_image.rs) need:
# podman (which builds FROM scratch images itself), runc (the tests run
# containers with it: crun is refused on some machines), musl-gcc (ring's C
# code for the static binary) and the CA bundle copied into the image.
# Installs the missing ones with apt-get when run as root on Debian/Ubuntu,
# otherwise says what to install and fails: `make test` never skips the image.
set -euo pipefail

missing=()
command -v podman >/dev/null || missing+=(podman)
[ -x /usr/sbin/runc ] || missing+=(runc)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
[ -r /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ ${#missing[@]} -eq 0 ]; then
    echo "image/install.sh: podman, runc, musl-gcc and the CA bundle are installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "image/install.sh: missing ${missing[*]}; install them (Debian/Ubuntu:" \
        "sudo apt-get install -y ${missing[*]}) and run make again" >&2
    exit 1
fi
echo "image/install.sh: installing ${missing[*]} with apt-get (for make image and tests/e2e_image.rs)"
export DEBIAN_FRONTEND=noninteractive
# A stale package index is the usual reason for a failed install: refresh once.
if ! apt-get install -y "${missing[@]}"; then
    apt-get update
    apt-get install -y "${missing[@]}" || {
        echo "image/install.sh: apt-get install ${missing[*]} failed" >&2
        exit 1
    }
fi
