#!/usr/bin/env python3
"""Side-by-side benchmark of tinyserve, nginx, lighttpd and static-web-server.

Each server gets the same files, runs pinned to one core (taskset -c SERVER_CPU) while wrk
runs pinned to another (-t1). All servers run at once; for each scenario the
servers take turns, round after round, and the summary reports the median of the rounds and
every rate as the median of its per-round ratios to nginx. Raw wrk/curl output is kept under the output folder.

It is a benchmark, not a test: it asserts nothing. Run it through bench/run.sh, which
installs the servers and builds tinyserve.
"""

import argparse
import large_site
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SCENARIOS = [
    # name, path, connections
    ("150B", "/p150.html", 64),
    ("10KB", "/p10k.html", 64),
    ("1MB", "/p1m.bin", 8),
]


def make_site(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    page = "<!doctype html><title>bench</title><p>" + "x" * 90 + "</p>\n"
    page = page[:149] + "\n"
    (root / "p150.html").write_text(page)
    (root / "index.html").write_text(page)
    (root / "p10k.html").write_text(("<p>" + "lorem ipsum dolor sit amet " * 3 + "</p>\n") * 120)
    for name, size in (("p1m.bin", 1 << 20), ("p100m.bin", 100 << 20)):
        f = root / name
        if not f.exists() or f.stat().st_size != size:
            with open(f, "wb") as out:
                out.write(os.urandom(size))


def server_commands(tools: Path, work: Path, site: Path, ports: dict) -> dict:
    """name -> (argv, readiness path)."""
    work.mkdir(parents=True, exist_ok=True)
    nginx_dir = work / "nginx"
    (nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
    (nginx_dir / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
pid {nginx_dir}/nginx.pid;
error_log {nginx_dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  open_file_cache max=16000 inactive=60s;
  open_file_cache_valid 60s;
  client_body_temp_path {nginx_dir}/body;
  proxy_temp_path {nginx_dir}/proxy;
  fastcgi_temp_path {nginx_dir}/fastcgi;
  uwsgi_temp_path {nginx_dir}/uwsgi;
  scgi_temp_path {nginx_dir}/scgi;
  server {{ listen 127.0.0.1:{ports['nginx']}; root {site}; }}
}}
""")
    lighttpd_conf = work / "lighttpd.conf"
    lighttpd_conf.write_text(f"""
server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {ports['lighttpd']}
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 60
server.max-fds = 16384
server.max-connections = 4096
server.errorlog = "{work}/lighttpd-error.log"
mimetype.assign = ( ".html" => "text/html; charset=utf-8", ".bin" => "application/octet-stream" )
""")
    def tinyserve(name: str, *extra: str) -> tuple:
        return ([str(REPO / "target/x86_64-unknown-linux-musl/release/tinyserve"), "--root", str(site),
                 "--listen", f"127.0.0.1:{ports.get(name, 0)}", "--access-log", "off", *extra], "/readyz")

    return {
        "tinyserve": tinyserve("tinyserve"),
        # The same with a content budget that holds a large site's popular pages (for the
        # large-site case): pages go out from memory in one writev instead of sendfile.
        "tinyserve-512MiB": tinyserve("tinyserve-512MiB", "--cache-max", "512MiB", "--cache-file-max", "32KiB"),
        "nginx": (["nginx", "-c", str(nginx_dir / "nginx.conf"), "-p", str(nginx_dir)], "/p150.html"),
        "lighttpd": (["lighttpd", "-D", "-f", str(lighttpd_conf)], "/p150.html"),
        "sws": ([str(tools / "bin/static-web-server"), "--host", "127.0.0.1", "--port", str(ports["sws"]),
                 "--root", str(site), "--log-level", "error", "--compression", "false",
                 "--cache-control-headers", "false"], "/p150.html"),
    }


def first_200(port: int, path: str, deadline: float) -> bool:
    req = f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(req)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.0002)
    return False


def tree_pids(pid: int) -> list:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for c in children:
        out += tree_pids(int(c))
    return out


def proc_field(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    return sum(proc_field(p, "VmRSS") for p in tree_pids(pid))


def threads(pid: int) -> int:
    return sum(proc_field(p, "Threads") for p in tree_pids(pid))


def cpu_split_ms(pid: int) -> tuple:
    """(user, system) CPU time of a process tree so far, in milliseconds (every thread)."""
    user = system = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # fields 14 and 15
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    return user * tick, system * tick


def cpu_ms(pid: int) -> float:
    """User plus system CPU time of a process tree so far, in milliseconds (every thread)."""
    return sum(cpu_split_ms(pid))


class Sampler(threading.Thread):
    """Peak RSS and thread count of a process tree while a load runs."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak_rss, self.peak_threads = pid, threading.Event(), 0, 0

    def run(self):
        while not self.stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_kb(self.pid))
            self.peak_threads = max(self.peak_threads, threads(self.pid))
            time.sleep(0.05)


def parse_latency(text: str, pct: str) -> float:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse_wrk(text: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    tr = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    mult = {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(count.group(1)) if count else 0,
        "mbps": float(tr.group(1)) * mult.get(tr.group(2), 1) if tr else 0.0,
        "p50_ms": parse_latency(text, "50"),
        "p99_ms": parse_latency(text, "99"),
        "errors": (errors.group(1) if errors else "") + (f" non2xx={non2xx.group(1)}" if non2xx else ""),
    }


def spawn(argv, args) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", str(args.server_cpu)] + argv,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_to_ready(argv, ready_path, port, args) -> float:
    """Milliseconds from spawning the server to its first 200."""
    t0 = time.monotonic()
    proc = spawn(argv, args)
    try:
        if not first_200(port, ready_path, t0 + 10):
            raise SystemExit(f"{argv[0]} did not answer 200 on {ready_path} within 10 s")
        return (time.monotonic() - t0) * 1000
    finally:
        stop(proc)


def load(name, pid, port, scen, path, conns, args, raw: Path, rep: int, script: str = None) -> dict:
    """One wrk run against one server, sampling its RSS and threads meanwhile; `script`
    is a wrk Lua script choosing the requests."""
    sampler = Sampler(pid)
    sampler.start()
    cpu_before = cpu_ms(pid)
    extra = ["-s", script] if script else []
    out = subprocess.run(["taskset", "-c", str(args.load_cpu), "wrk", "-t1", f"-c{conns}",
                          f"-d{args.duration}s", "--latency", *extra, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=args.duration + 30).stdout
    cpu = cpu_ms(pid) - cpu_before
    sampler.stop.set()
    sampler.join()
    (raw / f"{name}-{scen}-r{rep}.txt").write_text(out + f"server CPU: {cpu:.0f} ms\n")
    r = parse_wrk(out)
    r["peak_rss_kb"], r["peak_threads"] = sampler.peak_rss, sampler.peak_threads
    # The server's own cost per response: unlike the rate, it does not depend on how fast
    # the load generator is, and it moves much less with the machine's noise.
    r["cpu_ms_per_1k"] = cpu * 1000 / r["requests"] if r["requests"] else float("nan")
    return r


def download(name, port, args, raw: Path, rep: int) -> dict:
    """One 100 MB download on a fresh connection."""
    out = subprocess.run(["taskset", "-c", str(args.load_cpu), "curl", "-s", "-o", "/dev/null", "-w",
                          "%{http_code} %{size_download} %{time_total}",
                          f"http://127.0.0.1:{port}/p100m.bin"], capture_output=True, text=True, timeout=120).stdout
    (raw / f"{name}-100MB-r{rep}.txt").write_text(out + "\n")
    code, size, secs = out.split()
    return {"mbps": int(size) / 1e6 / float(secs) if code == "200" else 0.0}


def run_all(servers, cmds, ports, args, raw: Path) -> dict:
    """Starts every server at once (pinned to the same core; idle ones cost nothing), then
    runs each scenario round by round with the servers back to back in a rotating order.
    Peers measured seconds apart see the same machine: on a shared VM the throughput of
    every server drifts by tens of percent over a minute, while the ratio between
    neighbouring runs holds."""
    procs, results = {}, {n: [{} for _ in range(args.repeats)] for n in servers}
    try:
        for name in servers:
            argv, ready = cmds[name]
            procs[name] = spawn(argv, args)
            if not first_200(ports[name], ready, time.monotonic() + 10):
                raise SystemExit(f"{name} did not answer 200 on {ready} within 10 s")
        time.sleep(0.5)
        for name in servers:
            for r in results[name]:
                r["idle_rss_kb"], r["idle_threads"] = rss_kb(procs[name].pid), threads(procs[name].pid)
        for scen, path, conns in SCENARIOS + [("100MB", "/p100m.bin", 1)]:
            for rep in range(1, args.repeats + 1):
                order = rotation(servers, rep - 1)
                print(f"{scen} round {rep}/{args.repeats}: {', '.join(order)}", file=sys.stderr, flush=True)
                for name in order:
                    if scen == "100MB":
                        results[name][rep - 1][scen] = download(name, ports[name], args, raw, rep)
                    else:
                        results[name][rep - 1][scen] = load(name, procs[name].pid, ports[name], scen, path,
                                                            conns, args, raw, rep)
    finally:
        for proc in procs.values():
            stop(proc)
    return results


def rotation(servers: list, round_index: int) -> list:
    """The servers in the order of round `round_index` (from 0): rotated, so no server
    always goes first."""
    k = round_index % len(servers)
    return servers[k:] + servers[:k]


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


# Starts timed per server and site. Each is a few milliseconds, and on a noisy VM a median
# of five moved by 1.5 ms between runs.
STARTS = 15

RATIO_KEYS = ["150B_rps", "10KB_rps", "1MB_mbps", "100MB_mbps"]
CPU_KEYS = ["150B_cpu_ms_per_1k", "10KB_cpu_ms_per_1k", "1MB_cpu_ms_per_1k"]


def figure_getters() -> dict:
    keys = {
        "start_ms": lambda r: r["start_ms"],
        "start_demo_ms": lambda r: r["start_demo_ms"],
        "idle_rss_kb": lambda r: r["idle_rss_kb"],
        "peak_rss_150B_kb": lambda r: r["150B"]["peak_rss_kb"],
        "peak_threads": lambda r: max(r[s]["peak_threads"] for s, _, _ in SCENARIOS),
        "100MB_mbps": lambda r: r["100MB"]["mbps"],
    }
    for scen, _, _ in SCENARIOS:
        for m in ("rps", "mbps", "p50_ms", "p99_ms", "cpu_ms_per_1k"):
            keys[f"{scen}_{m}"] = (lambda s, mm: lambda r: r[s][mm])(scen, m)
    return keys


def round_ratios(results: dict, servers: list, base: str = "nginx", keys=None) -> dict:
    """name -> key -> the ratio to `base` in each round (the two measured seconds apart)."""
    if base not in results:
        return {}
    get = figure_getters()
    out = {}
    for name in servers:
        out[name] = {}
        for key in keys or RATIO_KEYS:
            pairs = zip(results[name], results[base])
            out[name][key] = [get[key](a) / get[key](b) if get[key](b) else float("nan") for a, b in pairs]
    return out


def versus_lighttpd(results: dict) -> list:
    """tinyserve against lighttpd, the fastest peer: median and every per-round ratio."""
    if "tinyserve" not in results or "lighttpd" not in results:
        return []
    ratios = round_ratios(results, ["tinyserve"], base="lighttpd")["tinyserve"]
    parts = [f"{key.split('_')[0]} {median(r):.2f}× (" + " ".join(f"{x:.2f}" for x in r) + ")"
             for key, r in ratios.items()]
    return ["tinyserve ÷ lighttpd, median of per-round ratios (every round): " + "; ".join(parts), ""]


def summarize(results: dict, servers: list) -> dict:
    keys = figure_getters()
    summary = {name: {k: median([f(r) for r in results[name]]) for k, f in keys.items()} for name in servers}
    for name, by_key in round_ratios(results, servers, keys=RATIO_KEYS + CPU_KEYS).items():
        for key, ratios in by_key.items():
            summary[name][f"{key}_ratio"] = median(ratios)
    return summary


def cpu_table(summary: dict, servers: list) -> str:
    """Server CPU per 1000 responses, with the median per-round ratio to nginx."""
    lines = ["| server | 150 B | 10 KB | 1 MB |", "|---|---|---|---|"]
    for n in servers:
        s = summary[n]
        cells = []
        for key in CPU_KEYS:
            r = s.get(f"{key}_ratio")
            cells.append(f"{s[key]:.1f} ms" + ("" if r is None or r != r else f" ({r:.2f}×)"))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(summary: dict, servers: list) -> str:
    def ratio(name, key):
        r = summary[name].get(f"{key}_ratio")
        return "" if r is None or r != r else f" ({r:.2f}×)"

    lines = [
        "| server | 150 B req/s | p50 / p99 ms | 10 KB req/s | p50 / p99 ms | 1 MB MB/s | p50 / p99 ms | 100 MB MB/s | idle RSS | peak RSS (150 B) | threads | start → 200: demo site / bench site |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in servers:
        s = summary[n]
        lines.append(
            f"| {n} | {s['150B_rps']:,.0f}{ratio(n, '150B_rps')} | {s['150B_p50_ms']:.2f} / {s['150B_p99_ms']:.2f} "
            f"| {s['10KB_rps']:,.0f}{ratio(n, '10KB_rps')} | {s['10KB_p50_ms']:.2f} / {s['10KB_p99_ms']:.2f} "
            f"| {s['1MB_mbps']:,.0f}{ratio(n, '1MB_mbps')} | {s['1MB_p50_ms']:.2f} / {s['1MB_p99_ms']:.2f} "
            f"| {s['100MB_mbps']:,.0f}{ratio(n, '100MB_mbps')} "
            f"| {s['idle_rss_kb'] / 1024:.1f} MiB | {s['peak_rss_150B_kb'] / 1024:.1f} MiB | {s['peak_threads']:.0f} "
            f"| {s['start_demo_ms']:.1f} / {s['start_ms']:.1f} ms |"
        )
    return "\n".join(lines)


def ratio_lines(ratios: dict, servers: list) -> list:
    lines = []
    for name in servers:
        if name == "nginx" or name not in ratios:
            continue
        parts = [f"{key.split('_')[0]} " + " ".join(f"{r:.2f}" for r in ratios[name][key]) for key in RATIO_KEYS]
        lines.append(f"- {name}: " + "; ".join(parts))
    return lines


def versions(tools: Path) -> dict:
    def cmd(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unavailable"
    return {
        "tinyserve": cmd([str(REPO / "target/x86_64-unknown-linux-musl/release/tinyserve"), "--version"]),
        "nginx": cmd(["nginx", "-v"]),
        "lighttpd": cmd(["lighttpd", "-v"]),
        "sws": cmd([str(tools / "bin/static-web-server"), "--version"]),
        "wrk": cmd(["wrk", "-v"]),
        "kernel": cmd(["uname", "-r"]),
        "cpu": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.startswith("model name")), "unknown"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=1, help="seconds per wrk run (default 1)")
    ap.add_argument("--repeats", type=int, default=15, help="rounds per scenario (default 15)")
    ap.add_argument("--servers", default="nginx,lighttpd,sws,tinyserve")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--out", default=None, help="output folder (default bench/results/<UTC time>)")
    ap.add_argument("--large-servers", default="nginx,lighttpd,tinyserve,tinyserve-512MiB",
                    help="servers for the large-site case; empty to skip it")
    args = ap.parse_args()

    servers = args.servers.split(",")
    tools = HERE / ".tools"
    work = HERE / "work"
    args.work = str(work)
    site = work / "site"
    make_site(site)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    out = Path(args.out) if args.out else HERE / "results" / stamp
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    ports = {"tinyserve": 18101, "nginx": 18102, "lighttpd": 18103, "sws": 18104, "tinyserve-512MiB": 18105}
    cmds = server_commands(tools, work, site, ports)
    # Start-up is also timed on the repository's small demo site: the bench site's 100 MB
    # file costs tinyserve its content hash (the ETag) before it binds.
    demo_cmds = server_commands(tools, work / "demo", REPO / "static", ports)

    # Start-up first, each server alone: STARTS starts on the bench site, STARTS on the demo site.
    startup = {}
    for name in servers:
        print(f"start-up: {name}", file=sys.stderr, flush=True)
        argv, ready = cmds[name]
        demo_argv, demo_ready = demo_cmds[name]
        startup[name] = (
            median([start_to_ready(argv, ready, ports[name], args) for _ in range(STARTS)]),
            median([start_to_ready(demo_argv, demo_ready if name == "tinyserve" else "/index.html",
                                   ports[name], args) for _ in range(STARTS)]),
        )
    results = run_all(servers, cmds, ports, args, raw)
    for name in servers:
        for r in results[name]:
            r["start_ms"], r["start_demo_ms"] = startup[name]

    summary = summarize(results, servers)
    info = versions(tools)
    md = [
        f"# Benchmark {stamp}",
        "",
        f"Machine: {info['cpu']}, {os.cpu_count()} CPUs, Linux {info['kernel']}. Server pinned to CPU "
        f"{args.server_cpu}, `wrk -t1` pinned to CPU {args.load_cpu}; {args.duration} s per run, "
        f"{args.repeats} rounds per scenario with the servers back to back in a rotating order. Figures are "
        "medians over the rounds; each ratio is the median of the per-round ratios to nginx (measured "
        "seconds apart, so machine-wide drift cancels).",
        "",
        table(summary, servers),
        "",
        "Per-round ratios to nginx (150B / 10KB / 1MB / 100MB, round 1 first):",
        "",
        *ratio_lines(round_ratios(results, servers), servers),
        "",
        *versus_lighttpd(results),
        "Server CPU (user + system, every thread and process) per 1000 responses, median of the "
        "rounds; lower is better, ratios are medians of per-round ratios to nginx:",
        "",
        cpu_table(summary, servers),
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in info.items() if k not in ("cpu", "kernel")),
        "",
        "Errors reported by wrk (should be empty): "
        + (", ".join(f"{n} {s}: {r[s]['errors']}" for n in servers for r in results[n] for s, _, _ in SCENARIOS
                     if r[s]["errors"]) or "none"),
    ]
    large = [n for n in args.large_servers.split(",") if n]
    if large:
        md += [""] + large_site.run(large, lambda s: server_commands(tools, work / "large-conf", s, ports),
                                    ports, args, raw, helpers=sys.modules[__name__])
    (out / "summary.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "versions": info, "runs": results,
                                                  "ratios": round_ratios(results, servers),
                                                  "summary": summary}, indent=2))
    print("\n".join(md))
    print(f"\nraw output: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
