//! Helpers shared by the integration tests: start the real binary on a free port, speak
//! plain HTTP/1.1 to it over TCP, and build small sites in temporary folders.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod docker;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tinyserve");

/// A running `tinyserve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every line the server printed on stdout so far.
    pub lines: Arc<Mutex<Vec<String>>>,
    new_line: mpsc::Receiver<String>,
}

/// Builds the release binary for `target` as `docker/build-image.sh` does (`cargo build
/// --release --locked --target …`) and returns its path: the binary users run, with the
/// allocator and settings they get, where `BIN` is this test build's.
pub fn release_binary(target: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("cargo")
        .args(["build", "--release", "--locked", "--target", target])
        .current_dir(root)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --target {target} failed");
    root.join(format!("target/{target}/release/tinyserve"))
}

impl Server {
    /// Starts the binary serving `root` on 127.0.0.1:0 with extra `args`.
    pub fn start(root: &Path, args: &[&str]) -> Server {
        Server::start_env(root, args, &[])
    }

    /// Like [`Server::start`], with environment variables (the rest of the environment is
    /// cleared so a developer's `TINYSERVE_*` settings cannot leak in).
    pub fn start_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_program(Command::new(BIN), root, args, env)
    }

    /// Like [`Server::start_env`], running `cmd` (another build of the binary, or an
    /// emulator with the binary as its first argument) instead of this build.
    pub fn start_program(
        mut cmd: Command,
        root: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        cmd.env_clear()
            .arg("--root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .args(runtime_override(args))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start tinyserve");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tinyserve printed nothing");
        let addr = address_after(&first, "listening on ")
            .unwrap_or_else(|| panic!("first line lacks the address: {first}"));
        Server {
            child,
            addr,
            lines,
            new_line: rx,
        }
    }

    /// Waits (up to 10 s) for a stdout line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        if let Some(l) = self
            .lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
        {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.new_line.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => continue,
                Err(_) => panic!(
                    "no line containing {needle:?}; got {:?}",
                    self.lines.lock().unwrap()
                ),
            }
        }
    }

    /// Runs `each` (a request, with its assertions) until a line containing `needle` is
    /// logged, for at most `limit`; returns the line. Rule files and the like are read
    /// again by the first request after a change, so waiting alone would never see it.
    pub fn until_logged(&self, needle: &str, limit: Duration, mut each: impl FnMut()) -> String {
        let started = Instant::now();
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            each();
            assert!(started.elapsed() < limit, "no line containing {needle:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.wait_for_line(needle)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        signal(self.child.id(), "TERM");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tinyserve did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }

    /// The text of `/metrics` on the metrics listener (started with `--metrics-listen`).
    pub fn metrics(&self) -> String {
        let line = self.wait_for_line("metrics on ");
        let maddr = address_after(&line, "metrics on ").unwrap();
        let raw = send_raw(
            maddr,
            b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
        );
        parse_response(&raw).unwrap().text()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--workers N` when the test run asks for one runtime everywhere
/// (`TINYSERVE_TEST_WORKERS=1` runs every server on the single-threaded runtime a 1-CPU pod
/// gets; `.ci/run` makes that second pass), unless the test chose its own.
fn runtime_override(args: &[&str]) -> Vec<String> {
    match std::env::var("TINYSERVE_TEST_WORKERS") {
        Ok(n) if !args.contains(&"--workers") => vec!["--workers".to_string(), n],
        _ => Vec::new(),
    }
}

/// Sends a signal with kill(1).
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid} failed");
}

/// Parses the `IP:PORT` that follows `marker` in a log line (text or JSON).
pub fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '/')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    parse_response(&send_raw(addr, raw.as_bytes())).expect("a complete HTTP response")
}

/// Writes `bytes`, then reads until the server closes (at most 10 s).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Parses one response whose body runs to the end of `raw` (or to its Content-Length).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Writes `content` to `root/rel`, creating folders.
pub fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Deterministic pseudo-random bytes, so large files are not trivially compressible and a
/// byte out of place is noticed.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A site exercising every rule: types, indexes, sidecars, hidden files, symlinks.
pub fn demo_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8]); 22] = [
        ("index.html", b"<!doctype html><title>home</title>"),
        ("style.css", b"body { color: black; } /* identity */"),
        ("style.css.br", b"BROTLI-BYTES"),
        ("style.css.gz", b"GZIP-BYTES!"),
        ("style.css.zst", b"ZSTD-BYTES"),
        ("app.3f9a2c1e.js", b"console.log('fingerprinted')"),
        ("plain.js", b"console.log('plain')"),
        ("mod.mjs", b"export const a = 1;"),
        ("m.wasm", b"\0asm\x01\0\0\0"),
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("site.webmanifest", b"{}"),
        ("font.woff2", b"wOF2"),
        ("data.json", b"{\"a\":1}"),
        ("notes.txt", b"0123456789abcdefghijklmnopqrstuvwxyz"),
        ("docs/index.html", b"<title>docs</title>"),
        ("docs/page.html", b"<title>page</title>"),
        ("empty/.keep", b""),
        ("caf\u{e9}.html", b"<title>cafe</title>"),
        (".env", b"SECRET=1"),
        (".git/config", b"[core]"),
        ("docs/.hidden.html", b"hidden"),
        (
            ".well-known/security.txt",
            b"Contact: mailto:security@example.com",
        ),
    ];
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

/// Reads one response from a keep-alive connection: head, then exactly Content-Length bytes
/// (none for HEAD).
pub fn read_response(conn: &mut BufReader<TcpStream>, head_only: bool) -> Response {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        conn.read_until(b'\n', &mut line).expect("read head");
        assert!(!line.is_empty(), "connection closed inside a response head");
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let mut r = parse_response(&head).expect("a response head");
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    if !head_only {
        r.body = vec![0; len];
        conn.read_exact(&mut r.body).expect("the whole body");
    }
    r
}

/// The value of the first metric line starting with `name_and_labels`.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} not in:\n{text}"))
}

/// Polls `done` every 10 ms until it holds, for at most `limit` (`what` names it if not).
pub fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
