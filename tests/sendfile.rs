//! Files streamed from disk go out with sendfile(2) behind placeholder chunks (src/sendfile.rs).
//! These run the real binary and check every byte: a placeholder sent as itself would be
//! zeros, a segment out of step would shift or swap content.

mod common;

use common::*;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn pipelined_requests_mixing_disk_and_memory_files_get_every_byte() {
    let site = tempfile::tempdir().unwrap();
    let big = pattern((3 << 20) + 4097, 1);
    let other = pattern((1 << 20) + 1, 2);
    let text = pattern(5000, 3);
    let text_gz = pattern(3000, 4);
    write(site.path(), "big.bin", &big);
    write(site.path(), "other.bin", &other);
    write(site.path(), "notes.txt", &text);
    write(site.path(), "notes.txt.gz", &text_gz);
    write(site.path(), "small.css", b"body{}");
    // Everything over 4 KiB streams from disk; small.css stays in memory.
    let s = Server::start(site.path(), &["--cache-file-max", "4KiB"]);

    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let requests: [(&str, &str, &str); 7] = [
        ("GET", "/big.bin", ""),
        ("GET", "/small.css", ""),
        ("GET", "/other.bin", "Range: bytes=1000-1048576\r\n"),
        ("HEAD", "/big.bin", ""),
        ("GET", "/notes.txt", "Accept-Encoding: gzip\r\n"),
        ("GET", "/notes.txt", ""),
        ("GET", "/other.bin", ""),
    ];
    // All at once: responses queue behind each other on the one connection.
    let mut raw = String::new();
    for (method, path, extra) in requests {
        raw.push_str(&format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n"
        ));
    }
    stream.write_all(raw.as_bytes()).unwrap();
    let mut conn = BufReader::new(stream);

    let expected: [(u16, &[u8]); 7] = [
        (200, &big),
        (200, b"body{}"),
        (206, &other[1000..=1_048_576]),
        (200, b""),
        (200, &text_gz),
        (200, &text),
        (200, &other),
    ];
    for ((method, path, _), (status, body)) in requests.iter().zip(expected) {
        let r = read_response(&mut conn, *method == "HEAD");
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(r.body.len(), body.len(), "{method} {path}: length");
        assert!(r.body == body, "{method} {path}: content differs");
        if *method == "HEAD" {
            assert_eq!(r.header("content-length"), Some(&*big.len().to_string()));
        }
    }
}

#[test]
fn a_slow_reader_gets_every_byte_after_the_socket_fills() {
    let site = tempfile::tempdir().unwrap();
    let big = pattern(24 << 20, 11);
    write(site.path(), "big.bin", &big);
    let s = Server::start(site.path(), &[]);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let mut conn = BufReader::new(stream);
    // Reading in small bites with pauses keeps both socket buffers full, so sendfile keeps
    // stopping part-way (EAGAIN) and has to resume at the right offset. (The pauses make
    // back-pressure; they synchronise nothing.)
    for _ in 0..2 {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let r = parse_response(&head).unwrap();
        assert_eq!(r.status, 200);
        let mut body = vec![0u8; big.len()];
        let mut got = 0;
        let mut bites = 0;
        while got < body.len() {
            let end = (got + 256 * 1024).min(body.len());
            conn.read_exact(&mut body[got..end]).unwrap();
            got = end;
            bites += 1;
            if bites % 16 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert!(body == big, "content differs after stalls");
    }
}

#[test]
fn a_client_that_stops_reading_mid_download_is_cut_off_at_the_idle_timeout() {
    let site = tempfile::tempdir().unwrap();
    let big = pattern(64 << 20, 12);
    write(site.path(), "big.bin", &big);
    let s = Server::start(site.path(), &["--idle-timeout", "1s"]);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The stall under test: read nothing while the socket buffers fill and sendfile waits.
    std::thread::sleep(Duration::from_millis(2500));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => {
                panic!("connection still open after the idle timeout ({e}), {got} bytes read")
            }
        }
    }
    assert!(
        got < big.len(),
        "the whole body arrived: nothing was cut off"
    );
    // Only that connection: the server still answers.
    assert_eq!(s.get("/big.bin").status, 200);
}

#[test]
fn serving_files_leaves_their_access_times_as_they_were() {
    use std::fs::{File, FileTimes};
    use std::time::SystemTime;
    let site = tempfile::tempdir().unwrap();
    let big = pattern(100_000, 21);
    write(site.path(), "big.bin", &big);
    write(site.path(), "small.css", b"body{}");
    write(site.path(), "control.txt", b"read by the test itself");
    // An access time older than the file's mtime: under relatime (Linux's default) the
    // next read of it would move the access time, so a read that keeps it is a read with
    // O_NOATIME.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let accessed = |rel: &str| {
        std::fs::metadata(site.path().join(rel))
            .unwrap()
            .accessed()
            .unwrap()
    };
    for rel in ["big.bin", "small.css", "control.txt"] {
        let f = File::options()
            .write(true)
            .open(site.path().join(rel))
            .unwrap();
        f.set_times(FileTimes::new().set_accessed(old)).unwrap();
        assert_eq!(accessed(rel), old);
    }
    std::fs::read(site.path().join("control.txt")).unwrap();
    if accessed("control.txt") == old {
        eprintln!("this filesystem does not record access times on read; nothing to check");
        return;
    }
    let s = Server::start(site.path(), &[]);
    let r = s.get("/big.bin");
    assert_eq!((r.status, r.body == big), (200, true));
    let r = s.get("/small.css");
    assert_eq!((r.status, &r.body[..]), (200, &b"body{}"[..]));
    assert_eq!(accessed("big.bin"), old, "sent by sendfile");
    assert_eq!(accessed("small.css"), old, "read into memory");
}
