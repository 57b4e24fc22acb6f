#!/usr/bin/env python3
"""What compression costs: tinyserve's `--compress auto` (gzip made once per file, kept in
its share of the cache) against nginx with `gzip on` (every response compressed as it goes
out, level 1, nginx's default; and level 6, tinyserve's), every request accepting gzip.

Two sites: one without sidecars (bench.py's small site, the 10 KB page), and the demo site
precompressed as the image build does it (`docker/precompress.sh`: `.gz`, `.br`, `.zst`
beside each text file), where both servers send the sidecar. CPU per response (user +
system of the server's process tree), medians of alternating rounds, servers pinned to
CPU 0 and wrk to CPU 1, and each server's peak RSS.

Usage: python3 bench/compress.py [--rounds 6] (after the musl release build; nginx from
Debian's nginx-light). Prints a Markdown summary; raw output is not kept.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ab  # noqa: E402
import bench  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "target/x86_64-unknown-linux-musl/release/tinyserve"


def nginx_conf(work: Path, site: Path, port: int, level: int) -> Path:
    d = work / f"nginx-{port}"
    (d / "logs").mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""
worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  include /etc/nginx/mime.types; access_log off; sendfile on; tcp_nopush on;
  keepalive_requests 1000000; open_file_cache max=16000; etag on;
  gzip on; gzip_comp_level {level}; gzip_min_length 512; gzip_vary on; gzip_static on;
  gzip_types text/css application/javascript application/json image/svg+xml;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{port}; root {site}; }}
}}
""")
    return conf


def measure(site: Path, path: str, rounds: int, work: Path) -> list:
    script = work / "gzip.lua"
    script.write_text('wrk.headers["Accept-Encoding"] = "gzip"\n')
    servers = {
        "tinyserve": [str(BIN), "--root", str(site), "--listen", "127.0.0.1:18401",
                      "--access-log", "off"],
        "nginx gzip 1": ["nginx", "-c", str(nginx_conf(work, site, 18402, 1)), "-p", str(work)],
        "nginx gzip 6": ["nginx", "-c", str(nginx_conf(work, site, 18403, 6)), "-p", str(work)],
    }
    ports = {"tinyserve": 18401, "nginx gzip 1": 18402, "nginx gzip 6": 18403}
    args = argparse.Namespace(server_cpu=0, load_cpu=1, conns=64, duration=3, path=path)
    procs = {n: bench.spawn(argv, args) for n, argv in servers.items()}
    try:
        for n, port in ports.items():
            if not bench.first_200(port, path, time.monotonic() + 10):
                raise SystemExit(f"{n} does not answer {path}")
        # Warm: tinyserve's first responses go out as they are while it compresses.
        for n, port in ports.items():
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Accept-Encoding: gzip",
                            f"http://127.0.0.1:{port}{path}"], check=False)
        time.sleep(0.5)
        out = subprocess.run(["curl", "-s", "-D-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip",
                              f"http://127.0.0.1:18401{path}"], capture_output=True, text=True).stdout
        if "content-encoding: gzip" not in out.lower():
            raise SystemExit(f"tinyserve does not send gzip for {path}:\n{out}")
        results = []
        for r in range(rounds):
            order = list(servers)[r % 3:] + list(servers)[:r % 3]
            results.append({n: ab.one_run(procs[n].pid, ports[n], args, str(script)) for n in order})
        return results
    finally:
        for p in procs.values():
            bench.stop(p)


def table(results: list) -> list:
    med = statistics.median
    lines = ["| server | req/s | CPU per 1000 responses (user + system) | vs tinyserve | peak RSS |",
             "|---|---|---|---|---|"]
    for n in results[0]:
        cpu = [r[n]["user"] + r[n]["sys"] for r in results]
        ratio = med([(r[n]["user"] + r[n]["sys"]) / (r["tinyserve"]["user"] + r["tinyserve"]["sys"])
                     for r in results])
        lines.append(f"| {n} | {med([r[n]['rps'] for r in results]):,.0f} | {med(cpu):.2f} ms | "
                     f"{ratio:.2f}× | {max(r[n]['rss_kb'] for r in results) / 1024:.1f} MiB |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinyserve-compress-"))
    work.chmod(0o755)  # nginx's workers run as another user
    small = REPO / "bench/work/small"
    bench.make_site(small)
    demo = work / "demo"
    subprocess.run(["bash", str(REPO / "docker/precompress.sh"), str(REPO / "static"), str(demo)],
                   check=True, stdout=subprocess.DEVNULL)
    out = ["## Compression: every request accepts gzip", "",
           f"wrk -t1 -c64, {args.rounds} rounds of 3 s, servers back to back in a rotating order; "
           "medians of the rounds, ratios the medians of per-round ratios.", "",
           "**A site without sidecars** (the 10 KB page `/p10k.html`: tinyserve gzips it once, "
           "nginx on every response):", ""]
    out += table(measure(small, "/p10k.html", args.rounds, work))
    out += ["", "**The demo site, precompressed** (`/index.html`: both send its `.gz` sidecar):", ""]
    out += table(measure(demo, "/index.html", args.rounds, work))
    print("\n".join(out))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
