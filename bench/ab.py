#!/usr/bin/env python3
"""A/B of server binaries side by side, beside nginx, on one page or a wrk script.

The full benchmark (bench.py) answers "where do we stand"; this answers "did this change
help", on a machine whose speed drifts from minute to minute: every server runs at once
(pinned to the same core, idle ones cost nothing), and each round loads them back to back,
so a round's ratios compare runs seconds apart. It reports the server's user and system
CPU per response apart: a change to our own code moves the user time, and the system time
(the kernel's share, the same syscalls for every build) shows how noisy the round was.
Each server's peak RSS over the rounds is reported beside them, so that a configuration
that trades memory for CPU (a larger --cache-max) shows the memory it took.

    python3 bench/ab.py --site bench/work/small --path /p150.html --conns 64 \\
        --server before='/tmp/old/tinyserve' --server after='target/x86_64-unknown-linux-musl/release/tinyserve'
    python3 bench/ab.py --site bench/work/large --script bench/work/large-zipf.lua --conns 32 \\
        --warm-script bench/work/large-uniform.lua \\
        --server after='target/x86_64-unknown-linux-musl/release/tinyserve --cache-open-files 16000'

Each `--server NAME='BINARY [ARGS]'` is started with `--root SITE --listen 127.0.0.1:PORT
--access-log off` before its own arguments; nginx is added unless `--no-nginx` (its
configuration is bench.py's). `--floor` adds bench/floor.c in its sendfile and memory modes:
the kernel's share of a response with next to no user-space work, the lowest CPU per
response any server can reach here. Prints a Markdown summary; raw wrk output is not kept.
"""

import argparse
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def one_run(pid, port, args, script) -> dict:
    u0, s0 = bench.cpu_split_ms(pid)
    extra = ["-s", script] if script else []
    sampler = bench.Sampler(pid)
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(["taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{args.conns}",
                              f"-d{args.duration}s", *extra, f"http://127.0.0.1:{port}{args.path}"],
                             capture_output=True, text=True, timeout=args.duration + 30).stdout
    finally:
        sampler.stop.set()
        sampler.join()
    u1, s1 = bench.cpu_split_ms(pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # wrk's own CPU over the run (taskset execs it): near 100% of its core, the rate is
    # the load generator's limit as much as the server's.
    client = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / args.duration
    r = bench.parse_wrk(out)
    k = r["requests"] / 1000 or float("nan")
    return {"rps": r["rps"], "user": (u1 - u0) / k, "sys": (s1 - s0) / k, "errors": r["errors"],
            "rss_kb": sampler.peak_rss, "client": client}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", required=True)
    p.add_argument("--server", action="append", required=True, metavar="NAME='BINARY [ARGS]'")
    p.add_argument("--no-nginx", action="store_true")
    p.add_argument("--floor", action="store_true",
                   help="also run bench/floor.c (built with cc) in its sendfile and memory modes: "
                        "what a server with no user-space work pays on this machine")
    p.add_argument("--path", default="/")
    p.add_argument("--ready", help="a path that answers 200 once a server is up (default: --path)")
    p.add_argument("--script", help="wrk Lua script choosing the requests")
    p.add_argument("--warm-script", help="wrk Lua script for a 6 s warm-up of every server")
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--duration", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--base-port", type=int, default=18300)
    args = p.parse_args()
    site = Path(args.site).resolve()

    work = Path(tempfile.mkdtemp(prefix="tinyserve-ab-"))
    if args.floor:
        floor = work / "floor"
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(floor), str(Path(__file__).resolve().parent / "floor.c")],
                       check=True)
        args.server += [f"floor-sendfile={floor} --mode sendfile", f"floor-memory={floor} --mode memory"]
    ports, argv = {}, {}
    for i, spec in enumerate(args.server):
        name, _, cmd = spec.partition("=")
        ports[name] = args.base_port + i
        words = shlex.split(cmd)
        argv[name] = [words[0], "--root", str(site), "--listen", f"127.0.0.1:{ports[name]}",
                      "--access-log", "off", *words[1:]]
    if not args.no_nginx:
        ports["nginx"] = args.base_port + len(args.server)
        argv["nginx"] = bench.server_commands(work, work, site, {**ports, "lighttpd": 0, "tinyserve": 0, "sws": 0})["nginx"][0]
    names = list(argv)
    procs = {}
    try:
        for name in names:
            procs[name] = bench.spawn(argv[name], args)
        for name in names:
            if not bench.first_200(ports[name], args.ready or args.path, time.monotonic() + 15):
                raise SystemExit(f"{name} did not answer 200 on {args.ready or args.path}")
        if args.warm_script:
            for name in names:
                subprocess.run(["taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{args.conns}", "-d6s",
                                "-s", args.warm_script, f"http://127.0.0.1:{ports[name]}/"],
                               capture_output=True, check=True)
        rounds = []
        for r in range(args.rounds):
            order = bench.rotation(names, r)
            rounds.append({n: one_run(procs[n].pid, ports[n], args, args.script) for n in order})
            print(f"round {r + 1}: " + " | ".join(
                f"{n} {rounds[-1][n]['rps'] / 1000:.0f}k u={rounds[-1][n]['user']:.2f} s={rounds[-1][n]['sys']:.2f}"
                f" wrk={rounds[-1][n]['client']:.0%}"
                for n in names), file=sys.stderr, flush=True)
    finally:
        for proc in procs.values():
            bench.stop(proc)
        shutil.rmtree(work, ignore_errors=True)

    base = "nginx" if "nginx" in names else names[0]
    what = args.script or args.path
    print(f"A/B on `{what}`, wrk -t1 -c{args.conns}, {args.rounds} rounds of {args.duration} s, servers back "
          f"to back in a rotating order; CPU per 1000 responses (user / system, ms), medians of the rounds; "
          f"ratios are medians of per-round ratios to {base}; peak RSS of the process tree over all rounds; "
          f"wrk's CPU is the load generator's, as a share of its core (median of the rounds).\n")
    print("| server | req/s | req/s vs " + base + " | user | system | CPU per response vs " + base + " | user vs "
          + base + " | peak RSS | wrk's CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    med = statistics.median
    for n in names:
        ratio = lambda f: med(f(r[n]) / f(r[base]) for r in rounds)  # noqa: E731
        print(f"| {n} | {med(r[n]['rps'] for r in rounds):,.0f} | {ratio(lambda x: x['rps']):.2f}× | "
              f"{med(r[n]['user'] for r in rounds):.2f} | "
              f"{med(r[n]['sys'] for r in rounds):.2f} | {ratio(lambda x: x['user'] + x['sys']):.2f}× | "
              f"{ratio(lambda x: x['user']):.2f}× | {max(r[n]['rss_kb'] for r in rounds) / 1024:.1f} MiB | "
              f"{med(r[n]['client'] for r in rounds):.0%} |")
    tinyserves = [n for n in names if n != "nginx" and not n.startswith("floor-")]
    for n in tinyserves[1:]:
        first = tinyserves[0]
        pair = lambda f: med(f(r[n]) / f(r[first]) for r in rounds)  # noqa: E731
        print(f"\n{n} ÷ {first}: CPU per response {pair(lambda x: x['user'] + x['sys']):.2f}×, user "
              f"{pair(lambda x: x['user']):.2f}×, system {pair(lambda x: x['sys']):.2f}×, req/s "
              f"{pair(lambda x: x['rps']):.2f}× (medians of per-round ratios)")
    errors = {n: [r[n]["errors"] for r in rounds if r[n]["errors"]] for n in names}
    print("\nErrors reported by wrk: " + (", ".join(f"{n}: {e}" for n, e in errors.items() if e) or "none"))
    print("\nServers: " + "; ".join(f"{n}: `{' '.join(shlex.quote(a) for a in argv[n])}`" for n in names))


if __name__ == "__main__":
    main()
