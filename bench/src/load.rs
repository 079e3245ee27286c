//! The one load generator every server is measured with: `connections` keep-alive HTTP/1.1
//! connections (hyper's client connection, nothing more), each sending its share of the
//! requests in turn.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `requests` GETs of `target` over `connections` connections; returns the elapsed time.
pub(crate) async fn run(
    addr: SocketAddr,
    target: &str,
    connections: usize,
    requests: usize,
) -> Result<Duration, String> {
    let per = requests.div_ceil(connections);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.to_owned();
        tasks.push(tokio::spawn(async move { connection(addr, &target, per).await }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(started.elapsed())
}

async fn connection(addr: SocketAddr, target: &str, requests: usize) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let host = addr.to_string();
    for _ in 0..requests {
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = http::Request::get(target)
            .header(http::header::HOST, &host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        if status != 200 || body.to_bytes().is_empty() {
            return Err(format!("unexpected answer {status}"));
        }
    }
    Ok(())
}
