# tinyserve image: FROM scratch, the static binary at /tinyserve, the site at /static.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t tinyserve .
#         from source, both architectures (needs a registry; the Rust stage cross-compiles)
#   docker/build-image.sh [amd64] [arm64]
#         offline, from host-built binaries: cargo build for each architecture,
#         docker/precompress.sh, then the `prebuilt` (amd64) and `prebuilt-arm64` targets
#
# Every path runs `tinyserve check` on the site, so a broken site fails the build.
# Stage order matters: the classic builder builds every stage before the target in file
# order, so the offline targets come before anything that pulls an image.
#
# Each final stage copies its files first and then sets the runtime settings (the block
# from ARG VERSION to ENTRYPOINT, the same in all three; tests/lint.rs compares them).
# The classic builder, asked for another platform (`--platform linux/arm64`), refuses a
# COPY or FROM onto anything it recorded for the host's platform, which any settings step
# is; files first is the order it accepts, and BuildKit does not mind.

# ---- prebuilt: the host's amd64 musl binary and its precompressed site (no network) ----
FROM scratch AS prebuilt
COPY target/x86_64-unknown-linux-musl/release/tinyserve /tinyserve
COPY target/site/ /static/
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/tinyserve/tinyserve
LABEL org.opencontainers.image.title="tinyserve" \
      org.opencontainers.image.description="A tiny static-file server for containers and Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENV TINYSERVE_ROOT=/static \
    TINYSERVE_LISTEN=[::]:8080 \
    TINYSERVE_LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
# No shell or curl in a scratch image: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 CMD ["/tinyserve", "healthcheck"]
ENTRYPOINT ["/tinyserve"]
# As the image's user (65532), so a file it could not read fails here, not in production.
RUN ["/tinyserve", "check"]

# ---- prebuilt-arm64: the cross-built arm64 binary and the same site ----
# `docker build --platform linux/arm64 --target prebuilt-arm64`, for the classic builder,
# which builds `prebuilt` first and so runs the check on this very site natively (no arm64
# emulation). It cannot copy from `prebuilt`: its RUN step is recorded for the host's
# platform. With BuildKit, build `image` for both platforms instead.
FROM scratch AS prebuilt-arm64
COPY target/aarch64-unknown-linux-musl/release/tinyserve /tinyserve
COPY target/site/ /static/
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/tinyserve/tinyserve
LABEL org.opencontainers.image.title="tinyserve" \
      org.opencontainers.image.description="A tiny static-file server for containers and Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENV TINYSERVE_ROOT=/static \
    TINYSERVE_LISTEN=[::]:8080 \
    TINYSERVE_LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
# No shell or curl in a scratch image: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 CMD ["/tinyserve", "healthcheck"]
ENTRYPOINT ["/tinyserve"]

# ---- build: from source on the build machine's platform, cross-compiled to the target's ----
FROM --platform=$BUILDPLATFORM rust:1.95-alpine AS build
# Alpine drops superseded package versions from its index, so exact pins break rebuilds;
# the base image tag pins the release instead. lld links the arm64 binary.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev lld
ARG TARGETARCH
# The Rust target for the image's architecture, in a file the later steps read.
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)"
ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=ld.lld
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
# Build the dependencies against an empty crate, so editing src/ reuses this layer.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --target "$(cat /rust-target)" \
 && rm -rf src
COPY src ./src
ARG REVISION=unknown
RUN touch src/main.rs src/lib.rs \
 && TINYSERVE_COMMIT="${REVISION}" cargo build --release --locked --target "$(cat /rust-target)" \
 && cp "target/$(cat /rust-target)/release/tinyserve" /tinyserve

# ---- site: the demo site, precompressed ----
FROM --platform=$BUILDPLATFORM alpine:3.22 AS site
# hadolint ignore=DL3018
RUN apk add --no-cache brotli gzip zstd
COPY docker/precompress.sh /usr/local/bin/precompress.sh
COPY static /src/static
RUN sh /usr/local/bin/precompress.sh /src/static /site

# ---- the default image ----
FROM scratch AS image
COPY --from=build /tinyserve /tinyserve
COPY --from=site /site/ /static/
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/tinyserve/tinyserve
LABEL org.opencontainers.image.title="tinyserve" \
      org.opencontainers.image.description="A tiny static-file server for containers and Kubernetes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENV TINYSERVE_ROOT=/static \
    TINYSERVE_LISTEN=[::]:8080 \
    TINYSERVE_LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
EXPOSE 8080
STOPSIGNAL SIGTERM
# No shell or curl in a scratch image: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 CMD ["/tinyserve", "healthcheck"]
ENTRYPOINT ["/tinyserve"]
# Runs the target's binary: under QEMU when building arm64 on amd64 (a second of emulation).
RUN ["/tinyserve", "check"]
