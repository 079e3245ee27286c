//! The one load generator every server is measured with: `connections` keep-alive HTTP/1.1
//! connections (hyper's client connection, nothing more), each sending its share of the
//! requests in turn.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One request of a workload: a path, and a byte range to ask for (then 206 is expected).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) path: String,
    /// `(first, last)`, inclusive.
    pub(crate) range: Option<(u64, u64)>,
}

impl Target {
    /// A whole file.
    pub(crate) fn whole(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            range: None,
        }
    }
}

/// `requests` GETs of `target` over `connections` connections; returns the elapsed time.
pub(crate) async fn run(
    addr: SocketAddr,
    target: &str,
    connections: usize,
    requests: usize,
) -> Result<Duration, String> {
    run_targets(addr, &[Target::whole(target)], connections, requests).await
}

/// `requests` GETs over `connections` connections, each connection going through `targets`
/// in turn (starting at its own place in the list); every answer must be 200 (206 for a range,
/// with exactly the range's bytes) and not empty. Returns the elapsed time.
pub(crate) async fn run_targets(
    addr: SocketAddr,
    targets: &[Target],
    connections: usize,
    requests: usize,
) -> Result<Duration, String> {
    run_timed(addr, targets, connections, requests)
        .await
        .map(|(elapsed, _)| elapsed)
}

/// [`run_targets`], with every request's time from sending to its last byte.
pub(crate) async fn run_timed(
    addr: SocketAddr,
    targets: &[Target],
    connections: usize,
    requests: usize,
) -> Result<(Duration, Vec<Duration>), String> {
    if targets.is_empty() {
        return Err("no target".to_owned());
    }
    let targets: std::sync::Arc<[Target]> = targets.into();
    let per = requests.div_ceil(connections);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for n in 0..connections {
        let targets = targets.clone();
        tasks.push(tokio::spawn(
            async move { connection(addr, &targets, n, per).await },
        ));
    }
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok((started.elapsed(), latencies))
}

/// The `p`-th percentile (0 to 100) of `latencies`, in milliseconds.
pub(crate) fn percentile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let at = ((latencies.len() - 1) as f64 * p / 100.0).round() as usize;
    latencies[at.min(latencies.len() - 1)].as_secs_f64() * 1000.0
}

async fn connection(
    addr: SocketAddr,
    targets: &[Target],
    start: usize,
    requests: usize,
) -> Result<Vec<Duration>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let host = addr.to_string();
    let mut latencies = Vec::with_capacity(requests);
    for n in 0..requests {
        let sent = Instant::now();
        let target = &targets[(start + n) % targets.len()];
        sender.ready().await.map_err(|e| e.to_string())?;
        let mut request = http::Request::get(&target.path).header(http::header::HOST, &host);
        if let Some((first, last)) = target.range {
            request = request.header(http::header::RANGE, format!("bytes={first}-{last}"));
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let expected = match target.range {
            Some((first, last)) if status == 206 => usize::try_from(last - first + 1).unwrap_or(0),
            None if status == 200 => body.len().max(1),
            _ => return Err(format!("unexpected answer {status} to {}", target.path)),
        };
        if body.is_empty() || body.len() != expected {
            return Err(format!(
                "{} bytes, not {expected}, for {}",
                body.len(),
                target.path
            ));
        }
        latencies.push(sent.elapsed());
    }
    Ok(latencies)
}
