#!/usr/bin/env bash
# bench/run.sh [bench.py options]: install the peers, build tinyserve, run the benchmark.
# Needs root for apt. Example: bench/run.sh --duration 5 --repeats 3
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in nginx lighttpd wrk curl taskset; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nginx-light lighttpd wrk curl util-linux >/dev/null
fi
# nginx and lighttpd packages start system services; the benchmark runs its own.
systemctl stop nginx lighttpd 2>/dev/null || service nginx stop 2>/dev/null || true

if [ ! -x bench/.tools/bin/static-web-server ]; then
  cargo install --locked static-web-server --root bench/.tools
fi
rustup target add x86_64-unknown-linux-musl >/dev/null
cargo build --release --locked --target x86_64-unknown-linux-musl

exec python3 bench/bench.py "$@"
