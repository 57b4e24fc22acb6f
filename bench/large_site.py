"""The large-site case of the benchmark: a site of tens of thousands of pages, asked for at
random, the way real sites are served (not one hot page).

- `make_site` writes PAGES pages of 1-30 KB (1 000 per folder) and BIG files of 0.1-2 MB,
  deterministic, once (a marker file remembers what was made); a second, larger site is
  made of hard links to the first plus more files, so start-up can be compared between two
  sizes without writing gigabytes twice.
- `request_script` writes a wrk Lua script that asks for pages in a precomputed random
  order: `uniform` (every page alike) or `zipf` (rank r asked with weight 1/r, the shape of
  web traffic), each request preformatted at start so the script costs wrk little;
  `zipf-hot` (for ab.py) keeps only the requests for the Zipf order's HOT most asked pages.
- `run` times start-up on both sites, then runs each workload round by round with the
  servers back to back, pinned as the small-site scenarios are, and returns the summary's
  lines: req/s, server CPU per 1000 responses (with per-round ratios to nginx), idle and
  peak RSS, start to first 200.
"""

import collections
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

PAGES, BIG = 50_000, 500
# Pages in the "zipf-hot" workload: under the descriptor budget that nginx, tinyserve and
# bench/floor.c are given in bench/ (16 000), so none of them opens a file twice.
HOT = 14_000
PAGES_XL, BIG_XL = 100_000, 2_000
WORKLOADS = ("uniform", "zipf")
OPEN_FILES = 16_000
WARM_UP_SECONDS = 6
CONNECTIONS = 32
SEQUENCE = 200_000  # requests in the precomputed order, repeated as wrk needs


def page_path(i: int) -> str:
    return f"/p/{i // 1000}/{i}.html"


def big_path(i: int) -> str:
    return f"/media/{i // 100}/{i}.bin"


def _write_files(root: Path, pages: range, bigs: range, rng: random.Random, block: bytes) -> None:
    for i in pages:
        f = root / page_path(i).lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1_000, 30_000)
        start = rng.randrange(0, len(block) - size)
        head = f"<!doctype html><title>page {i}</title>\n".encode()
        f.write_bytes(head + block[start:start + size - len(head)])
    for i in bigs:
        f = root / big_path(i).lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(100_000, 2_000_000)
        start = rng.randrange(0, len(block) - size)
        f.write_bytes(block[start:start + size])


def make_site(root: Path, pages: int, big: int, base: Path = None) -> None:
    """`pages` pages and `big` large files under `root`; with `base`, the files `base` has
    are hard links to its own."""
    marker = root / ".made"
    want = f"{pages} {big}"
    if marker.exists() and marker.read_text() == want:
        return
    print(f"large site: writing {pages} pages and {big} large files under {root}", file=sys.stderr, flush=True)
    rng = random.Random(pages * 7 + big)
    block = random.Random(1).randbytes(4 << 20)
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<!doctype html><title>large site</title>\n")
    first_pages, first_big = 0, 0
    if base is not None:
        first_pages, first_big = (int(x) for x in (base / ".made").read_text().split())
        for src in base.rglob("*"):
            if src.is_file() and src.name != ".made":
                dst = root / src.relative_to(base)
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not dst.exists():
                    os.link(src, dst)
    _write_files(root, range(first_pages, pages), range(first_big, big), rng, block)
    marker.write_text(want)


def request_script(path: Path, workload: str, pages: int) -> Path:
    """A wrk script asking for pages in a precomputed `workload` order: "uniform", "zipf",
    or "zipf-hot" (the Zipf order without the requests for pages outside its HOT most
    requested ones: every server keeps all their descriptors open, so none pays for opening
    files again and the comparison is of serving alone)."""
    rng = random.Random(42)
    if workload == "uniform":
        order = [rng.randrange(pages) for _ in range(SEQUENCE)]
    else:
        ranks = list(range(pages))
        rng.shuffle(ranks)  # popularity unrelated to the file's name or folder
        weights = [1 / (r + 1) for r in range(pages)]
        order = [ranks[r] for r in rng.choices(range(pages), weights=weights, k=SEQUENCE)]
        if workload == "zipf-hot":
            hot = {page for page, _ in collections.Counter(order).most_common(HOT)}
            order = [page for page in order if page in hot]
    lst = path.with_suffix(".paths")
    lst.write_text("\n".join(page_path(i) for i in order) + "\n")
    path.write_text(f"""
local reqs = {{}}
init = function(args)
  for p in io.lines("{lst}") do reqs[#reqs + 1] = wrk.format("GET", p) end
  i = 0
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
""")
    return path


def _median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def run(servers, cmds_for, ports, args, raw: Path, helpers) -> list:
    """Runs the large-site case; `cmds_for(site)` gives each server's (argv, ready path),
    `helpers` the small-site benchmark's functions (spawn, stop, first_200, load, ...)."""
    work = Path(args.work)
    site = work / "large"
    site_xl = work / "large-xl"
    make_site(site, PAGES, BIG)
    make_site(site_xl, PAGES_XL, BIG_XL, base=site)
    # Warm the page cache, as the small-site scenarios are warm: read every file once.
    # Again before every round: this VM's host reclaims page-cache pages left untouched for
    # 60 s (DAMON `pageout`), which would turn a random page into a disk read mid-run.
    def warm_page_cache():
        subprocess.run(["taskset", "-c", str(args.load_cpu), "sh", "-c",
                        f"find {site} -type f -exec cat {{}} + > /dev/null"], check=True)

    warm_page_cache()

    cmds, cmds_xl = cmds_for(site), cmds_for(site_xl)
    # nginx keeps 16 000 descriptors open (open_file_cache max=16000); tinyserve is given the
    # same number (its default is a quarter of the descriptor limit: 5 000 here, 16 384 in a
    # container with the usual limit).
    for c in (cmds, cmds_xl):
        for name in c:
            if name.startswith("tinyserve"):
                c[name][0].extend(["--cache-open-files", str(OPEN_FILES)])
    ready_path = {n: (cmds[n][1] if n.startswith("tinyserve") else page_path(0)) for n in servers}
    starts = {}
    for name in servers:
        print(f"large site start-up: {name}", file=sys.stderr, flush=True)
        starts[name] = tuple(
            _median([helpers.start_to_ready(c[name][0], ready_path[name], ports[name], args)
                     for _ in range(helpers.STARTS)])
            for c in (cmds, cmds_xl))

    scripts = {w: request_script(work / f"large-{w}.lua", w, PAGES) for w in WORKLOADS}
    results = {n: {w: [] for w in WORKLOADS} for n in servers}
    procs, idle = {}, {}
    try:
        for name in servers:
            procs[name] = helpers.spawn(cmds[name][0], args)
            if not helpers.first_200(ports[name], ready_path[name], time.monotonic() + 10):
                raise SystemExit(f"{name} did not answer on the large site")
        time.sleep(0.5)
        for name in servers:
            idle[name] = helpers.rss_kb(procs[name].pid)
        # Warm every server's caches with one uniform run that touches nearly every page
        # (nginx's descriptor cache as much as tinyserve's): the figures are steady state.
        for name in servers:
            print(f"large site warm-up: {name}", file=sys.stderr, flush=True)
            subprocess.run(["taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{CONNECTIONS}",
                            f"-d{WARM_UP_SECONDS}s", "-s", str(scripts["uniform"]),
                            f"http://127.0.0.1:{ports[name]}/"], capture_output=True, check=True)
        for w in WORKLOADS:
            for rep in range(1, args.repeats + 1):
                order = helpers.rotation(servers, rep - 1)
                print(f"large site {w} round {rep}/{args.repeats}: {', '.join(order)}", file=sys.stderr, flush=True)
                warm_page_cache()
                for name in order:
                    r = helpers.load(name, procs[name].pid, ports[name], f"large-{w}", "/", CONNECTIONS,
                                     args, raw, rep, script=str(scripts[w]))
                    results[name][w].append(r)
    finally:
        for p in procs.values():
            helpers.stop(p)

    def ratio(name, w, key):
        if "nginx" not in results:
            return []
        return [a[key] / b[key] if b[key] else float("nan")
                for a, b in zip(results[name][w], results["nginx"][w])]

    lines = [
        f"## Large site: {PAGES:,} pages of 1-30 KB + {BIG} files of 0.1-2 MB, random pages",
        "",
        f"wrk -t1 -c{CONNECTIONS}, {args.duration} s per run, {args.repeats} rounds per workload, servers back to "
        "back in a rotating order; `uniform`: every page alike; `zipf`: page of rank r with weight 1/r. "
        f"Start-up: median of {helpers.STARTS} starts to the first 200 (tinyserve: /readyz), on this site and on "
        f"one of {PAGES_XL:,} pages + {BIG_XL:,} large files. Warm page cache (every file read again before "
        "each round); each server warmed by a "
        f"{WARM_UP_SECONDS} s uniform run first. nginx: open_file_cache max={OPEN_FILES}; tinyserve: defaults "
        f"but --cache-open-files {OPEN_FILES} (64 MiB --cache-max, pages up to 8 KiB in memory); "
        "tinyserve-512MiB: the same with --cache-max 512MiB --cache-file-max 32KiB (the popular pages in memory).",
        "",
        "| server | workload | req/s | server CPU per 1000 | peak RSS | errors |",
        "|---|---|---|---|---|---|",
    ]
    for w in WORKLOADS:
        for name in servers:
            rs = results[name][w]
            rps, cpu = _median([r["rps"] for r in rs]), _median([r["cpu_ms_per_1k"] for r in rs])
            rr, cr = _median(ratio(name, w, "rps")), _median(ratio(name, w, "cpu_ms_per_1k"))
            fmt = lambda x: "" if x != x else f" ({x:.2f}×)"
            errors = ", ".join(sorted({r["errors"] for r in rs if r["errors"]})) or "none"
            lines.append(f"| {name} | {w} | {rps:,.0f}{fmt(rr)} | {cpu:.1f} ms{fmt(cr)} "
                         f"| {max(r['peak_rss_kb'] for r in rs) / 1024:.1f} MiB | {errors} |")
    lines += ["", "| server | start → 200: 50k pages / 100k pages | idle RSS after start |", "|---|---|---|"]
    for name in servers:
        lines.append(f"| {name} | {starts[name][0]:.1f} / {starts[name][1]:.1f} ms | {idle[name] / 1024:.1f} MiB |")
    if "nginx" in results:
        lines += ["", "Per-round ratios to nginx (req/s; CPU per response):", ""]
        for name in servers:
            if name == "nginx":
                continue
            for w in WORKLOADS:
                lines.append(f"- {name} {w}: " + " ".join(f"{x:.2f}" for x in ratio(name, w, "rps")) + "; "
                             + " ".join(f"{x:.2f}" for x in ratio(name, w, "cpu_ms_per_1k")))
    return lines + [""]
