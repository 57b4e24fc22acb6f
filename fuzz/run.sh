#!/bin/sh
# run.sh [SECONDS] [TARGET...]: runs each fuzz target (default: all) for SECONDS (default
# 600) with libFuzzer, growing its corpus, then minimises it. The corpus is kept in git as
# one archive per target, fuzz/corpus/TARGET.tar.gz (a few hundred small files each would
# crowd the repository), unpacked into fuzz/corpus/TARGET/ for the run and packed again.
# A crash leaves its input in fuzz/artifacts/TARGET and stops the script: turn it into a
# regression test beside the code it broke. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain build with the sanitizer flags it uses.
set -eu
cd "$(dirname "$0")"
seconds=${1:-600}
[ "$#" -gt 0 ] && shift
[ "$#" -gt 0 ] || set -- path range conditional accept_encoding config
export RUSTC_BOOTSTRAP=1
for target; do
  mkdir -p "corpus/$target"
  [ ! -f "corpus/$target.tar.gz" ] || tar -xzf "corpus/$target.tar.gz" -C corpus
  before=$(find "corpus/$target" -type f | wc -l)
  start=$(date +%s)
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 \
    2> "run-$target.log" || { tail -40 "run-$target.log"; exit 1; }
  cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1
  after=$(find "corpus/$target" -type f | wc -l)
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -czf "corpus/$target.tar.gz" \
    -C corpus "$target"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "run-$target.log" | grep -o '[0-9]*$' || echo '?')
  echo "$target: $(( $(date +%s) - start )) s, $runs inputs run, no crash; corpus $before -> $after files"
done
