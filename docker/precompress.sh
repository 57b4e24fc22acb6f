#!/bin/sh
# precompress.sh SRC DST: copy the site in SRC to DST and put x.br, x.gz and (when zstd is
# installed) x.zst beside every text asset (html, css, js, mjs, svg, json, xml, txt,
# webmanifest), each kept only where it is smaller than the original. The server then sends them to clients that accept them and
# never spends CPU compressing. POSIX sh: runs on the host and in the image build.
set -eu

if [ "$#" -ne 2 ] || [ ! -d "$1" ]; then
  echo "usage: precompress.sh SRC_DIR DST_DIR" >&2
  exit 2
fi
src=$1
dst=$2
for tool in brotli gzip; do
  command -v "$tool" >/dev/null 2>&1 || { echo "precompress.sh: '$tool' not found; install it (apt-get install brotli gzip)" >&2; exit 1; }
done

# zstd is optional: Chrome and Firefox accept it, brotli covers the same browsers.
zstd=$(command -v zstd || true)

rm -rf "$dst"
mkdir -p "$dst"
# cp -p keeps modification times, which become Last-Modified.
cp -Rp "$src/." "$dst/"
# Sidecars already in the source are regenerated, not trusted.
find "$dst" -type f \( -name '*.br' -o -name '*.gz' -o -name '*.zst' \) -exec sh -c 'for f; do [ -f "${f%.*}" ] && rm -f "$f"; done; true' sh {} +

size() { wc -c < "$1" | tr -d ' '; }

find "$dst" -type f \( -name '*.html' -o -name '*.htm' -o -name '*.css' -o -name '*.js' -o -name '*.mjs' \
  -o -name '*.svg' -o -name '*.json' -o -name '*.xml' -o -name '*.txt' -o -name '*.webmanifest' \) |
while IFS= read -r f; do
  brotli --best --keep --force --output="$f.br" -- "$f"
  gzip -9 --no-name --keep --force -- "$f"
  if [ -n "$zstd" ]; then zstd -19 --quiet --keep --force -o "$f.zst" -- "$f"; fi
  orig=$(size "$f")
  for c in "$f.br" "$f.gz" "$f.zst"; do
    [ -f "$c" ] || continue
    if [ "$(size "$c")" -ge "$orig" ]; then rm -f "$c"; else touch -r "$f" "$c"; fi
  done
done
