# tinyserve image: FROM scratch, the static binary at /tinyserve, the site at /static.
#
#   docker build -t tinyserve .                          builds from source (needs a registry)
#   cargo build --release --locked --target x86_64-unknown-linux-musl \
#     && docker/precompress.sh static target/site \
#     && docker build --target prebuilt -t tinyserve:local .   offline, from the host build
#
# Stage order matters: the classic builder builds every stage before the target in file
# order, so the offline `prebuilt` target comes before anything that pulls an image.
# Both final images derive from the one `runtime` stage below.

# ---- runtime: everything the final image is, except the binary and the site ----
FROM scratch AS runtime
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

# ---- prebuilt: the host's musl binary and its precompressed site (no network) ----
FROM runtime AS prebuilt
COPY target/x86_64-unknown-linux-musl/release/tinyserve /tinyserve
COPY target/site/ /static/

# ---- build: from source, dependencies cached in their own layer ----
FROM rust:1.95-alpine AS build
# Alpine drops superseded package versions from its index, so exact pins break rebuilds;
# the base image tag pins the release instead.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY csrc ./csrc
# Build the dependencies against an empty crate, so editing src/ reuses this layer.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl \
 && rm -rf src
COPY src ./src
ARG REVISION=unknown
RUN touch src/main.rs src/lib.rs \
 && TINYSERVE_COMMIT="${REVISION}" cargo build --release --locked --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/tinyserve /tinyserve

# ---- site: the demo site, precompressed ----
FROM alpine:3.22 AS site
# hadolint ignore=DL3018
RUN apk add --no-cache brotli gzip zstd
COPY docker/precompress.sh /usr/local/bin/precompress.sh
COPY static /src/static
RUN sh /usr/local/bin/precompress.sh /src/static /site

# ---- the default image ----
FROM runtime AS image
COPY --from=build /tinyserve /tinyserve
COPY --from=site /site/ /static/
