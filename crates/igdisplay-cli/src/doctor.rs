//! `igdisplay doctor`: checks a setup and says, one line per check, what is wrong and how to
//! fix it; exit 1 when any check fails.
//!
//! The checks: the configuration; the redirect URI as the authorize window sees it; the
//! stored token (kind, age, expiry); the account type (Instagram Login needs a professional
//! account); the granted scopes; this machine's clock against the server's `Date`; the
//! rate-limit usage; and the deauthorize and data-deletion callbacks, when configured. One
//! Graph request (`/me`) serves the account, the clock and the usage checks; it sends the
//! stored token as it is, without refreshing it.

use crate::fail::Failure;
use crate::out;
use crate::settings::Settings;
use igdisplay::Instagram;
use igdisplay::auth::{TokenKind, TokenRecord};
use igdisplay::graph::UserField;
use igdisplay::http::{Clock as _, HttpResponse, SystemClock, http};
use igdisplay::model::{AccountType, Platform};
use serde::Serialize;
use std::time::Duration;

/// A clock offset past this fails the clock check: token expiries and signed-request ages
/// are judged with this machine's clock.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

/// How one check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check,
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The callbacks to check, from `doctor`'s options.
pub(crate) struct Callbacks {
    pub(crate) deauthorize: Option<String>,
    pub(crate) data_deletion: Option<String>,
}

/// Runs every check and prints the report.
pub(crate) async fn run(settings: &Settings, callbacks: &Callbacks) -> Result<(), Failure> {
    let mut checks = Vec::new();
    let configured = configuration(settings);
    let app_ok = configured.status == Status::Ok;
    checks.push(configured);
    let instagram = settings.instagram(app_ok).await?;
    checks.push(if app_ok {
        redirect_uri(&instagram).await
    } else {
        Check::new("redirect URI", Status::Skip, "needs the configuration above")
    });
    let record = match settings.user(&instagram).await {
        Ok(user) => instagram.tokens().store().load(&user).await?,
        Err(_) => None,
    };
    checks.push(token(&instagram, record.as_ref()));
    let now = instagram.clock().now();
    match record.filter(|r| !r.is_expired(now)) {
        Some(record) => {
            checks.push(scopes(settings.platform, &record));
            checks.extend(graph_checks(&instagram, settings.platform, &record).await);
        }
        None => {
            for name in ["scopes", "account", "clock", "rate limit"] {
                checks.push(Check::new(name, Status::Skip, "needs a valid stored token"));
            }
        }
    }
    for (name, url) in [
        ("deauthorize callback", &callbacks.deauthorize),
        ("data-deletion callback", &callbacks.data_deletion),
    ] {
        checks.push(match url {
            Some(url) => callback(&instagram, name, url, settings.mock().is_some()).await,
            None => Check::new(
                name,
                Status::Skip,
                "not configured (--deauthorize-url, --data-deletion-url)",
            ),
        });
    }
    report(settings, &checks);
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::runtime(format!(
            "{failed} of {} checks failed",
            checks.len()
        )))
    }
}

fn report(settings: &Settings, checks: &[Check]) {
    if settings.json {
        out::json(&checks);
        return;
    }
    for check in checks {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        let detail = out::plain(&check.detail);
        match &check.fix {
            Some(fix) => println!("{status:<5} {}: {detail}; fix: {fix}", check.check),
            None => println!("{status:<5} {}: {detail}", check.check),
        }
    }
}

/// The app id, secret and redirect URI: present and well-formed.
fn configuration(settings: &Settings) -> Check {
    let mut problems = Vec::new();
    match settings.app_id() {
        None => problems.push("no app id".to_owned()),
        Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => {
            problems.push("the app id is not all digits".to_owned());
        }
        Some(_) => {}
    }
    if settings.app_secret().is_none() {
        problems.push("no app secret".to_owned());
    }
    match settings.configured_redirect_uri() {
        None => problems.push("no redirect URI".to_owned()),
        Some(uri) => match uri.parse::<http::Uri>() {
            Ok(parsed)
                if matches!(parsed.scheme_str(), Some("https" | "http")) && parsed.host().is_some() => {}
            _ => problems.push(format!("the redirect URI `{uri}` is not an absolute http(s) URL")),
        },
    }
    if problems.is_empty() {
        Check::new(
            "configuration",
            Status::Ok,
            format!(
                "app {}, redirect URI {}",
                settings.app_id().unwrap_or_default(),
                settings.configured_redirect_uri().unwrap_or_default()
            ),
        )
    } else {
        Check::new("configuration", Status::Fail, problems.join(", ")).fix(
            "set IGDISPLAY_APP_ID, IGDISPLAY_APP_SECRET and IGDISPLAY_REDIRECT_URI from App Dashboard > \
             Instagram > API setup",
        )
    }
}

/// Opens the authorize window as a browser would (no redirect followed): a refusal names the
/// redirect URI problem before a user ever sees it.
async fn redirect_uri(instagram: &Instagram) -> Check {
    const NAME: &str = "redirect URI";
    let url = match instagram.authorize().build() {
        Ok(authorization) => authorization.url,
        Err(e) => return Check::new(NAME, Status::Fail, crate::fail::chain(&e)),
    };
    let Ok(request) = http::Request::get(&url).body(Default::default()) else {
        return Check::new(NAME, Status::Fail, "the authorize URL is not a valid URL");
    };
    match instagram.backend().send(request.into()).await {
        Ok(response) if response.status().as_u16() < 400 => Check::new(
            NAME,
            Status::Ok,
            format!("the authorize window accepts it ({})", response.status().as_u16()),
        ),
        Ok(response) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "the authorize window refuses it ({}): {}",
                response.status().as_u16(),
                igdisplay::model::snippet(response.body(), &[])
            ),
        )
        .fix("add it, byte for byte, under Valid OAuth Redirect URIs in the App Dashboard"),
        Err(e) => Check::new(
            NAME,
            Status::Fail,
            format!("the authorize window could not be reached: {e}"),
        ),
    }
}

/// The stored token: kind, age, time left.
fn token(instagram: &Instagram, record: Option<&TokenRecord>) -> Check {
    const NAME: &str = "token";
    let Some(record) = record else {
        return Check::new(NAME, Status::Fail, "no token is stored")
            .fix("run `igdisplay login` (or `igdisplay token import`)");
    };
    let now = instagram.clock().now();
    let days = |d: Duration| d.as_secs() / 86_400;
    if record.is_expired(now) {
        return Check::new(
            NAME,
            Status::Fail,
            format!("expired at {}", record.expires_at.to_rfc3339()),
        )
        .fix("run `igdisplay login` again");
    }
    let detail = format!(
        "{}, {} days old, {} days left",
        match record.kind {
            TokenKind::ShortLived => "short-lived",
            _ => "long-lived",
        },
        days(record.age(now)),
        days(record.remaining(now)),
    );
    if record.kind == TokenKind::ShortLived {
        Check::new(NAME, Status::Warn, detail).fix("it lasts an hour: log in again for a 60-day token")
    } else if instagram.tokens().schedule().is_due(record, now) {
        Check::new(NAME, Status::Warn, format!("{detail}; a refresh is due"))
            .fix("any command refreshes it, or `igdisplay token refresh`")
    } else {
        Check::new(NAME, Status::Ok, detail)
    }
}

/// The scopes the token was granted, against what the commands need.
fn scopes(platform: Platform, record: &TokenRecord) -> Check {
    const NAME: &str = "scopes";
    let needed: &[&str] = match platform {
        Platform::BasicDisplay => &["user_profile", "user_media"],
        _ => &["instagram_business_basic"],
    };
    let Some(granted) = &record.permissions else {
        return Check::new(NAME, Status::Warn, "Instagram did not report the granted scopes");
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|scope| !granted.iter().any(|g| g == scope))
        .collect();
    if missing.is_empty() {
        Check::new(NAME, Status::Ok, granted.join(", "))
    } else {
        Check::new(NAME, Status::Fail, format!("not granted: {}", missing.join(", ")))
            .fix("log in again and approve every permission the window asks for")
    }
}

/// One `/me` with the stored token: the account type, the server's clock and the usage.
async fn graph_checks(instagram: &Instagram, platform: Platform, record: &TokenRecord) -> Vec<Check> {
    let graph = instagram.graph_with_token(record.access_token.clone());
    let request = graph
        .me()
        .fields(&[UserField::Id, UserField::Username, UserField::AccountType]);
    let sent = match request.to_http(&record.access_token) {
        Ok(http) => instagram.backend().send(http).await,
        Err(e) => return vec![Check::new("account", Status::Fail, crate::fail::chain(&e))],
    };
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return vec![
                Check::new(
                    "account",
                    Status::Fail,
                    format!("Instagram could not be reached: {e}"),
                )
                .fix("check the network (or that the mock runs)"),
            ];
        }
    };
    let account = match request.parse(&response, &record.access_token) {
        Ok(me) => {
            let name = me
                .username
                .map(|u| format!("@{u}"))
                .unwrap_or_else(|| me.id.to_string());
            match me.account_type {
                Some(AccountType::Personal) if platform == Platform::InstagramLogin => Check::new(
                    "account",
                    Status::Fail,
                    format!("{name} is a personal account; Instagram Login needs a professional one"),
                )
                .fix("switch it to a Business or Creator account in the Instagram app's settings"),
                Some(kind) => Check::new("account", Status::Ok, format!("{name}, {kind}")),
                None => Check::new("account", Status::Ok, name),
            }
        }
        Err(e) if e.requires_login() => Check::new("account", Status::Fail, crate::fail::chain(&e))
            .fix("the token was revoked: run `igdisplay login` again"),
        Err(e) => Check::new("account", Status::Fail, crate::fail::chain(&e)),
    };
    vec![account, clock(&response), usage(&response)]
}

/// This machine's clock against the server's `Date`.
fn clock(response: &HttpResponse) -> Check {
    const NAME: &str = "clock";
    let server = response
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let Some(server) = server else {
        return Check::new(NAME, Status::Skip, "the server sent no Date");
    };
    let local = SystemClock.now();
    let (offset, direction) = match local.duration_since(server) {
        Ok(ahead) => (ahead, "ahead of"),
        Err(behind) => (behind.duration(), "behind"),
    };
    let seconds = offset.as_secs();
    if offset > CLOCK_TOLERANCE {
        Check::new(
            NAME,
            Status::Fail,
            format!("this machine is {seconds} s {direction} the server"),
        )
        .fix("synchronise the clock (NTP): token expiry and signed_request ages depend on it")
    } else {
        Check::new(NAME, Status::Ok, format!("within {seconds} s of the server"))
    }
}

/// The rate-limit usage the response reported.
fn usage(response: &HttpResponse) -> Check {
    const NAME: &str = "rate limit";
    let usage = igdisplay::graph::reported_usage(response.headers());
    match usage.max_percent() {
        None => Check::new(NAME, Status::Ok, "no usage reported"),
        Some(percent) if percent >= 90 => {
            Check::new(NAME, Status::Fail, format!("{percent} % of the budget used"))
                .fix("slow down: Instagram throttles at 100 % for up to an hour")
        }
        Some(percent) if percent >= 75 => {
            Check::new(NAME, Status::Warn, format!("{percent} % of the budget used"))
        }
        Some(percent) => Check::new(NAME, Status::Ok, format!("{percent} % of the budget used")),
    }
}

/// A callback URL: https (unless on a mock) and answering a POST.
async fn callback(instagram: &Instagram, name: &'static str, url: &str, mock: bool) -> Check {
    let parsed = url.parse::<http::Uri>().ok();
    let scheme = parsed.as_ref().and_then(|u| u.scheme_str().map(str::to_owned));
    if parsed.as_ref().and_then(http::Uri::host).is_none() {
        return Check::new(name, Status::Fail, format!("`{url}` is not an absolute URL"));
    }
    if scheme.as_deref() != Some("https") && !mock {
        return Check::new(name, Status::Fail, "Meta calls https URLs only").fix("serve it over https");
    }
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from_static(b"signed_request=igdisplay-doctor"));
    let Ok(request) = request else {
        return Check::new(name, Status::Fail, format!("`{url}` is not a valid URL"));
    };
    match instagram.backend().send(request.into()).await {
        Ok(response) => Check::new(
            name,
            Status::Ok,
            format!(
                "reachable (it answered {} to an unsigned request)",
                response.status().as_u16()
            ),
        ),
        Err(e) => Check::new(
            name,
            Status::Fail,
            format!("unreachable: {}", crate::fail::chain(&e)),
        )
        .fix("start the app that serves it, or correct the URL"),
    }
}
