//! The arm64 build: cross-compiled here (`aarch64-unknown-linux-musl`, linked by rust-lld)
//! and run under qemu-user, the suite's core cases on both runtimes: health, a file, a
//! 304, a range, a sendfile download, `tinyserve check`, and a SIGTERM drain.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-aarch64-static";

/// Builds the arm64 binary once, as `docker/build-image.sh arm64` does.
fn arm64_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let binary = release_binary(TARGET);
        let bytes = std::fs::read(&binary).unwrap();
        // ELF e_machine 183: AArch64, so qemu, not the host, runs what follows.
        assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 183);
        binary
    })
}

fn start(root: &Path, args: &[&str]) -> Server {
    let mut cmd = Command::new(QEMU);
    cmd.arg(arm64_binary());
    Server::start_program(cmd, root, args, &[])
}

#[test]
#[ignore = "needs qemu-aarch64-static and the aarch64-unknown-linux-musl target"]
fn arm64_serves_health_files_304s_ranges_and_sendfile_on_both_runtimes() {
    let site = demo_site();
    let big = pattern(3 << 20, 7);
    write(site.path(), "big.bin", &big);
    for workers in ["1", "2"] {
        let s = start(site.path(), &["--workers", workers]);
        let health = s.get("/healthz");
        assert_eq!((health.status, health.text().as_str()), (200, "ok"));
        assert_eq!(s.get("/readyz").status, 200);

        let page = s.get("/index.html");
        assert_eq!(page.status, 200, "workers {workers}");
        assert_eq!(
            page.body,
            std::fs::read(site.path().join("index.html")).unwrap()
        );
        assert!(page
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        let etag = page.header("etag").expect("an ETag").to_string();

        let again = request(s.addr, "GET", "/index.html", &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304);

        let part = request(s.addr, "GET", "/big.bin", &[("Range", "bytes=100-199")]);
        assert_eq!(part.status, 206);
        assert_eq!(part.header("content-range"), Some("bytes 100-199/3145728"));
        assert_eq!(part.body, &big[100..200]);

        let whole = s.get("/big.bin");
        assert_eq!(whole.status, 200);
        assert!(whole.body == big, "the sendfile download is not byte-exact");
    }
}

#[test]
#[ignore = "needs qemu-aarch64-static and the aarch64-unknown-linux-musl target"]
fn arm64_check_passes_on_the_demo_site() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let out = Command::new(QEMU)
        .arg(arm64_binary())
        .args(["check", "--root"])
        .arg(demo)
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.ends_with("0 errors, 0 warnings\n"), "{text}");
}

#[test]
#[ignore = "needs qemu-aarch64-static and the aarch64-unknown-linux-musl target"]
fn arm64_sigterm_drains_a_download_then_exits_zero() {
    let site = demo_site();
    let big = pattern(8 << 20, 3);
    write(site.path(), "big.bin", &big);
    let mut s = start(
        site.path(),
        &[
            "--workers",
            "1",
            "--shutdown-delay",
            "500ms",
            "--drain-timeout",
            "30s",
        ],
    );
    let addr = s.addr;
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 64 * 1024];
    let n = c.read(&mut got).unwrap();
    got.truncate(n);
    // qemu-user passes the signal on to the server it runs.
    s.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while request(addr, "GET", "/readyz", &[]).status != 503 {
        assert!(Instant::now() < deadline, "readiness never failed");
    }
    c.read_to_end(&mut got).unwrap();
    let status = s.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    let r = parse_response(&got).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the download is not byte-exact");
    s.wait_for_line("shutdown complete");
}

#[test]
#[ignore = "needs qemu-aarch64-static and the aarch64-unknown-linux-musl target"]
fn arm64_on_16_and_64_kib_pages_keeps_the_cache_within_its_budget() {
    // qemu-user reports its -p page size to the program as the kernel would (AT_PAGESZ, so
    // sysconf): the 16 KiB (Asahi, Raspberry Pi 5) and 64 KiB (RHEL-family arm64) paths run.
    let site = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            let len = if i % 10 == 0 { 70 << 10 } else { 5 << 10 };
            (format!("/f{i}.html"), pattern(len, i))
        })
        .collect();
    for (path, bytes) in &files {
        write(site.path(), &path[1..], bytes);
    }
    for page in ["16384", "65536"] {
        let mut cmd = Command::new(QEMU);
        cmd.args(["-p", page]).arg(arm64_binary());
        let args = [
            "--cache-max",
            "1MiB",
            "--cache-file-max",
            "128KiB",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        let s = Server::start_program(cmd, site.path(), &args, &[]);
        let first = s.lines.lock().unwrap()[0].clone();
        assert!(first.contains(&format!("page_size={page}")), "{first}");
        for (path, bytes) in files.iter().chain(&files) {
            let r = s.get(path);
            assert!(
                r.status == 200 && r.body == *bytes,
                "{path} on {page} B pages"
            );
        }
        let m = s.metrics();
        let memory = metric(&m, "tinyserve_cache_memory_bytes ");
        assert!(
            memory > 512.0 * 1024.0 && memory <= 1048576.0,
            "{memory} bytes charged on {page} B pages for a 1 MiB budget"
        );
    }
}
