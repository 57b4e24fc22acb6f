use super::*;
use crate::http::body::Body;
use hyper_util::rt::TokioIo;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

/// A layer that forwards everything but vectored writes, as a careless TLS or
/// buffering wrapper might.
struct NotVectored<T>(T);

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for NotVectored<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for NotVectored<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A file of known bytes, as the cache hands it to a body.
fn file(bytes: &[u8]) -> (Arc<File>, FileId) {
    let f = tempfile::tempfile().unwrap();
    f.write_all_at(bytes, 0).unwrap();
    let id = FileId::of(&f.metadata().unwrap());
    (Arc::new(f), id)
}

/// Serves one GET on a real socket, with `wrap` around the connection's I/O, the file
/// body sent by sendfile; returns what the client received.
async fn serve_once<W, I>(content: &'static [u8], wrap: W) -> Vec<u8>
where
    W: FnOnce(TokioIo<SendfileIo>) -> I,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got
    });
    let (stream, _) = listener.accept().await.unwrap();
    let segments = Arc::new(Segments::default());
    let io = wrap(TokioIo::new(SendfileIo::new(stream, segments.clone())));
    let service = hyper::service::service_fn(move |_req| {
        let (f, id) = file(content);
        let mut body = Body::file(f, id, 0, content.len() as u64);
        body.deliver_through(&segments);
        async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
    tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap()
}

const CONTENT: &[u8] = b"file bytes that must arrive as they are, never as zeros";

#[tokio::test]
async fn the_file_goes_out_by_sendfile_over_the_production_stack() {
    let got = serve_once(CONTENT, |io| {
        require_vectored(&io).unwrap();
        io
    })
    .await;
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.ends_with(CONTENT), "{}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn a_layer_that_is_not_vectored_fails_loudly_and_sends_no_zeros() {
    // The check where connections are built refuses it...
    let io_check = serve_once(CONTENT, |io| {
        let wrapped = NotVectored(io);
        assert!(require_vectored(&wrapped).is_err());
        wrapped
    });
    // ...and were it skipped, the socket layer refuses the copied placeholder.
    let got = io_check.await;
    assert!(
        !got.windows(8).any(|w| w == [0u8; 8]),
        "zeros reached the client: {got:?}"
    );
    assert!(
        !got.ends_with(CONTENT),
        "a non-vectored path cannot use sendfile"
    );
    assert!(got.is_empty(), "nothing of the response leaves: {got:?}");
}

#[tokio::test]
async fn bytes_put_back_are_read_before_the_socket() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let mut io = SendfileIo::new(stream, Arc::new(Segments::default()));
    client.write_all(b" HTTP/1.1\r\n").unwrap();
    // The rest of a parked connection's read buffer: a view of the whole allocation.
    let buffer = Bytes::from(b"GET /".to_vec());
    io.unread(buffer.clone());
    let mut got = vec![0u8; 16];
    let mut n = 0;
    while n < 16 {
        n += io.read(&mut got[n..]).await.unwrap();
    }
    assert_eq!(&got, b"GET / HTTP/1.1\r\n");
    assert!(
        buffer.is_unique(),
        "once read, the buffer is let go, not kept by an empty view"
    );
}

#[test]
fn a_placeholder_out_of_step_or_without_a_segment_is_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let segments = Arc::new(Segments::default());
        let mut io = SendfileIo::new(stream, segments.clone());
        let write = |io: &mut SendfileIo, buf: &[u8]| {
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            match Pin::new(io).poll_write_vectored(&mut cx, &[IoSlice::new(buf)]) {
                Poll::Ready(r) => r,
                Poll::Pending => panic!("pending"),
            }
        };
        // No segment at all.
        let e = write(&mut io, &placeholder()[..10]).unwrap_err();
        assert!(e.to_string().contains("without a file segment"), "{e}");
        // A segment of 100 bytes: a placeholder 10 bytes in, or too short, is refused.
        let (f, id) = file(&[7u8; 100]);
        let chunk = segments.push(
            Segment {
                file: f,
                id,
                offset: 0,
                len: 100,
            },
            None,
        );
        for wrong in [&chunk[10..], &chunk[..50]] {
            let e = write(&mut io, wrong).unwrap_err();
            assert!(e.to_string().contains("out of step"), "{e}");
        }
        // The real chunk goes (some of it, or all).
        let n = write(&mut io, &chunk).unwrap();
        assert!(n > 0 && n <= 100);
    });
}
