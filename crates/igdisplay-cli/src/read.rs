//! `me`, `media list|get|children`, `token status|refresh|import|logout`, `signed-request verify`.

use crate::fail::Failure;
use crate::out;
use crate::settings::Settings;
use futures_util::{StreamExt, TryStreamExt};
use igdisplay::auth::{TokenKind, TokenRecord, verify_signed_request};
use igdisplay::model::{AccessToken, AppSecret, Media, MediaId, Timestamp};
use tokio::io::AsyncReadExt;

/// `igdisplay me`.
pub(crate) async fn me(settings: &Settings) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let me = instagram.graph(&user).me().all_fields().send().await?;
    if settings.json {
        out::json(&me);
        return Ok(());
    }
    let rows: Vec<(&str, Option<String>)> = vec![
        ("id", Some(me.id.to_string())),
        ("user id", me.user_id.as_ref().map(ToString::to_string)),
        ("username", me.username.as_ref().map(|u| format!("@{u}"))),
        ("name", me.name.clone()),
        ("account type", me.account_type.as_ref().map(ToString::to_string)),
        ("media", me.media_count.map(|n| n.to_string())),
        ("followers", me.followers_count.map(|n| n.to_string())),
        ("follows", me.follows_count.map(|n| n.to_string())),
    ];
    for (name, value) in rows {
        if let Some(value) = value {
            println!("{name:<13} {}", out::plain(&value));
        }
    }
    Ok(())
}

fn media_rows(items: &[Media]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.media_type
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                m.timestamp.map_or_else(String::new, Timestamp::to_rfc3339),
                out::short(m.caption.as_deref().unwrap_or(""), 60),
            ]
        })
        .collect()
}

fn print_media(settings: &Settings, items: &[Media]) {
    if settings.json {
        out::json(&items);
    } else {
        out::table(&["ID", "TYPE", "PUBLISHED", "CAPTION"], &media_rows(items));
    }
}

fn parse_time(text: &str) -> Result<Timestamp, Failure> {
    text.trim()
        .parse::<i64>()
        .map(Timestamp::from_unix)
        .or_else(|_| Timestamp::parse(text.trim()))
        .map_err(|_| {
            Failure::usage(
                format!("`{text}` is not a time"),
                "use Unix seconds or 2024-01-31T00:00:00Z",
            )
        })
}

/// Every item, printed a page at a time as it arrives: memory holds one page whatever the
/// size of the library (JSON output is one array, written incrementally).
async fn list_all(settings: &Settings, request: igdisplay::graph::MediaListRequest) -> Result<(), Failure> {
    let mut pages = request.into_stream().try_chunks(100);
    let mut first = true;
    if settings.json {
        println!("[");
    }
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| e.1)?;
        if settings.json {
            for item in &page {
                let text = serde_json::to_string_pretty(item).map_err(|e| Failure::runtime(e.to_string()))?;
                println!("{}{text}", if first { "" } else { "," });
                first = false;
            }
        } else {
            let header = ["ID", "TYPE", "PUBLISHED", "CAPTION"];
            if first {
                out::table(&header, &media_rows(&page));
            } else {
                out::rows(&header, &media_rows(&page));
            }
            first = false;
        }
    }
    if settings.json {
        println!("]");
    }
    Ok(())
}

/// `igdisplay media list`.
pub(crate) async fn list(
    settings: &Settings,
    limit: u32,
    all: bool,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let mut request = instagram.graph(&user).my_media().all_fields().limit(limit);
    if let Some(since) = since {
        request = request.since(parse_time(since)?);
    }
    if let Some(until) = until {
        request = request.until(parse_time(until)?);
    }
    if all {
        return list_all(settings, request).await;
    }
    let items = {
        let page = request.send().await?;
        if page.has_next() && !settings.json {
            eprintln!("(more media follow: add --all for everything)");
        }
        page.items
    };
    print_media(settings, &items);
    Ok(())
}

/// `igdisplay media get ID`.
pub(crate) async fn get(settings: &Settings, id: &str) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let media = instagram
        .graph(&user)
        .media(&MediaId::new(id))
        .all_fields()
        .send()
        .await?;
    if settings.json {
        out::json(&media);
    } else {
        print_media(settings, std::slice::from_ref(&media));
        if let Some(permalink) = &media.permalink {
            println!("\n{permalink}");
        }
    }
    Ok(())
}

/// `igdisplay media children ID`.
pub(crate) async fn children(settings: &Settings, id: &str) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let page = instagram.graph(&user).children(&MediaId::new(id)).send().await?;
    print_media(settings, &page.items);
    Ok(())
}

/// `igdisplay token status`.
pub(crate) async fn status(settings: &Settings) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let record = instagram.tokens().store().load(&user).await?.ok_or_else(|| {
        Failure::runtime(format!("no token is stored for user {user}")).hint("run `igdisplay login`")
    })?;
    let now = instagram.clock().now();
    let schedule = instagram.tokens().schedule();
    let kind = match record.kind {
        TokenKind::ShortLived => "short-lived",
        _ => "long-lived",
    };
    let expired = record.is_expired(now);
    let due = schedule.is_due(&record, now);
    // Like `gh auth status`: ask Instagram whether it still takes the token (without
    // refreshing it), unless it has expired already.
    let check = if expired {
        None
    } else {
        Some(
            instagram
                .graph_with_token(record.access_token.clone())
                .me()
                .send()
                .await,
        )
    };
    let username = match &check {
        Some(Ok(me)) => me.username.clone(),
        _ => None,
    };
    let who = match &username {
        Some(name) => out::handle(name, &record.user_id),
        None => record.user_id.to_string(),
    };
    if settings.json {
        out::json(&serde_json::json!({
            "user_id": record.user_id.as_str(),
            "username": username,
            "kind": kind.replace('-', "_"),
            "platform": record.platform.as_str(),
            "issued_at": record.issued_at.to_rfc3339(),
            "expires_at": record.expires_at.to_rfc3339(),
            "expired": expired,
            "refresh_due": due,
            "accepted": matches!(check, Some(Ok(_))),
        }));
    } else {
        print_status(&record, &who, kind, now, due, check.as_ref());
    }
    // The exit code says whether the token works, as `gh auth status` does.
    match check {
        None => Err(Failure::runtime(format!(
            "the token of {who} expired at {}",
            record.expires_at.to_rfc3339()
        ))
        .hint("run `igdisplay login` again (or `igdisplay token import`)")),
        Some(Err(error)) => Err(error.into()),
        Some(Ok(_)) => Ok(()),
    }
}

/// `token status` for a person: the token's facts, whether a refresh is due, and whether
/// Instagram still takes it (`check`; `None` when it has expired).
fn print_status(
    record: &TokenRecord,
    who: &str,
    kind: &str,
    now: std::time::SystemTime,
    due: bool,
    check: Option<&Result<igdisplay::model::User, igdisplay::graph::Error>>,
) {
    let days = record.remaining(now).as_secs() / 86_400;
    println!("user          {who}");
    println!("kind          {kind} ({})", record.platform);
    println!("issued        {}", record.issued_at.to_rfc3339());
    println!(
        "expires       {} ({days} days left)",
        record.expires_at.to_rfc3339()
    );
    let state = if record.is_expired(now) {
        "expired: run `igdisplay login`"
    } else if due {
        "due: the next command refreshes it (or run `igdisplay token refresh`)"
    } else {
        "not due yet"
    };
    println!("refresh       {state}");
    let accepted = match check {
        None => "no (expired)",
        Some(Ok(_)) => "yes",
        Some(Err(e)) if e.requires_login() => "no (revoked or invalid)",
        Some(Err(_)) => "unknown (Instagram could not be asked)",
    };
    println!("accepted      {accepted}");
}

/// `igdisplay token refresh`.
pub(crate) async fn refresh(settings: &Settings) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let record = instagram.tokens().refresh_now(&user).await?;
    if settings.json {
        out::json(
            &serde_json::json!({"user_id": record.user_id.as_str(), "expires_at": record.expires_at.to_rfc3339()}),
        );
    } else {
        println!("Refreshed; valid until {}.", record.expires_at.to_rfc3339());
    }
    Ok(())
}

/// `igdisplay token import`: a long-lived token from the App Dashboard, on standard input.
pub(crate) async fn import(settings: &Settings) -> Result<(), Failure> {
    let mut text = String::new();
    tokio::io::stdin().read_to_string(&mut text).await?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Failure::usage(
            "standard input holds no token",
            "pipe the token in: igdisplay token import < token.txt",
        ));
    }
    let instagram = settings.instagram(false).await?;
    let me = instagram
        .graph_with_token(AccessToken::new(token))
        .me()
        .send()
        .await?;
    let record = TokenRecord::long_lived(
        me.id.clone(),
        AccessToken::new(token),
        settings.platform,
        instagram.clock().now(),
    );
    let expires = record.expires_at;
    instagram.tokens().import(record).await?;
    if settings.json {
        out::json(
            &serde_json::json!({"user_id": me.id.as_str(), "username": me.username, "expires_at": expires.to_rfc3339()}),
        );
    } else {
        println!(
            "Stored the token of @{} (user {}); assumed valid until {}.",
            out::plain(me.username.as_deref().unwrap_or("?")),
            me.id,
            expires.to_rfc3339()
        );
    }
    Ok(())
}

/// `igdisplay token logout`.
pub(crate) async fn logout(settings: &Settings) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    let removed = instagram.tokens().logout(&user).await?;
    if settings.json {
        out::json(&serde_json::json!({"user_id": user.as_str(), "removed": removed}));
    } else if removed {
        println!("Forgot the token of user {user}.");
    } else {
        println!("No token was stored for user {user}.");
    }
    Ok(())
}

/// `igdisplay signed-request verify VALUE`.
pub(crate) fn verify(settings: &Settings, value: &str, secret: Option<AppSecret>) -> Result<(), Failure> {
    let secret = secret.ok_or_else(|| {
        Failure::usage(
            "no app secret is configured",
            "set IGDISPLAY_APP_SECRET or pass --app-secret-file",
        )
    })?;
    let payload = verify_signed_request(&secret, value).map_err(|e| {
        Failure::runtime(e.to_string()).hint("check that the app secret is this app's Instagram App Secret")
    })?;
    if settings.json {
        out::json(&payload);
    } else {
        println!("valid signed_request for user {}", payload.user_id);
        if let Some(issued) = payload.issued_at {
            println!("issued at {}", Timestamp::from_unix(issued).to_rfc3339());
        }
    }
    Ok(())
}
