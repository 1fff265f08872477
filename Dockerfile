# roost-keeper container image: a static (musl) release binary on an empty
# base image, run as 65532:65532 (deploy/deployment.yaml expects that user
# and the tag roost-keeper:0.1.0).
#
#   docker build -t roost-keeper:0.1.0 .
#
# NOT BUILT HERE: the machine this project is developed on has no container
# runtime and no container registry, so this file has not been built or run.
#
# No CA certificates are copied: in the cluster the server talks only to the
# apiserver, with the in-cluster CA from its service-account token mount.
# (An OTLP endpoint over https would need them.)

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
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/roost-keeper"]
