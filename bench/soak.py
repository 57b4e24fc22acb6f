#!/usr/bin/env python3
"""Soak: minutes of mixed traffic against one tinyserve, then a check that memory and
descriptors come back to where they started.

Traffic, all to 127.0.0.1 and bounded in time: keep-alive clients over many pages, short
connections, ranges, conditionals with the ETag just seen, downloads aborted half-way, slow
readers, clients that half-close after sending (`printf ... | nc` style), malformed and
oversized request heads, and a writer that edits, adds and deletes files while it runs (the
cache follows the site live). Every answer is checked: the status expected, a body whose
length is its Content-Length, and for files nobody edits the exact bytes.

Run through bench/run-soak.sh, or: python3 bench/soak.py --minutes 10 (after a musl release
build). Writes bench/results/<UTC time>-soak/summary.md. Not a test: nothing in cargo test
runs it.
"""

import argparse
import datetime
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = REPO / "target/x86_64-unknown-linux-musl/release/tinyserve"
PAGES = 2000


def make_site(root: Path) -> dict:
    rng = random.Random(7)
    files = {}
    for i in range(PAGES):
        data = rng.randbytes(rng.randint(200, 30_000))
        files[f"/p/{i // 100}/{i}.html"] = data
    for i in range(20):
        files[f"/media/{i}.bin"] = rng.randbytes(rng.randint(1 << 20, 6 << 20))
    for path, data in files.items():
        f = root / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    (root / "live").mkdir(exist_ok=True)
    return files


def cache_figures(port: int) -> dict:
    """The cache's figures from the metrics listener."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("tinyserve_cache_"):
            name, value = line.rsplit(" ", 1)
            out[name.removeprefix("tinyserve_cache_")] = float(value)
    return out


def proc_figures(pid: int) -> tuple:
    rss = next(int(l.split()[1]) for l in Path(f"/proc/{pid}/status").read_text().splitlines()
               if l.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, kind: str, ok: bool, detail: str = ""):
        with self.lock:
            good, bad = self.counts.get(kind, (0, 0))
            self.counts[kind] = (good + ok, bad + (not ok))
            if not ok and len(self.errors) < 20:
                self.errors.append(f"{kind}: {detail}")


def read_response(f, head_only=False):
    """(status, headers, body) from a file-like socket reader; None at EOF."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    headers = {}
    while True:
        l = f.readline()
        if l in (b"\r\n", b""):
            break
        k, _, v = l.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = b"" if head_only else f.read(n)
    return status, headers, body


def worker(kind, addr, files, stop, tally):
    rng = random.Random(hash(kind) ^ threading.get_ident())
    stable = [p for p in files if p.startswith("/p/")]
    big = [p for p in files if p.startswith("/media/")]
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as s:
                f = s.makefile("rb")
                if kind == "keepalive":
                    for _ in range(50):
                        p = rng.choice(stable)
                        s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
                        st, h, body = read_response(f)
                        tally.add(kind, st == 200 and body == files[p], f"{p} {st}")
                elif kind == "short":
                    p = rng.choice(stable)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
                    st, h, body = read_response(f)
                    tally.add(kind, st == 200 and body == files[p], f"{p} {st}")
                elif kind == "range":
                    p = rng.choice(big)
                    a = rng.randrange(len(files[p]) - 1000)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\nRange: bytes={a}-{a + 999}\r\n\r\n".encode())
                    st, h, body = read_response(f)
                    tally.add(kind, st == 206 and body == files[p][a:a + 1000], f"{p} {st}")
                elif kind == "conditional":
                    p = rng.choice(stable)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
                    st, h, body = read_response(f)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\nIf-None-Match: {h.get('etag')}\r\n\r\n".encode())
                    st2, _, _ = read_response(f)
                    tally.add(kind, st == 200 and st2 == 304, f"{p} {st} {st2}")
                elif kind == "aborted":
                    p = rng.choice(big)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
                    s.recv(rng.randint(1000, 200_000))
                    tally.add(kind, True)  # closing now is the point
                elif kind == "slow":
                    p = rng.choice(big)
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
                    got = 0
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += len(chunk)
                        time.sleep(0.002)
                    tally.add(kind, got > len(files[p]), f"{p} {got}")
                elif kind == "halfclose":
                    p = rng.choice(stable + ["/healthz"])
                    s.sendall(f"GET {p} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
                    s.shutdown(socket.SHUT_WR)
                    st, h, body = read_response(f)
                    want = b"ok" if p == "/healthz" else files[p]
                    tally.add(kind, st == 200 and body == want and f.read() == b"", f"{p} {st}")
                elif kind == "malformed":
                    junk = rng.choice([b"BLAH\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                                       b"GET /%zz HTTP/1.1\r\nHost: s\r\n\r\n",
                                       b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
                                       bytes(rng.randrange(256) for _ in range(64)) + b"\r\n\r\n"])
                    s.sendall(junk)
                    r = read_response(f)
                    tally.add(kind, r is None or r[0] in (400, 404, 431, 505), f"{junk[:20]!r} {r and r[0]}")
                elif kind == "live":
                    # Writes, rewrites and deletes files under /live/, checking each is
                    # served as it now is (a change is served within a second).
                    name = f"/live/{rng.randrange(50)}.txt"
                    path = Path(args.site) / name.lstrip("/")
                    data = rng.randbytes(rng.randint(10, 50_000))
                    tmp = path.with_suffix(".tmp~")
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
                    deadline = time.monotonic() + 1.0
                    while True:
                        s2 = socket.create_connection(addr, timeout=10)
                        s2.sendall(f"GET {name} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n".encode())
                        st, h, body = read_response(s2.makefile("rb"))
                        s2.close()
                        if st == 200 and body == data:
                            tally.add(kind, True)
                            break
                        if time.monotonic() > deadline:
                            tally.add(kind, False, f"{name} not served within 1 s")
                            break
                        time.sleep(0.01)
                    if rng.random() < 0.3:
                        path.unlink()
        except (OSError, TypeError, ValueError, IndexError) as e:
            tally.add(kind, kind in ("aborted", "malformed"), repr(e))


KINDS = ["keepalive"] * 3 + ["short", "range", "conditional", "aborted", "slow", "halfclose",
                             "halfclose", "malformed", "live"]


def main():
    global args
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", default="2", help="tinyserve --workers (1 is what a 1-CPU pod runs)")
    ap.add_argument("--site", default=str(HERE / "work" / "soak-site"))
    ap.add_argument("--server-args", default="",
                    help="more tinyserve flags, e.g. small cache budgets so that every budget evicts all "
                         "the time: '--cache-max 4MiB --cache-open-files 100 --cache-entries 1000'")
    args = ap.parse_args()
    site = Path(args.site)
    files = make_site(site)
    server = subprocess.Popen([str(BIN), "--root", str(site), "--listen", "127.0.0.1:0", "--access-log", "off",
                               "--idle-timeout", "5s", "--workers", args.workers,
                               "--metrics-listen", "127.0.0.1:0", *args.server_args.split()],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = server.stdout.readline()
    port = int(first.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    metrics_port = None
    for line in server.stdout:
        if "metrics on http://" in line:
            metrics_port = int(line.split("metrics on http://")[1].split("/")[0].rsplit(":", 1)[1])
            break
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    addr = ("127.0.0.1", port)
    time.sleep(0.3)
    base_rss, base_fds = proc_figures(server.pid)
    stop, tally = threading.Event(), Tally()
    threads = [threading.Thread(target=worker, args=(k, addr, files, stop, tally), daemon=True) for k in KINDS]
    for t in threads:
        t.start()
    peak_rss, peak_fds, end = base_rss, base_fds, time.monotonic() + args.minutes * 60
    while time.monotonic() < end:
        time.sleep(1)
        rss, fds = proc_figures(server.pid)
        peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    time.sleep(7)  # the idle timeout closes what the clients left open
    rss, fds = proc_figures(server.pid)
    cache = cache_figures(metrics_port)
    server.terminate()
    code = server.wait(timeout=30)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%MZ")
    total_ok = sum(g for g, _ in tally.counts.values())
    total_bad = sum(b for _, b in tally.counts.values())
    lines = [
        f"# Soak {stamp}", "",
        f"{args.minutes:g} minutes, tinyserve --workers {args.workers}, {PAGES} pages + 20 files of 1-6 MB, "
        f"{len(threads)} client threads ({', '.join(sorted(set(KINDS)))}), `--idle-timeout 5s"
        f"{' ' + args.server_args if args.server_args else ''}`. "
        f"Exit code after SIGTERM: {code}.", "",
        "| figure | start | peak | after |", "|---|---|---|---|",
        f"| RSS | {base_rss / 1024:.1f} MiB | {peak_rss / 1024:.1f} MiB | {rss / 1024:.1f} MiB |",
        f"| open descriptors | {base_fds} | {peak_fds} | {fds} |", "",
        f"After: the cache holds {cache['memory_bytes'] / 2**20:.1f} MiB (of which content "
        f"{cache['content_bytes'] / 2**20:.1f} MiB) in {cache['entries']:.0f} entries and keeps "
        f"{cache['open_files']:.0f} files open; {cache['evictions_total']:.0f} evictions, "
        f"{cache['revalidations_total']:.0f} revalidations. So the descriptors beyond the start are the "
        f"cache's: {fds - base_fds} = {cache['open_files']:.0f} kept open"
        f"{' (all accounted for)' if fds - base_fds <= cache['open_files'] else ' (LEAKED: more than the cache holds)'}.", "",
        "| traffic | checked | failed |", "|---|---|---|",
        *[f"| {k} | {g} | {b} |" for k, (g, b) in sorted(tally.counts.items())],
        f"| all | {total_ok} | {total_bad} |", "",
        "Failures (first 20): " + ("; ".join(tally.errors) or "none"), "",
    ]
    out = HERE / "results" / f"{stamp}-soak"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("\n".join(lines))
    print("\n".join(lines))
    ok = total_bad == 0 and fds - base_fds <= cache["open_files"] and code == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
