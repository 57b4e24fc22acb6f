#!/usr/bin/env python3
"""Memory per connection: N idle keep-alive connections (each has had one request
answered, as a browser's or a load balancer's would) opened in a burst, the same number
opened at a steady rate (--rate per second, as clients arrive over time), then M active
ones (each in the middle of a 4 MB download it does not read), against tinyserve and nginx
in turn. The
server's resident memory (VmRSS of its processes) before and with the connections open,
divided by their number. Bounded: everything on 127.0.0.1, each phase closes what it
opened.

Usage: python3 bench/connections.py [--idle 10000] [--rate 200] [--active 1000]
(after `cargo build --release --locked --target x86_64-unknown-linux-musl`; nginx from
Debian's nginx-light). Writes bench/results/<UTC time>-connections/summary.md.
"""

import argparse
import datetime
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = REPO / "target/x86_64-unknown-linux-musl/release/tinyserve"


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    out = [pid]
    try:
        for c in open(f"/proc/{pid}/task/{pid}/children").read().split():
            out += children(int(c))
    except FileNotFoundError:
        pass
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start_tinyserve(site, port, cap):
    p = subprocess.Popen(
        [str(BIN), "--root", site, "--listen", f"127.0.0.1:{port}", "--access-log", "off",
         "--max-connections", str(cap), "--idle-timeout", "10m", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p


def start_nginx(site, port, cap, work):
    conf = Path(work) / "nginx.conf"
    conf.write_text(f"""
daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;
worker_rlimit_nofile {cap * 2 + 100};
events {{ worker_connections {cap + 100}; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 600s; keepalive_requests 100000;
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{port}; root {site}; }}
}}
""")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", work],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_idle(port, n, rate=None):
    socks = []
    request = b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        head, body = got.split(b"\r\n\r\n", 1)
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0].split(b":")[1])
        while len(body) < length:
            body += s.recv(4096)
        socks.append(s)
        if rate:
            time.sleep(1 / rate)
    return socks


def open_active(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        s.recv(1024)
        socks.append(s)
    return socks


def held(proc, socks, settle, early=None):
    """The server's RSS with `socks` open `settle` seconds, then a second after closing them;
    with `early`, also the RSS `early` seconds after the last one opened (appended)."""
    first = None
    if early is not None:
        time.sleep(early)
        first = rss_kib(children(proc.pid))
        settle -= early
    time.sleep(settle)
    with_them = rss_kib(children(proc.pid))
    if early is not None:
        for s in socks:
            s.close()
        time.sleep(1)
        return with_them, rss_kib(children(proc.pid)), first
    for s in socks:
        s.close()
    time.sleep(1)
    return with_them, rss_kib(children(proc.pid))


def measure(name, proc, port, idle, active, rate):
    wait_port(port)
    time.sleep(0.5)
    base = rss_kib(children(proc.pid))
    # tinyserve parks a connection that has rested one tick of its timers (2.5 s with the
    # default 10 s header timeout): wait past two.
    with_idle, _, one_second = held(proc, open_idle(port, idle), 6, early=1)
    with_steady, after_idle = held(proc, open_idle(port, idle, rate), 6)
    with_active, end = held(proc, open_active(port, active), 2)
    proc.terminate()
    proc.wait(timeout=20)
    return {
        "name": name,
        "base": base,
        "idle_total": with_idle,
        "idle_per": (with_idle - base) / idle,
        "one_second_per": (one_second - base) / idle,
        "after_idle": after_idle,
        "steady_per": (with_steady - base) / idle,
        "active_total": with_active,
        "active_per": (with_active - after_idle) / active,
        "end": end,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--active", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=200.0)
    args = ap.parse_args()
    need = args.idle + args.active + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, need), hard), hard))
    work = tempfile.mkdtemp(prefix="tinyserve-conn-")
    site = Path(work) / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<!doctype html><title>x</title>" + b"x" * 500)
    (site / "big.bin").write_bytes(os.urandom(4 << 20))
    os.chmod(work, 0o755)
    rows = []
    cap = args.idle + args.active + 100
    port = free_port()
    rows.append(measure("tinyserve", start_tinyserve(str(site), port, cap), port, args.idle, args.active, args.rate))
    if shutil.which("nginx"):
        port = free_port()
        rows.append(measure("nginx", start_nginx(str(site), port, cap, work), port, args.idle, args.active, args.rate))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    out = HERE / "results" / f"{stamp}-connections"
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Memory per connection, {stamp}",
        "",
        f"{args.idle} idle keep-alive connections (one request answered each) opened in a burst, "
        f"then {args.idle} opened at {args.rate:g} per second, then {args.active} active ones (a "
        "4 MB download each, unread, 4 KiB receive buffer). Server RSS in KiB (all its "
        "processes); one worker each; measured 6 s after the last idle connection opened "
        "(tinyserve has parked them by then), and for the burst also 1 s after.",
        "",
        "| server | RSS at start | with the burst | per idle connection, burst, after 1 s | per idle connection, burst, after 6 s | per idle connection, steady | with active | per active connection | at the end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['base']} | {r['idle_total']} | {r['one_second_per']:.2f} KiB | {r['idle_per']:.2f} KiB | "
            f"{r['steady_per']:.2f} KiB | {r['active_total']} | {r['active_per']:.2f} KiB | {r['end']} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
