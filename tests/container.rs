//! The image against the real Docker Engine: built offline with `docker/build-image.sh`,
//! run hardened, healthy through its own HEALTHCHECK, stopping cleanly as PID 1, within
//! budget; the arm64 image (inspected, not started: no emulation here) holds the arm64
//! binary with the same settings; a broken site fails the image build.

mod common;

use common::docker::{container_ip, image, image_arm64, make_world_readable, ok, run_hardened, sh};
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// The budgets of issue #25: a binary of at most 2 MiB with the demo site beside it, and
// 1 MiB as the registry stores it (gzip).
const MAX_IMAGE_BYTES: u64 = 2_621_440; // 2.5 MiB
const MAX_GZIP_BYTES: u64 = 1_048_576; // 1 MiB

/// A container removed when dropped.
struct Container {
    name: String,
}

impl Container {
    /// `docker run -d` with the hardening flags and the port published on loopback only.
    fn run(extra: &[&str], args: &[&str]) -> Container {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "tinyserve-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut all = vec!["-p", "127.0.0.1::8080"];
        all.extend_from_slice(extra);
        run_hardened(&name, &all, args);
        Container { name }
    }

    fn addr(&self) -> SocketAddr {
        let port = ok("docker", &["port", &self.name, "8080/tcp"]);
        let first = port
            .lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .expect("published on 127.0.0.1");
        first.parse().unwrap()
    }

    /// Waits until `/healthz` answers 200.
    fn wait_serving(&self) -> SocketAddr {
        let addr = self.addr();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(addr).is_ok() {
                let out = send_raw(
                    addr,
                    b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                if parse_response(&out).is_some_and(|r| r.status == 200) {
                    return addr;
                }
            }
            assert!(
                Instant::now() < deadline,
                "container never served: {}",
                ok("docker", &["logs", &self.name])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn inspect(&self, format: &str) -> String {
        ok("docker", &["inspect", "-f", format, &self.name])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = sh("docker", &["rm", "-f", &self.name]);
    }
}

#[test]
#[ignore = "needs a Docker engine"]
fn hardened_container_serves_site_health_and_brotli() {
    let c = Container::run(&[], &[]);
    let addr = c.wait_serving();
    let home = request(addr, "GET", "/", &[]);
    assert_eq!(home.status, 200);
    assert!(home.text().contains("tinyserve"));
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(request(addr, "GET", "/healthz", &[]).text(), "ok");
    assert_eq!(request(addr, "GET", "/readyz", &[]).text(), "ready");
    let css = request(
        addr,
        "GET",
        "/style.css",
        &[("Accept-Encoding", "gzip, br")],
    );
    assert_eq!(css.header("content-encoding"), Some("br"));
    // zstd sidecars too (.ci/run installs zstd, so the image build makes them).
    let zst = request(
        addr,
        "GET",
        "/style.css",
        &[("Accept-Encoding", "gzip, zstd")],
    );
    assert_eq!(zst.header("content-encoding"), Some("zstd"));
    assert_eq!(css.header("vary"), Some("accept-encoding"));
    let plain = request(addr, "GET", "/style.css", &[]);
    assert!(css.body.len() < plain.body.len());
    assert_eq!(request(addr, "GET", "/nope", &[]).status, 404);
    // JSON logs by default.
    let logs = ok("docker", &["logs", &c.name]);
    assert!(logs.lines().all(|l| l.starts_with('{')), "{logs}");
    // Dual-stack where the container has IPv6, IPv4 alone (with a warning) where not.
    assert!(
        logs.contains("listening on [::]:8080") || logs.contains("listening on 0.0.0.0:8080"),
        "{logs}"
    );
}

#[test]
#[ignore = "needs a Docker engine"]
fn healthcheck_makes_the_container_healthy() {
    let c = Container::run(
        &["--health-interval", "1s", "--health-start-period", "1s"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = c.inspect("{{.State.Health.Status}}");
        if status == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health status still {status:?}: {}",
            c.inspect("{{json .State.Health}}")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs a Docker engine"]
fn docker_stop_of_an_idle_container_is_fast_and_clean() {
    let c = Container::run(&[], &[]);
    c.wait_serving();
    let t = Instant::now();
    ok("docker", &["stop", &c.name]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "docker stop took {took:?} (SIGTERM ignored as PID 1?)"
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0");
    println!("docker stop took {took:?}");
}

#[test]
#[ignore = "needs a Docker engine"]
fn docker_stop_during_a_download_lets_it_finish() {
    let site = tempfile::tempdir().unwrap();
    let big = pattern(48 << 20, 5);
    write(site.path(), "big.bin", &big);
    write(site.path(), "index.html", b"<p>mounted</p>");
    // The container's user must be able to read the mounted folder.
    make_world_readable(site.path());
    let mount = format!("{}:/static:ro", site.path().display());
    let c = Container::run(&["-v", &mount], &[]);
    let addr = c.wait_serving();
    assert_eq!(request(addr, "GET", "/", &[]).text(), "<p>mounted</p>");

    // Download from the container's own address on the bridge network: Docker's userland
    // proxy behind 127.0.0.1 is killed with the container and drops what it still buffers
    // (measured: ~12 MB of 48 MB), which would hide what the server itself does.
    let ip = container_ip(&c.name);
    let direct: SocketAddr = format!("{ip}:8080").parse().unwrap();
    let mut conn = TcpStream::connect(direct).unwrap();
    conn.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 1 << 20];
    conn.read_exact(&mut got).unwrap();
    let name = c.name.clone();
    let stopper = std::thread::spawn(move || sh("docker", &["stop", "-t", "30", &name]));
    // Read the rest slowly enough that the stop happens mid-download.
    let mut buf = vec![0u8; 256 * 1024];
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(stopper.join().unwrap().status.success());
    let r = parse_response(&got).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "download not byte-exact");
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0");
}

#[test]
#[ignore = "needs a Docker engine"]
fn image_metadata_and_contents() {
    let image = image();
    let get = |f: &str| ok("docker", &["image", "inspect", "-f", f, image]);
    assert_eq!(get("{{.Config.User}}"), "65532:65532");
    assert_eq!(get("{{json .Config.Entrypoint}}"), "[\"/tinyserve\"]");
    assert_eq!(get("{{json .Config.ExposedPorts}}"), "{\"8080/tcp\":{}}");
    assert_eq!(
        get("{{json .Config.Healthcheck.Test}}"),
        "[\"CMD\",\"/tinyserve\",\"healthcheck\"]"
    );
    assert_eq!(get("{{.Config.StopSignal}}"), "SIGTERM");
    let env = get("{{json .Config.Env}}");
    assert!(
        env.contains("TINYSERVE_LOG_FORMAT=json") && env.contains("TINYSERVE_ROOT=/static"),
        "{env}"
    );
    let revision = ok("git", &["rev-parse", "HEAD"]);
    for (label, want) in [
        ("org.opencontainers.image.source", None),
        ("org.opencontainers.image.revision", Some(revision.as_str())),
        (
            "org.opencontainers.image.version",
            Some(env!("CARGO_PKG_VERSION")),
        ),
        ("org.opencontainers.image.licenses", None),
        ("org.opencontainers.image.description", None),
    ] {
        let v = get(&format!("{{{{index .Config.Labels \"{label}\"}}}}"));
        assert!(!v.is_empty() && v != "<no value>", "{label} missing");
        if let Some(w) = want {
            assert_eq!(v, w, "{label}");
        }
    }
    // No shell: the entrypoint cannot be swapped for /bin/sh.
    let out = sh(
        "docker",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            "true",
        ],
    );
    assert!(!out.status.success(), "/bin/sh exists in the image");
    // The filesystem holds the binary and the site, nothing else of substance.
    let id = ok("docker", &["create", image]);
    let export = Command::new("sh")
        .args(["-c", &format!("docker export {id} | tar -t")])
        .output()
        .unwrap();
    let _ = sh("docker", &["rm", &id]);
    let files: Vec<String> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let unexpected: Vec<&String> = files
        .iter()
        .filter(|f| {
            !(f.as_str() == "tinyserve" || f.starts_with("static/") || is_docker_runtime_entry(f))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected files in the image: {unexpected:?}"
    );
    assert!(files.iter().any(|f| f == "static/index.html.br"));
}

/// Entries the engine itself adds to every container filesystem.
fn is_docker_runtime_entry(f: &str) -> bool {
    matches!(
        f,
        ".dockerenv" | "dev/" | "etc/" | "proc/" | "sys/" | "static/"
    ) || f.starts_with("dev/")
        || f.starts_with("etc/")
}

#[test]
#[ignore = "needs a Docker engine"]
fn a_memory_limit_sets_the_default_connection_cap() {
    image();
    let listening = |c: &Container| {
        c.wait_serving();
        let logs = ok("docker", &["logs", &c.name]);
        logs.lines()
            .find(|l| l.contains("listening on"))
            .unwrap_or_else(|| panic!("no startup line: {logs}"))
            .to_string()
    };
    // 96 MiB, less the default 64 MiB cache and 8 MiB: 24 MiB, at 20 KiB per connection.
    let limited = Container::run(&["--memory", "96m"], &[]);
    let line = listening(&limited);
    assert!(line.contains("\"max_connections\":1228"), "{line}");
    assert!(line.contains("cgroup memory limit 96 MiB"), "{line}");
    // Set explicitly, it is what it says; without a limit, the usual default.
    let set = Container::run(
        &["--memory", "96m", "-e", "TINYSERVE_MAX_CONNECTIONS=500"],
        &[],
    );
    let line = listening(&set);
    assert!(
        line.contains("\"max_connections\":500,\"max_connections_reason\":\"set\""),
        "{line}"
    );
    let free = Container::run(&[], &[]);
    let line = listening(&free);
    assert!(
        line.contains("\"max_connections\":10000,\"max_connections_reason\":\"default\""),
        "{line}"
    );
}

/// The settings an image runs with, as JSON: everything but the files and the platform.
fn runtime_settings(image: &str) -> String {
    ok(
        "docker",
        &[
            "image",
            "inspect",
            "-f",
            "{{json .Config.User}} {{json .Config.Env}} {{json .Config.ExposedPorts}} \
             {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Healthcheck}} \
             {{json .Config.StopSignal}} {{json .Config.Labels}} {{json .Config.WorkingDir}}",
            image,
        ],
    )
}

/// The bytes of `path` in `image`, read through `docker create` and `docker cp` (which work
/// for an image this engine cannot run).
fn file_in_image(image: &str, path: &str) -> Vec<u8> {
    let id = ok("docker", &["create", image]);
    let out = Command::new("sh")
        .args(["-c", &format!("docker cp {id}:{path} - | tar -xO")])
        .output()
        .unwrap();
    let _ = sh("docker", &["rm", &id]);
    assert!(out.status.success(), "docker cp {path} failed");
    out.stdout
}

#[test]
#[ignore = "needs a Docker engine and the aarch64-unknown-linux-musl target"]
fn arm64_image_holds_the_arm64_binary_with_the_same_settings() {
    let (amd64, arm64) = (image(), image_arm64());
    let platform = |i: &str| {
        ok(
            "docker",
            &["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", i],
        )
    };
    assert_eq!(platform(amd64), "linux/amd64");
    assert_eq!(platform(arm64), "linux/arm64");
    assert_eq!(runtime_settings(arm64), runtime_settings(amd64));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (image, triple, machine) in [
        (amd64, "x86_64-unknown-linux-musl", 62u16),
        (arm64, "aarch64-unknown-linux-musl", 183u16),
    ] {
        let binary = file_in_image(image, "/tinyserve");
        let built = std::fs::read(root.join(format!("target/{triple}/release/tinyserve"))).unwrap();
        assert!(
            binary == built,
            "{image}'s /tinyserve is not the {triple} build"
        );
        // ELF e_machine: 62 is x86-64, 183 is AArch64.
        assert_eq!(
            u16::from_le_bytes([binary[18], binary[19]]),
            machine,
            "{image}"
        );
        let page = file_in_image(image, "/static/index.html");
        assert_eq!(
            page,
            std::fs::read(root.join("target/site/index.html")).unwrap()
        );
    }
}

#[test]
#[ignore = "needs a Docker engine"]
fn a_broken_site_fails_the_image_build() {
    image();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let context = tempfile::tempdir().unwrap();
    let bin = "target/x86_64-unknown-linux-musl/release/tinyserve";
    std::fs::create_dir_all(context.path().join(bin).parent().unwrap()).unwrap();
    std::fs::copy(root.join(bin), context.path().join(bin)).unwrap();
    std::fs::copy(root.join("Dockerfile"), context.path().join("Dockerfile")).unwrap();
    write(
        &context.path().join("target/site"),
        "index.html",
        b"<!doctype html>\n<script src=\"/assets/app.3f9a2c1e.js\"></script>\n",
    );
    make_world_readable(&context.path().join("target/site"));
    let out = sh(
        "docker",
        &[
            "build",
            "--target",
            "prebuilt",
            "-t",
            "tinyserve:test-broken",
            context.path().to_str().unwrap(),
        ],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the build passed:\n{log}");
    assert!(
        log.contains("error: index.html:2: /assets/app.3f9a2c1e.js is not in the site"),
        "{log}"
    );
    assert!(log.contains("returned a non-zero code: 1"), "{log}");
}

#[test]
#[ignore = "needs a Docker engine and the aarch64-unknown-linux-musl target"]
fn images_stay_within_the_size_budget() {
    let image = image();
    let size: u64 = ok("docker", &["image", "inspect", "-f", "{{.Size}}", image])
        .parse()
        .unwrap();
    let gz: u64 = ok(
        "sh",
        &["-c", &format!("docker save {image} | gzip -9 | wc -c")],
    )
    .parse()
    .unwrap();
    let binary = std::fs::metadata(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/x86_64-unknown-linux-musl/release/tinyserve"),
    )
    .unwrap()
    .len();
    println!("image {size} bytes, gzip -9 {gz} bytes, binary {binary} bytes");
    let arm64 = image_arm64();
    let arm64_size: u64 = ok("docker", &["image", "inspect", "-f", "{{.Size}}", arm64])
        .parse()
        .unwrap();
    let arm64_gz: u64 = ok(
        "sh",
        &["-c", &format!("docker save {arm64} | gzip -9 | wc -c")],
    )
    .parse()
    .unwrap();
    println!("arm64 image {arm64_size} bytes, gzip -9 {arm64_gz} bytes");
    assert!(
        arm64_size <= MAX_IMAGE_BYTES && arm64_gz <= MAX_GZIP_BYTES,
        "arm64 image is {arm64_size} bytes ({arm64_gz} compressed), budgets {MAX_IMAGE_BYTES} and {MAX_GZIP_BYTES}"
    );
    assert!(
        size <= MAX_IMAGE_BYTES,
        "image is {size} bytes, budget {MAX_IMAGE_BYTES}"
    );
    assert!(
        gz <= MAX_GZIP_BYTES,
        "compressed image is {gz} bytes, budget {MAX_GZIP_BYTES}"
    );
    // 2 MiB since the design card's crates came back (issue #25): mime_guess's table,
    // tower and tower-http's CORS and header layers, tracing-subscriber's JSON format
    // (docs/design.md, Size).
    assert!(
        binary <= 2 * 1024 * 1024,
        "binary is {binary} bytes, budget 2 MiB"
    );
}
