//! The cache follows the site as it changes, stays within its budgets, and never sends a
//! body that disagrees with its headers. Every test runs the real binary in both change
//! detection modes (inotify, poll) and on both runtimes (`--workers 1`, as a 1-CPU pod runs
//! it, and two workers).

mod common;

use common::*;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Change detection mode and runtime: every combination a deployment can run.
const SETUPS: [&[&str]; 3] = [
    &["--watch", "inotify", "--workers", "1"],
    &["--watch", "poll", "--workers", "1"],
    &["--watch", "inotify", "--workers", "2"],
];

/// The contract: a change is served within this time.
const WITHIN: Duration = Duration::from_secs(1);

/// Asks `path` until `check` holds, at most [`WITHIN`] after `since`; returns how long it
/// took. Panics with the last response otherwise.
fn served_within(s: &Server, path: &str, since: Instant, check: impl Fn(&Response) -> bool) {
    loop {
        let r = s.get(path);
        if check(&r) {
            return;
        }
        assert!(
            since.elapsed() < WITHIN,
            "{path}: change not served within {WITHIN:?}; last answer {} {:?}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(bytes))
}

fn start(site: &Path, setup: &[&str], more: &[&str]) -> Server {
    let mut args = setup.to_vec();
    args.extend_from_slice(more);
    Server::start(site, &args)
}

#[test]
fn edits_additions_deletions_and_renames_are_served_within_a_second() {
    for setup in SETUPS {
        let site = tempfile::tempdir().unwrap();
        let root = site.path();
        write(root, "index.html", b"<title>home</title>");
        write(root, "notes.txt", b"first version");
        write(root, "docs/page.html", b"<title>page</title>");
        let s = start(root, setup, &[]);
        let before = s.get("/notes.txt");
        assert_eq!(before.text(), "first version");
        assert_eq!(s.get("/new.txt").status, 404, "{setup:?}");
        assert_eq!(s.get("/docs/page.html").status, 200);

        // Edited in place, with a later modification time.
        let t = Instant::now();
        write(root, "notes.txt", b"second version, longer");
        let later = SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(root.join("notes.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        served_within(&s, "/notes.txt", t, |r| {
            r.text() == "second version, longer"
                && r.header("etag") == Some(etag_of(b"second version, longer").as_str())
                && r.header("last-modified") != before.header("last-modified")
        });

        // A new file where a 404 was cached.
        let t = Instant::now();
        write(root, "new.txt", b"new");
        served_within(&s, "/new.txt", t, |r| r.status == 200 && r.text() == "new");

        // Deleted.
        let t = Instant::now();
        std::fs::remove_file(root.join("notes.txt")).unwrap();
        served_within(&s, "/notes.txt", t, |r| r.status == 404);

        // A folder renamed: old paths go, new ones come.
        let t = Instant::now();
        std::fs::rename(root.join("docs"), root.join("guide")).unwrap();
        served_within(&s, "/docs/page.html", t, |r| r.status == 404);
        served_within(&s, "/guide/page.html", t, |r| {
            r.status == 200 && r.text() == "<title>page</title>"
        });
    }
}

#[test]
fn a_kubernetes_configmap_update_is_served_within_a_second() {
    for setup in SETUPS {
        // The layout the kubelet writes for a ConfigMap volume: the files are symlinks
        // through `..data`, itself a symlink to a timestamped folder, swapped atomically.
        let site = tempfile::tempdir().unwrap();
        let root = site.path();
        write(root, "..2026_11_26_01/index.html", b"<title>v1</title>");
        symlink("..2026_11_26_01", root.join("..data")).unwrap();
        symlink("..data/index.html", root.join("index.html")).unwrap();
        let s = start(root, setup, &[]);
        assert_eq!(s.get("/").text(), "<title>v1</title>");

        let t = Instant::now();
        write(root, "..2026_11_26_02/index.html", b"<title>v2</title>");
        symlink("..2026_11_26_02", root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join("..2026_11_26_01")).unwrap();
        served_within(&s, "/", t, |r| {
            r.text() == "<title>v2</title>"
                && r.header("etag") == Some(etag_of(b"<title>v2</title>").as_str())
        });
        // The kubelet's own folders stay hidden.
        assert_eq!(s.get("/..data/index.html").status, 404);
    }
}

/// Sends a GET for `path` on a fresh connection and reads only its head.
fn start_download(s: &Server, path: &str) -> (BufReader<TcpStream>, usize) {
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut conn = BufReader::new(stream);
    let r = read_response(&mut conn, true);
    assert_eq!(r.status, 200);
    (conn, r.header("content-length").unwrap().parse().unwrap())
}

fn read_rest(conn: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = conn.read_to_end(&mut body);
    body
}

#[test]
fn a_download_in_flight_keeps_its_bytes_when_the_file_is_replaced() {
    for setup in SETUPS {
        let site = tempfile::tempdir().unwrap();
        let old = pattern(16 << 20, 5);
        let new = pattern(16 << 20, 6);
        write(site.path(), "video.bin", &old);
        let s = start(site.path(), setup, &[]);
        let (mut conn, len) = start_download(&s, "/video.bin");
        // Replaced the way deploy tools do it: a new file renamed over the old path.
        let t = Instant::now();
        write(site.path(), "video.bin.new", &new);
        std::fs::rename(
            site.path().join("video.bin.new"),
            site.path().join("video.bin"),
        )
        .unwrap();
        let body = read_rest(&mut conn);
        assert_eq!(body.len(), len);
        assert!(body == old, "{setup:?}: the download mixed two versions");
        // New requests get the new file, once its ETag is known with the new one.
        served_within(&s, "/video.bin", t, |r| r.body == new);
    }
}

#[test]
fn a_file_changed_in_place_mid_download_cuts_the_response_short() {
    for setup in SETUPS {
        for change in ["truncate", "rewrite"] {
            let site = tempfile::tempdir().unwrap();
            let old = pattern(32 << 20, 9);
            write(site.path(), "big.bin", &old);
            let s = start(site.path(), setup, &[]);
            let (mut conn, len) = start_download(&s, "/big.bin");
            let mut first = vec![0u8; 1 << 20];
            conn.read_exact(&mut first).unwrap();
            assert!(first == old[..1 << 20]);
            let mut f = std::fs::File::options()
                .write(true)
                .open(site.path().join("big.bin"))
                .unwrap();
            match change {
                "truncate" => f.set_len(8 << 20).unwrap(),
                _ => f.write_all(&pattern(32 << 20, 10)).unwrap(),
            }
            drop(f);
            let rest = read_rest(&mut conn);
            assert!(
                first.len() + rest.len() < len,
                "{setup:?} {change}: a complete {len}-byte body after the file changed"
            );
            // The server carries on, with the file as it is now.
            let now = std::fs::read(site.path().join("big.bin")).unwrap();
            served_within(&s, "/big.bin", Instant::now(), |r| r.body == now);
        }
    }
}

#[test]
fn large_files_get_their_content_etag_once_hashed() {
    for setup in SETUPS {
        let site = tempfile::tempdir().unwrap();
        let big = pattern(8 << 20, 21);
        write(site.path(), "big.bin", &big);
        let s = start(site.path(), setup, &[]);
        let first = s.get("/big.bin");
        assert!(first.body == big);
        // Without its ETag yet, or with the right one: never another.
        let want = etag_of(&big);
        if let Some(e) = first.header("etag") {
            assert_eq!(e, want);
        }
        served_within(&s, "/big.bin", Instant::now(), |r| {
            r.header("etag") == Some(want.as_str()) && r.body == big
        });
        let r = request(s.addr, "GET", "/big.bin", &[("If-None-Match", &want)]);
        assert_eq!(r.status, 304);
    }
}

#[test]
fn two_instances_on_copies_of_a_site_give_equal_etags() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let files = [
        ("index.html", pattern(300, 1)),
        ("small.css", pattern(20 << 10, 2)),
        ("large.bin", pattern(3 << 20, 3)),
    ];
    for (name, bytes) in &files {
        write(a.path(), name, bytes);
    }
    // Copied a minute later: other inodes, other modification times.
    for (name, bytes) in &files {
        write(b.path(), name, bytes);
        std::fs::File::options()
            .write(true)
            .open(b.path().join(name))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }
    let sa = Server::start(a.path(), &[]);
    let sb = Server::start(b.path(), &["--workers", "1", "--watch", "poll"]);
    for (name, bytes) in &files {
        let path = format!("/{name}");
        let want = etag_of(bytes);
        for s in [&sa, &sb] {
            served_within(s, &path, Instant::now(), |r| {
                r.header("etag") == Some(want.as_str())
            });
        }
    }
}

#[test]
fn nothing_is_read_before_the_first_request() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let m = s.metrics();
    assert_eq!(metric(&m, "tinyserve_cache_entries "), 0.0);
    assert_eq!(metric(&m, "tinyserve_cache_memory_bytes "), 0.0);
    assert_eq!(s.get("/readyz").status, 200);
    assert_eq!(s.get("/style.css").status, 200);
    let m = s.metrics();
    assert_eq!(metric(&m, "tinyserve_cache_entries "), 1.0);
    assert!(metric(&m, "tinyserve_cache_misses_total ") >= 1.0);
    assert_eq!(s.get("/style.css").status, 200);
    assert!(metric(&s.metrics(), "tinyserve_cache_hits_total ") >= 1.0);
}

#[test]
fn the_cache_stays_within_its_budgets_on_a_site_larger_than_them() {
    for setup in SETUPS {
        let site = tempfile::tempdir().unwrap();
        // 3 MiB of small files for a 256 KiB content budget and 40 entries; 30 large files
        // for 6 open descriptors.
        let small: Vec<Vec<u8>> = (0..200).map(|i| pattern(16 << 10, i)).collect();
        let large: Vec<Vec<u8>> = (0..30).map(|i| pattern(100 << 10, 1000 + i)).collect();
        for (i, bytes) in small.iter().enumerate() {
            write(site.path(), &format!("pages/{i}.html"), bytes);
        }
        for (i, bytes) in large.iter().enumerate() {
            write(site.path(), &format!("media/{i}.bin"), bytes);
        }
        let s = start(
            site.path(),
            setup,
            &[
                "--metrics-listen",
                "127.0.0.1:0",
                "--cache-max",
                "256KiB",
                "--cache-entries",
                "40",
                "--cache-open-files",
                "6",
            ],
        );
        let fds = |pid: u32| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count()
        };
        let baseline = fds(s.child.id());
        for round in 0..2 {
            for (i, bytes) in small.iter().enumerate() {
                let r = s.get(&format!("/pages/{i}.html"));
                assert!(r.body == *bytes, "{setup:?} round {round}: page {i}");
            }
            for (i, bytes) in large.iter().enumerate() {
                let r = s.get(&format!("/media/{i}.bin"));
                assert!(r.body == *bytes, "{setup:?} round {round}: media {i}");
            }
        }
        let m = s.metrics();
        let memory = metric(&m, "tinyserve_cache_memory_bytes ");
        assert!(
            memory > 0.0 && memory <= 262_144.0,
            "{setup:?}: {memory} bytes kept"
        );
        assert!(metric(&m, "tinyserve_cache_entries ") <= 40.0);
        assert!(metric(&m, "tinyserve_cache_open_files ") <= 6.0);
        assert!(metric(&m, "tinyserve_cache_evictions_total ") > 0.0);
        // Descriptors: the budget, one file being hashed and the connection just closed.
        let now = fds(s.child.id());
        assert!(
            now <= baseline + 6 + 2,
            "{setup:?}: {now} descriptors open, {baseline} at the start, budget 6"
        );
    }
}

#[test]
fn a_flood_of_long_missing_paths_stays_within_the_memory_budget() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--metrics-listen", "127.0.0.1:0", "--cache-max", "64KiB"],
    );
    // Each kept path is charged its key's length beside the entry itself, so 2 KB paths
    // cannot hold more memory than the budget says.
    for i in 0..300 {
        let path = format!("/{i}-{}.html", "x".repeat(2000));
        assert_eq!(s.get(&path).status, 404);
    }
    let m = s.metrics();
    let entries = metric(&m, "tinyserve_cache_entries ");
    assert!(metric(&m, "tinyserve_cache_memory_bytes ") <= 65_536.0);
    assert!(
        entries * 2000.0 <= 65_536.0,
        "{entries} entries of 2 KB keys kept"
    );
    assert_eq!(s.get("/style.css").status, 200);
}
