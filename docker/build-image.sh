#!/bin/sh
# build-image.sh [ARCH...]: the offline image build, from binaries built on this machine.
# For each architecture asked for (amd64, arm64; default amd64) it builds the static musl
# binary (arm64 cross-compiled: rustup's aarch64-unknown-linux-musl target, linked by Rust's
# own lld as .cargo/config.toml says, no cross C toolchain), precompresses the site
# ($SITE, default static/) into target/site, and builds the image with `docker build`:
#   amd64 -> $TAG (default tinyserve:local), target `prebuilt`
#   arm64 -> $TAG-arm64, target `prebuilt-arm64` (--platform linux/arm64)
# The amd64 binary is always built: the image build runs it as `tinyserve check`.
# Needs: cargo (with rustup, to add targets), brotli and gzip (zstd optional), docker.
set -eu
cd "$(dirname "$0")/.."

tag=${TAG:-tinyserve:local}
site=${SITE:-static}
revision=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
[ "$#" -gt 0 ] || set -- amd64

rust_target() {
  case $1 in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *) echo "build-image.sh: unknown architecture '$1'; use amd64 and/or arm64" >&2; exit 2 ;;
  esac
}

targets=x86_64-unknown-linux-musl
for arch; do
  t=$(rust_target "$arch")
  [ "$t" = x86_64-unknown-linux-musl ] || targets="$targets $t"
done
for t in $targets; do
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$t"; then
    rustup target add "$t"
  fi
  cargo build --release --locked --target "$t"
done

sh docker/precompress.sh "$site" target/site

for arch; do
  if [ "$arch" = amd64 ]; then
    image=$tag
    docker build --target prebuilt --build-arg "REVISION=$revision" -t "$image" .
  else
    image=$tag-$arch
    docker build --platform "linux/$arch" --target "prebuilt-$arch" \
      --build-arg "REVISION=$revision" -t "$image" .
  fi
  binary=$(wc -c < "target/$(rust_target "$arch")/release/tinyserve" | tr -d ' ')
  echo "built $image: linux/$arch, binary $binary bytes, image $(docker image inspect -f '{{.Size}}' "$image") bytes"
done
