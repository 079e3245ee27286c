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
    let authorization = instagram
        .authorize()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
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

/// `igdisplay auth callback URL`.
pub(crate) async fn callback(settings: &Settings, redirect: &str) -> Result<(), Failure> {
    let instagram = settings.instagram(true).await?;
    let pending = take_pending(settings)?;
    let record = instagram.complete_login(pending, redirect).await?;
    report(settings, &record);
    Ok(())
}

/// `igdisplay login`.
pub(crate) async fn login(settings: &Settings, no_browser: bool, timeout: u64) -> Result<(), Failure> {
    let instagram = settings.instagram(true).await?;
    let authorization = instagram
        .authorize()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
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
            let wait = listen(listener, &path, &redirect_uri);
            tokio::time::timeout(Duration::from_secs(timeout), wait)
                .await
                .map_err(|_| {
                    Failure::runtime(format!("no redirect arrived within {timeout} s"))
                        .hint("run `igdisplay login` again, or pass --timeout")
                })??
        }
        None => {
            open_or_print(&authorization.url, no_browser);
            eprintln!("After approving, paste the whole URL your browser was sent to, then press Enter:");
            let mut line = String::new();
            tokio::io::BufReader::new(tokio::io::stdin())
                .read_line(&mut line)
                .await?;
            line
        }
    };
    let record = finish(&instagram, authorization.pending, &redirect).await?;
    report(settings, &record);
    Ok(())
}

async fn finish(
    instagram: &Instagram,
    pending: PendingAuthorization,
    redirect: &str,
) -> Result<TokenRecord, Failure> {
    Ok(instagram.complete_login(pending, redirect).await?)
}

fn report(settings: &Settings, record: &TokenRecord) {
    if settings.json {
        out::json(&serde_json::json!({
            "user_id": record.user_id.as_str(),
            "kind": "long_lived",
            "expires_at": record.expires_at.to_rfc3339(),
        }));
    } else {
        println!(
            "Logged in as user {}; the token is stored in {} and valid until {} (refreshed automatically).",
            record.user_id,
            settings
                .token_file()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            record.expires_at.to_rfc3339()
        );
    }
}

fn save_pending(settings: &Settings, pending: &PendingAuthorization) -> Result<(), Failure> {
    let json = serde_json::to_vec(pending).map_err(|e| Failure::runtime(e.to_string()))?;
    write_private(&settings.pending_file()?, &json)?;
    Ok(())
}

/// Reads and deletes the pending authorization: a state serves one callback.
fn take_pending(settings: &Settings) -> Result<PendingAuthorization, Failure> {
    let path = settings.pending_file()?;
    let bytes = std::fs::read(&path).map_err(|_| {
        Failure::usage(
            "no login is in progress",
            "run `igdisplay auth url` first (with the same --token-file)",
        )
    })?;
    let _ = std::fs::remove_file(&path);
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

/// Answers requests on the loopback listener until one carries a callback for `path`;
/// anything else (a favicon, a probe, a malformed request) gets a 404 or 400 and is ignored.
async fn listen(
    listener: tokio::net::TcpListener,
    path: &str,
    redirect_uri: &str,
) -> Result<String, Failure> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let Ok(Ok(target)) = tokio::time::timeout(Duration::from_secs(10), read_target(&mut stream)).await
        else {
            let _ = respond(&mut stream, 400, "Bad request.").await;
            continue;
        };
        let (request_path, query) = target.split_once('?').unwrap_or((&target, ""));
        let is_callback = request_path == path && (query.contains("code=") || query.contains("error="));
        if !is_callback {
            let _ = respond(&mut stream, 404, "Not found.").await;
            continue;
        }
        if Callback::parse(query).is_err() {
            let _ = respond(&mut stream, 400, "This is not a valid Instagram redirect.").await;
            continue;
        }
        let message = if query.contains("error=") {
            "The login was cancelled. You can close this tab."
        } else {
            "You are logged in. You can close this tab and return to the terminal."
        };
        let _ = respond(&mut stream, 200, message).await;
        let base = redirect_uri.split('?').next().unwrap_or(redirect_uri);
        eprintln!("Received the redirect {}", redact_uri(&format!("{base}?{query}")));
        return Ok(format!("{base}?{query}"));
    }
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
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>igdisplay</title></head>\
         <body><p>{message}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\ncontent-security-policy: default-src 'none'\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Opens the URL in a browser, or prints it (when asked, or when no browser can be started).
fn open_or_print(url: &str, no_browser: bool) {
    let opened = !no_browser && {
        let command = if cfg!(target_os = "macos") {
            std::process::Command::new("open").arg(url).status()
        } else if cfg!(windows) {
            std::process::Command::new("cmd")
                .args(["/C", "start", "", url])
                .status()
        } else {
            std::process::Command::new("xdg-open").arg(url).status()
        };
        command.is_ok_and(|s| s.success())
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
