//! The file server: HEAD, ranges and validators; the paths it refuses (dot segments, escapes,
//! dotfiles, temporary files, links out of the folder); and connections that stall.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http_body_util::BodyExt as _;
use igdisplay_http::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use igdisplay_mirror::{FileServer, ServeLimits};
use std::io::{Read as _, Write as _};
use std::time::Duration;

/// A folder with `media/1/original`: 1000 bytes starting as a JPEG.
fn folder() -> (tempfile::TempDir, FileServer, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("media/1")).unwrap();
    let mut bytes = vec![0xFF, 0xD8];
    bytes.extend((0..998u32).map(|n| (n % 251) as u8));
    std::fs::write(dir.path().join("media/1/original"), &bytes).unwrap();
    let files = FileServer::new(dir.path()).unwrap();
    (dir, files, bytes)
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

async fn body(response: igdisplay_http::http::Response<igdisplay_mirror::FileBody>) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn head_answers_the_headers_without_the_body() {
    let (_dir, files, bytes) = folder();
    let answer = files
        .respond(&Method::HEAD, "/media/1/original", &HeaderMap::new())
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()[header::CONTENT_LENGTH], bytes.len().to_string());
    assert_eq!(answer.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert!(answer.headers().contains_key(header::ETAG));
    assert!(answer.headers().contains_key(header::LAST_MODIFIED));
    assert!(body(answer).await.is_empty());
}

#[tokio::test]
async fn a_range_is_answered_with_its_part_and_one_past_the_end_with_416() {
    let (_dir, files, bytes) = folder();
    let part = files
        .respond(
            &Method::GET,
            "media/1/original",
            &headers(&[(header::RANGE, "bytes=10-19")]),
        )
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[header::CONTENT_RANGE], "bytes 10-19/1000");
    assert_eq!(body(part).await, bytes[10..20]);

    let tail = files
        .respond(
            &Method::GET,
            "media/1/original",
            &headers(&[(header::RANGE, "bytes=-5")]),
        )
        .await;
    assert_eq!(body(tail).await, bytes[995..]);

    let past = files
        .respond(
            &Method::GET,
            "media/1/original",
            &headers(&[(header::RANGE, "bytes=1000-")]),
        )
        .await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()[header::CONTENT_RANGE], "bytes */1000");
}

#[tokio::test]
async fn a_current_copy_is_answered_304_and_a_stale_if_range_gets_the_whole() {
    let (_dir, files, bytes) = folder();
    let first = files
        .respond(&Method::GET, "media/1/original", &HeaderMap::new())
        .await;
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(body(first).await, bytes);

    let current = files
        .respond(
            &Method::GET,
            "media/1/original",
            &headers(&[(header::IF_NONE_MATCH, &etag)]),
        )
        .await;
    assert_eq!(current.status(), StatusCode::NOT_MODIFIED);
    assert!(body(current).await.is_empty());

    let stale = files
        .respond(
            &Method::GET,
            "media/1/original",
            &headers(&[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, "\"old\"")]),
        )
        .await;
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(body(stale).await.len(), bytes.len());
}

#[tokio::test]
async fn other_methods_are_refused_with_405() {
    let (_dir, files, _) = folder();
    let answer = files
        .respond(&Method::DELETE, "media/1/original", &HeaderMap::new())
        .await;
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers()[header::ALLOW], "GET, HEAD");
}

#[cfg(unix)]
#[tokio::test]
async fn dot_segments_escapes_dotfiles_temporary_files_and_links_out_are_not_found() {
    let (dir, files, _) = folder();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), b"root:x:0:0").unwrap();
    let media = dir.path().join("media/1");
    std::fs::write(media.join(".hidden"), b"secret").unwrap();
    std::fs::write(media.join(".640.jpg.0123456789abcdef.tmp"), b"half").unwrap();
    std::os::unix::fs::symlink(outside.path().join("passwd"), media.join("passwd")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("media/etc")).unwrap();
    // A link that stays inside the folder is followed.
    std::os::unix::fs::symlink(media.join("original"), media.join("alias")).unwrap();
    for refused in [
        "media/1/../1/original",
        "media/1/%2e%2e/1/original",
        "media/1/%2E%2E/%2E%2E/etc/passwd",
        "media/1/.hidden",
        "media/1/%2ehidden",
        "media/1/.640.jpg.0123456789abcdef.tmp",
        "media/1/passwd",
        "media/etc/passwd",
        "media/1",
        "media/1/original/",
        "/etc/passwd",
        "media/1/original%00",
    ] {
        let answer = files.respond(&Method::GET, refused, &HeaderMap::new()).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{refused}");
        assert!(body(answer).await.is_empty(), "{refused}");
    }
    let alias = files
        .respond(&Method::GET, "media/1/alias", &HeaderMap::new())
        .await;
    assert_eq!(alias.status(), StatusCode::OK);
}

/// A GET over a new connection: the status line.
fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// 200 connections that send half a request line and then nothing: the server keeps
/// answering others, and closes each stalled one once its header-read timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_neither_starve_the_server_nor_stay_open() {
    let (_dir, files, _) = folder();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServeLimits::default()
        .header_read_timeout(Duration::from_millis(500))
        .idle_timeout(Duration::from_secs(5))
        .max_connections(256);
    let service = hyper::service::service_fn(
        move |request: igdisplay_http::http::Request<hyper::body::Incoming>| {
            let files = files.clone();
            async move {
                let answer = files
                    .respond(request.method(), request.uri().path(), request.headers())
                    .await;
                Ok::<_, std::convert::Infallible>(answer)
            }
        },
    );
    tokio::spawn(igdisplay_mirror::serve(
        listener,
        limits,
        service,
        std::future::pending(),
    ));

    let stalled = tokio::task::spawn_blocking(move || {
        (0..200)
            .map(|_| {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.write_all(b"GET /media/1/orig").unwrap();
                stream
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let status = tokio::task::spawn_blocking(move || fetch(addr, "/media/1/original"))
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let closed = tokio::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .filter(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut rest = Vec::new();
                // The server answers 408 or closes (or resets): the read ends; a read that
                // times out means the connection stayed open.
                match stream.read_to_end(&mut rest) {
                    Ok(_) => true,
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 200, "every stalled connection was closed by the server");
}

#[tokio::test]
async fn a_file_larger_than_a_chunk_is_streamed_whole_and_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("media/2")).unwrap();
    let bytes: Vec<u8> = (0..300_000u32).map(|n| (n % 253) as u8).collect();
    std::fs::write(dir.path().join("media/2/video.mp4"), &bytes).unwrap();
    let files = FileServer::new(dir.path()).unwrap();
    let whole = files
        .respond(&Method::GET, "media/2/video.mp4", &HeaderMap::new())
        .await;
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(body(whole).await, bytes, "several chunks, in order");
    let part = files
        .respond(
            &Method::GET,
            "media/2/video.mp4",
            &headers(&[(header::RANGE, "bytes=100000-230000")]),
        )
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body(part).await, &bytes[100_000..=230_000]);
}

/// A small file is answered from memory for a second of the server's clock: deleted (a purge)
/// or replaced on disk, it is answered as it is on disk once that second has passed.
#[tokio::test]
async fn a_small_file_kept_in_memory_follows_the_disk_within_a_second() {
    let (dir, files, bytes) = folder();
    let clock = igdisplay_http::ManualClock::at_unix(1_800_000_000);
    let files = files.with_clock(std::sync::Arc::new(clock.clone()));
    let none = HeaderMap::new();
    let get = || files.respond(&Method::GET, "media/1/original", &none);
    assert_eq!(body(get().await).await, bytes);
    std::fs::remove_file(dir.path().join("media/1/original")).unwrap();
    assert_eq!(
        get().await.status(),
        StatusCode::OK,
        "from memory, within the second"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get().await.status(),
        StatusCode::NOT_FOUND,
        "deleted a second ago: gone"
    );
    std::fs::write(dir.path().join("media/1/original"), b"\xFF\xD8 new").unwrap();
    assert_eq!(body(get().await).await, b"\xFF\xD8 new");
    std::fs::write(dir.path().join("media/1/original"), b"\xFF\xD8 newer").unwrap();
    clock.advance(Duration::from_secs(1));
    let answer = get().await;
    assert_eq!(answer.headers()[header::CONTENT_LENGTH], "8");
    assert_eq!(body(answer).await, b"\xFF\xD8 newer", "replaced: the new bytes");
}

/// A file larger than a chunk streams whole, in order, and a range of it is exactly its bytes.
#[tokio::test]
async fn a_large_file_streams_whole_and_a_range_of_it_is_exact() {
    let (dir, files, _) = folder();
    let large: Vec<u8> = (0..1_300_000u32).map(|n| (n % 253) as u8).collect();
    std::fs::write(dir.path().join("media/1/video.mp4"), &large).unwrap();
    let whole = files
        .respond(&Method::GET, "media/1/video.mp4", &HeaderMap::new())
        .await;
    assert_eq!(whole.headers()[header::CONTENT_LENGTH], "1300000");
    assert_eq!(body(whole).await, large);
    let range = headers(&[(header::RANGE, "bytes=100000-1199999")]);
    let part = files.respond(&Method::GET, "media/1/video.mp4", &range).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(body(part).await, &large[100_000..1_200_000]);
}

/// A shutdown while a request is being answered: no new connection is taken, the answer
/// under way is finished and delivered, and `serve` returns once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_finishes_the_request_under_way_then_returns() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let started_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let (release, released) = tokio::sync::watch::channel(false);
    let service =
        hyper::service::service_fn(move |_: igdisplay_http::http::Request<hyper::body::Incoming>| {
            let (started_tx, mut released) = (started_tx.clone(), released.clone());
            async move {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                let _ = released.wait_for(|go| *go).await;
                Ok::<_, std::convert::Infallible>(hyper::Response::new(igdisplay_mirror::FileBody::bytes(
                    bytes::Bytes::from_static(b"finished"),
                )))
            }
        });
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(igdisplay_mirror::serve(
        listener,
        ServeLimits::default(),
        service,
        async {
            let _ = stopping.await;
        },
    ));
    let client = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    started.await.unwrap();
    stop.send(()).unwrap();
    // Once nothing listens any more, `serve` is still waiting for the answer under way
    // (given time to return, were it not).
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    for _ in 0..1000 {
        if serving.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!serving.is_finished(), "serve returned with a request under way");
    release.send(true).unwrap();
    let answer = client.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("finished"),
        "{answer}"
    );
    serving.await.unwrap();
}
