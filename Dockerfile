# roost-keeper container image, multi-stage, for machines that can pull a
# Rust base image: the same content as the image `make image` builds and
# tests (image/Containerfile: a static musl binary, the CA bundle, user
# 65532:65532, the OCI labels), but the binary is built inside the image.
#
#   docker build -t roost-keeper:0.1.0 .
#
# NOT BUILT OR TESTED HERE (no registry): `make image` is what
# tests/e2e_image.rs runs; keep the two in step.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# ring compiles C and assembly; musl-dev brings the C toolchain's libc.
RUN apk add --no-cache musl-dev
WORKDIR /src
# The whole workspace (.dockerignore keeps target/, .cache/, .git/ and .dev/ out):
# cargo needs every member's manifest and the declared bench files.
COPY . .
# Alpine's Rust targets *-unknown-linux-musl; crt-static makes the binary
# fully static. Debug info (profile.release has debug = 1) is stripped,
# symbols stay for backtraces.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p roost-keeper --bin roost-keeper \
    && cp target/release/roost-keeper /roost-keeper

FROM scratch
COPY --from=build /roost-keeper /roost-keeper
# Alpine's CA bundle: the system roots for a kubeconfig that names no CA.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="roost-keeper" \
      org.opencontainers.image.description="Admission webhook, status controller and offline validator for the ManagedRoost custom resource" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0"
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/roost-keeper"]
