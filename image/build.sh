#!/usr/bin/env bash
# Builds the roost-keeper image from this repository alone, with no registry:
# a static musl release binary built here, staged with the host's CA bundle
# and image/Containerfile, then `podman build` tags it
# localhost/roost-keeper:<version> and localhost/roost-keeper:dev.
# `make image` runs it; `make podman` (image/install.sh) installs what it needs.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
target=x86_64-unknown-linux-musl
cargo="${CARGO:-cargo}"
name="${IMAGE_NAME:-localhost/roost-keeper}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

die() { echo "image/build.sh: $*" >&2; exit 1; }

command -v podman >/dev/null || die "podman is missing: run 'make podman' (apt-get install podman runc musl-tools)"
[ -r "$ca_bundle" ] || die "$ca_bundle is missing: apt-get install ca-certificates"
if ! rustup target list --installed | grep -qx "$target"; then
    echo "image/build.sh: rustup target add $target" >&2
    rustup target add "$target" || die "cannot add the Rust target $target"
fi

start=$(date +%s)
# The musl target links statically by default: no glibc, no NSS modules to carry.
"$cargo" build --release --locked --target "$target" -p roost-keeper --bin roost-keeper \
    --manifest-path "$repo/Cargo.toml" >&2
target_dir="$("$cargo" metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
binary="$target_dir/$target/release/roost-keeper"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# profile.release keeps line tables for backtraces on the host; the image
# keeps symbols only (backtraces still name functions), a third of the size.
strip --strip-debug -o "$stage/roost-keeper" "$binary"
cp "$ca_bundle" "$stage/ca-certificates.crt"
cp "$repo/image/Containerfile" "$stage/Containerfile"

version="$("$stage/roost-keeper" --version | awk '{print $2}')"
[ -n "$version" ] || die "cannot read the version from roost-keeper --version"
# The commit's time, not the clock: the same binary gives the same image ID.
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
epoch="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

podman build --quiet --timestamp "$epoch" --identity-label=false \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    -t "$name:$version" -t "$name:dev" -f "$stage/Containerfile" "$stage" >/dev/null

size="$(podman image inspect --format '{{.Size}}' "$name:$version")"
echo "image/build.sh: built $name:$version (also :dev), $((size / 1024 / 1024)) MiB ($size bytes), in $(($(date +%s) - start)) s" >&2
echo "$name:$version"
