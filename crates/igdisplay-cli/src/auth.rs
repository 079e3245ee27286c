//! `auth url`, `auth callback` and `login`.

use crate::fail::Failure;
use crate::files::write_private;
use crate::out;
use crate::settings::Settings;
use igdisplay::Instagram;
use igdisplay::auth::{Callback, PendingAuthorization, TokenRecord};
use igdisplay::http::{http, redact_uri};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// `igdisplay auth url`.
pub(crate) async fn url(settings: &Settings) -> Result<(), Failure> {
    let instagram = settings.instagram(true).await?;
    let authorization = authorize(settings, &instagram)?;
    save_pending(settings, &authorization.pending)?;
    if settings.json {
        out::json(&serde_json::json!({
            "url": authorization.url,
            "expires_at": authorization.pending.expires_at().to_rfc3339(),
        }));
    } else {
        println!("{}", authorization.url);
        eprintln!(
            "Open it, approve, then run: igdisplay auth callback '<the URL you were redirected to>' (within 10 minutes)"
        );
    }
    Ok(())
}

/// The authorize URL with the `--scope`s asked for; a scope Instagram would refuse (renamed,
/// or of the other platform) is a usage error naming the right one.
fn authorize(settings: &Settings, instagram: &Instagram) -> Result<igdisplay::auth::Authorization, Failure> {
    let builder = settings
        .scopes
        .iter()
        .fold(instagram.authorize(), |b, scope| b.scope(scope.as_str()));
    builder.build().map_err(|e| match e {
        igdisplay::auth::AuthorizeError::Scope(scope) => Failure::usage(
            scope.to_string(),
            "use the scope names of Instagram Login (--scope)",
        ),
        other => Failure::runtime(other.to_string()),
    })
}

/// `igdisplay auth callback URL`. A callback that is not for the pending login (another
/// state, or none) leaves it in place, so the right callback still completes it.
pub(crate) async fn callback(settings: &Settings, redirect: &str) -> Result<(), Failure> {
    let instagram = settings.instagram(true).await?;
    let pending = read_pending(settings)?;
    let parsed = Callback::parse(redirect)
        .map_err(|e| Failure::usage(e.to_string(), "paste the whole URL you were redirected to"))?;
    if !pending.is_for(&parsed) {
        return Err(Failure::usage(
            "this redirect is not for the login in progress (its state differs)",
            "paste the URL of the login started by `igdisplay auth url`",
        ));
    }
    // The state serves one callback: the pending login is spent from here on.
    let _ = std::fs::remove_file(settings.pending_file()?);
    let record = instagram.complete_login(pending, redirect).await?;
    report(settings, &instagram, &record).await;
    Ok(())
}

/// `igdisplay login`.
pub(crate) async fn login(settings: &Settings, no_browser: bool, timeout: u64) -> Result<(), Failure> {
    let instagram = settings.instagram(true).await?;
    let authorization = authorize(settings, &instagram)?;
    let redirect_uri = settings.redirect_uri()?.to_owned();
    let target = loopback_target(&redirect_uri);
    let redirect = match target {
        Some((addr, path)) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Failure::runtime(format!("cannot listen on {addr} for the redirect: {e}"))
                    .hint("free that port, or register another loopback redirect URI")
            })?;
            eprintln!("Waiting for Instagram to redirect to {redirect_uri} (for {timeout} s)…");
            open_or_print(&authorization.url, no_browser);
            let wait = listen(&listener, &path, &authorization.pending);
            let arrived = tokio::time::timeout(Duration::from_secs(timeout), wait)
                .await
                .map_err(|_| {
                    Failure::runtime(format!("no redirect arrived within {timeout} s"))
                        .hint("run `igdisplay login` again, or pass --timeout")
                })??;
            let base = redirect_uri.split('?').next().unwrap_or(&redirect_uri);
            let redirect = format!("{base}?{}", arrived.query);
            eprintln!("Received the redirect {}", redact_uri(&redirect));
            // The page tells the truth: it is sent once the login has completed or failed.
            let outcome = finish(&instagram, authorization.pending, &redirect).await;
            let page = match &outcome {
                Ok(_) => "You are logged in. You can close this tab and return to the terminal.",
                Err(_) => "The login did not complete. Return to the terminal to see why.",
            };
            if let Ok(record) = &outcome {
                report(settings, &instagram, record).await;
            }
            show_outcome(&listener, arrived, &path, page).await;
            outcome?;
            return Ok(());
        }
        None => {
            open_or_print(&authorization.url, no_browser);
            eprintln!("After approving, paste the whole URL your browser was sent to, then press Enter:");
            read_redirect(&authorization.pending).await?
        }
    };
    let record = finish(&instagram, authorization.pending, &redirect).await?;
    report(settings, &instagram, &record).await;
    Ok(())
}

/// Reads pasted redirect URLs until one is the callback of `pending`: a bad paste (a cut
/// URL, another login's) asks again instead of ending the login. End of input ends it.
async fn read_redirect(pending: &PendingAuthorization) -> Result<String, Failure> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let Some(line) = lines.next_line().await? else {
            return Err(Failure::usage(
                "no redirect URL was pasted",
                "run `igdisplay login` again and paste the URL of the page Instagram sent you to",
            ));
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match Callback::parse(line) {
            Ok(callback) if pending.is_for(&callback) => return Ok(line.to_owned()),
            Ok(_) => {
                eprintln!("That URL is from another login (its state differs). Paste the URL of this one:")
            }
            Err(e) => {
                eprintln!("That is not a redirect URL ({e}). Paste the whole URL, from https:// to the end:")
            }
        }
    }
}

async fn finish(
    instagram: &Instagram,
    pending: PendingAuthorization,
    redirect: &str,
) -> Result<TokenRecord, Failure> {
    Ok(instagram.complete_login(pending, redirect).await?)
}

/// Says who logged in: by username (one `/me` call with the new token) where Instagram
/// answers, by id otherwise.
async fn report(settings: &Settings, instagram: &Instagram, record: &TokenRecord) {
    let username = instagram
        .graph_with_token(record.access_token.clone())
        .me()
        .send()
        .await
        .ok()
        .and_then(|me| me.username);
    if settings.json {
        out::json(&serde_json::json!({
            "user_id": record.user_id.as_str(),
            "username": username,
            "kind": "long_lived",
            "expires_at": record.expires_at.to_rfc3339(),
        }));
    } else {
        let who = match &username {
            Some(name) => out::handle(name, &record.user_id),
            None => format!("user {}", record.user_id),
        };
        println!(
            "Logged in as {who}; the token is stored and valid until {} (refreshed automatically).",
            record.expires_at.to_rfc3339()
        );
    }
}

fn save_pending(settings: &Settings, pending: &PendingAuthorization) -> Result<(), Failure> {
    let json = serde_json::to_vec(pending).map_err(|e| Failure::runtime(e.to_string()))?;
    write_private(&settings.pending_file()?, &json)?;
    Ok(())
}

/// Reads the pending authorization (the caller deletes it once a callback matches).
fn read_pending(settings: &Settings) -> Result<PendingAuthorization, Failure> {
    let path = settings.pending_file()?;
    let bytes = std::fs::read(&path).map_err(|_| {
        Failure::usage(
            "no login is in progress",
            "run `igdisplay auth url` first (with the same --token-file)",
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        Failure::runtime("the pending login file is damaged").hint("run `igdisplay auth url` again")
    })
}

/// The address and path to listen on when the redirect URI is plain-http loopback.
fn loopback_target(redirect_uri: &str) -> Option<(std::net::SocketAddr, String)> {
    let uri: http::Uri = redirect_uri.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let ip: std::net::IpAddr = match uri.host()? {
        "localhost" | "127.0.0.1" => [127, 0, 0, 1].into(),
        "[::1]" | "::1" => std::net::Ipv6Addr::LOCALHOST.into(),
        _ => return None,
    };
    Some(((ip, uri.port_u16().unwrap_or(80)).into(), uri.path().to_owned()))
}

/// A request that reached the listener, and the connection to answer it on.
struct Arrived {
    query: String,
    stream: tokio::net::TcpStream,
}

/// Answers requests on the loopback listener until one carries the callback of `pending`
/// (its state), and returns it unanswered: the caller answers once the login is done. Every
/// connection is read in a task of its own (an idle one cannot hold the others up); anything
/// else — a favicon, a probe, a malformed request, a callback with another state or none (a
/// forged `?error=access_denied` from some web page) — gets a 404 or 400 and is ignored.
async fn listen(
    listener: &tokio::net::TcpListener,
    path: &str,
    pending: &PendingAuthorization,
) -> Result<Arrived, Failure> {
    let (sender, mut arrivals) = tokio::sync::mpsc::channel::<Arrived>(16);
    loop {
        let mut arrived = tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, _) = accepted?;
                let sender = sender.clone();
                tokio::spawn(async move {
                    let read = tokio::time::timeout(Duration::from_secs(10), read_target(&mut stream)).await;
                    match read {
                        Ok(Ok(target)) => {
                            let _ = sender.send(Arrived { query: target, stream }).await;
                        }
                        _ => {
                            let _ = respond(&mut stream, 400, "Bad request.").await;
                        }
                    }
                });
                continue;
            }
            Some(arrived) = arrivals.recv() => arrived,
        };
        let target = std::mem::take(&mut arrived.query);
        let (request_path, query) = target.split_once('?').unwrap_or((&target, ""));
        if request_path != path {
            tokio::spawn(async move { respond(&mut arrived.stream, 404, "Not found.").await });
            continue;
        }
        match Callback::parse(query) {
            Ok(callback) if pending.is_for(&callback) => {
                arrived.query = query.to_owned();
                return Ok(arrived);
            }
            _ => {
                let page = "This is not the redirect of the login igdisplay is waiting for.";
                tokio::spawn(async move { respond(&mut arrived.stream, 400, page).await });
            }
        }
    }
}

/// Answers the callback with a 303 to `{path}?done`, so the code and state leave the
/// browser's address bar and history, then shows `page` there to the browser that follows,
/// waiting at most 5 s for it (a browser follows at once; `curl` does not, and loses nothing).
async fn show_outcome(listener: &tokio::net::TcpListener, mut arrived: Arrived, path: &str, page: &str) {
    let location = format!("{path}?done");
    if respond_with(
        &mut arrived.stream,
        303,
        &[("location", &location)],
        "See the result.",
    )
    .await
    .is_err()
    {
        return;
    }
    let serve = async {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let read = tokio::time::timeout(Duration::from_secs(5), read_target(&mut stream)).await;
            if matches!(&read, Ok(Ok(target)) if *target == location) {
                let _ = respond(&mut stream, 200, page).await;
                return;
            }
            let _ = respond(&mut stream, 404, "Not found.").await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
}

/// The request target of one HTTP/1 request (head capped at 16 KiB).
async fn read_target(stream: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(target.to_owned()),
        _ => Err(std::io::ErrorKind::InvalidData.into()),
    }
}

/// A plain page that keeps nothing: no caching, no referrer, no scripts or external resources.
async fn respond(stream: &mut tokio::net::TcpStream, status: u16, message: &str) -> std::io::Result<()> {
    respond_with(stream, status, &[], message).await
}

/// [`respond`] with more headers (a redirect's `location`).
async fn respond_with(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    message: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>igdisplay</title></head>\
         <body><p>{message}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\ncontent-security-policy: default-src 'none'\r\n\
         {extra}connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Opens the URL in a browser, or prints it (when asked, or when no browser can be started).
/// The opener's own output is discarded: without a display, `xdg-open` explains at length why
/// it could not, before our one line that matters.
fn open_or_print(url: &str, no_browser: bool) {
    let opened = !no_browser && {
        let mut command = if cfg!(target_os = "macos") {
            let mut command = std::process::Command::new("open");
            command.arg(url);
            command
        } else if cfg!(windows) {
            let mut command = std::process::Command::new("cmd");
            command.args(["/C", "start", "", url]);
            command
        } else {
            let mut command = std::process::Command::new("xdg-open");
            command.arg(url);
            command
        };
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !opened {
        eprintln!("Open this URL in a browser:");
        println!("{url}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_loopback_redirects_get_a_listener() {
        assert_eq!(
            loopback_target("http://127.0.0.1:8788/callback"),
            Some(("127.0.0.1:8788".parse().unwrap(), "/callback".to_owned()))
        );
        assert_eq!(loopback_target("http://localhost/cb").unwrap().0.port(), 80);
        assert!(loopback_target("http://[::1]:9/cb").unwrap().0.is_ipv6());
        assert_eq!(loopback_target("https://127.0.0.1:8788/callback"), None);
        assert_eq!(loopback_target("http://app.example/cb"), None);
        assert_eq!(loopback_target("http://0.0.0.0:80/cb"), None);
    }
}
