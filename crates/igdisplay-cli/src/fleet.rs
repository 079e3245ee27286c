//! Many accounts in a database: `keeper`, `accounts`, `store generate-key`, `store rotate-key`.

use crate::cli::KeeperArgs;
use crate::fail::{Failure, chain};
use crate::settings::Settings;
use igdisplay::auth::AppConfig;
use igdisplay::http::SharedClock;
use igdisplay::model::UserId;
use igdisplay::store::{Error, Keeper, KeeperSettings, KeyRing, SqlStore, Tally, WebhookSender};
use std::time::{Duration, Instant};

/// Opens the store at `url` (`sqlite:PATH`, `sqlite://PATH`, `postgres://…`) on `clock`.
pub(crate) async fn open(url: &str, keys: &KeyRing, clock: SharedClock) -> Result<SqlStore, Failure> {
    let store = SqlStore::connect(url, keys.clone())
        .await
        .map_err(|e| store_failure(&e, url))?;
    Ok(store.with_clock(clock))
}

/// A store error as a failure, the URL's password masked wherever the message repeats it.
fn store_failure(error: &Error, url: &str) -> Failure {
    let mut message = chain(error);
    if let Some(password) = password_of(url) {
        message = message.replace(password, "***");
    }
    let failure = Failure::runtime(message);
    match error {
        Error::UnsupportedUrl { .. } => {
            failure.hint("use --store sqlite:PATH or --store postgres://USER@HOST/DB")
        }
        Error::Key(_) => failure.hint(
            "IGDISPLAY_STORE_KEYS must hold every key the tokens were sealed with (the current one first)",
        ),
        Error::Database(_) => failure.hint("check that the database is running and the --store URL is right"),
        _ => failure,
    }
}

/// The password of a `scheme://user:password@host/…` URL, if it has one.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split(['/', '?', '#']).next()?.rsplit_once('@')?.0;
    userinfo
        .split_once(':')
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty())
}

/// `igdisplay keeper`.
pub(crate) async fn keeper(settings: &Settings, args: &KeeperArgs) -> Result<(), Failure> {
    let store = settings.sql_store().await?;
    let app = AppConfig::read_only(settings.platform)
        .with_endpoints(settings.endpoints().clone())
        .map_err(|e| Failure::usage(chain(&e), "check the base URLs"))?;
    let backend =
        igdisplay::http::default_backend(Default::default()).map_err(|e| Failure::runtime(chain(&e)))?;
    let mut builder = Keeper::builder(store, app, backend).settings(
        KeeperSettings::default()
            .concurrency(usize::try_from(args.concurrency).unwrap_or(16))
            .batch(args.batch)
            .lease(Duration::from_secs(args.lease))
            .idle(Duration::from_secs(args.idle)),
    );
    if let Some(owner) = &args.owner {
        builder = builder.owner(owner.clone());
    }
    let keeper = builder.build();
    let shutdown = shutdown_signal();
    let webhook = match &args.webhook {
        Some(url) => Some(webhook(url, backend_for_webhook()?)?.spawn(keeper.events())),
        None => None,
    };
    eprintln!("keeper {}: started", keeper.owner());
    let progress = (args.progress_every > 0).then(|| {
        let keeper = keeper.clone();
        let every = Duration::from_secs(args.progress_every);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                eprintln!("{}", progress_line(&keeper, &keeper.totals(), started.elapsed()));
            }
        })
    });
    let started = Instant::now();
    let result = if args.until_idle {
        let work = keeper.run_until_idle();
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => done,
            () = shutdown => {
                keeper.stop();
                work.await
            }
        }
    } else {
        keeper.run(shutdown).await
    };
    if let Some(progress) = progress {
        progress.abort();
    }
    let totals = keeper.totals();
    let line = progress_line(&keeper, &totals, started.elapsed());
    // The last clone of the keeper (and of its events' sender) goes: the webhook sender
    // delivers what is left, then stops (given at most half a minute).
    drop(keeper);
    if let Some(webhook) = webhook {
        let _ = tokio::time::timeout(Duration::from_secs(30), webhook).await;
    }
    result.map_err(|e| store_failure(&e, settings_store_url(settings)))?;
    eprintln!("{line} (stopped)");
    if settings.json {
        crate::out::json(&totals);
    }
    Ok(())
}

/// The webhook sender to `url`, its secrets from IGDISPLAY_WEBHOOK_SECRETS.
fn webhook(url: &str, backend: igdisplay::http::SharedBackend) -> Result<WebhookSender, Failure> {
    let hint = "set IGDISPLAY_WEBHOOK_SECRETS to the secret(s) the endpoint checks, comma-separated";
    let secrets = std::env::var("IGDISPLAY_WEBHOOK_SECRETS")
        .map_err(|_| Failure::usage("--webhook needs its signing secrets", hint))?;
    let secrets: Vec<&str> = secrets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    WebhookSender::new(url, secrets, backend).map_err(|e| Failure::usage(e.to_string(), hint))
}

fn backend_for_webhook() -> Result<igdisplay::http::SharedBackend, Failure> {
    igdisplay::http::default_backend(Default::default()).map_err(|e| Failure::runtime(chain(&e)))
}

fn settings_store_url(settings: &Settings) -> &str {
    settings.store_url().unwrap_or_default()
}

/// `keeper NAME: 1234 refreshed (56.7/s), 2 failed, 1 revoked, 0 expired, 0 lost races`.
fn progress_line(keeper: &Keeper, totals: &Tally, elapsed: Duration) -> String {
    let rate = totals.refreshed as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "keeper {}: {} refreshed ({rate:.1}/s), {} failed, {} revoked, {} expired, {} lost races, {} re-sealed",
        keeper.owner(),
        totals.refreshed,
        totals.failed,
        totals.revoked,
        totals.expired,
        totals.lost_races,
        totals.resealed
    )
}

/// A future completing on Ctrl-C, or on SIGTERM where there is one (a service manager's
/// stop). The handlers are installed before this returns, so a signal sent as soon as the
/// keeper says it started is caught.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    async move {
        #[cfg(unix)]
        match handlers {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        eprintln!("stopping: finishing the refreshes in flight…");
    }
}

/// `igdisplay accounts`: every account, a page at a time (constant memory for any fleet).
pub(crate) async fn accounts(settings: &Settings) -> Result<(), Failure> {
    const PAGE: u32 = 1000;
    const HEADER: &[&str] = &[
        "USER ID",
        "STATE",
        "EXPIRES",
        "NEXT REFRESH",
        "FAILURES",
        "LAST ERROR",
    ];
    let store = settings.sql_store().await?;
    let url = settings_store_url(settings);
    let mut after: Option<UserId> = None;
    let mut first = true;
    loop {
        let page = store
            .list(after.as_ref(), PAGE)
            .await
            .map_err(|e| store_failure(&e, url))?;
        if settings.json {
            for account in &page {
                let line = serde_json::to_string(account).map_err(|e| Failure::runtime(e.to_string()))?;
                println!("{}{line}", if first { "[" } else { "," });
                first = false;
            }
        } else {
            let rows: Vec<Vec<String>> = page
                .iter()
                .map(|a| {
                    vec![
                        a.user_id.to_string(),
                        a.state.to_string(),
                        a.expires_at.to_string(),
                        a.next_refresh_at
                            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                        a.failures.to_string(),
                        a.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            if first && !rows.is_empty() {
                crate::out::table(HEADER, &rows);
                first = false;
            } else {
                crate::out::rows(HEADER, &rows);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.user_id.clone()),
            _ => break,
        }
    }
    if settings.json {
        println!("{}", if first { "[]" } else { "]" });
    } else if first {
        eprintln!("no accounts in the store yet");
    }
    Ok(())
}

/// `igdisplay store generate-key`.
pub(crate) fn generate_key(id: Option<&str>) -> Result<(), Failure> {
    let today;
    let id = match id {
        Some(id) => id,
        None => {
            today = igdisplay::model::Timestamp::from_system_time(std::time::SystemTime::now())
                .to_rfc3339()
                .chars()
                .take(10)
                .collect::<String>();
            &today
        }
    };
    let spec = KeyRing::generate_spec(id)
        .map_err(|e| Failure::usage(e.to_string(), "a key id is 1 to 64 of A-Z a-z 0-9 _ -"))?;
    println!("{spec}");
    eprintln!(
        "This is the key itself: keep it in your secret manager. Put it first in IGDISPLAY_STORE_KEYS \
         (comma-separated, the old keys after it), then run `igdisplay store rotate-key`."
    );
    Ok(())
}

/// `igdisplay store rotate-key`.
pub(crate) async fn rotate_key(settings: &Settings) -> Result<(), Failure> {
    let store = settings.sql_store().await?;
    let url = settings_store_url(settings);
    let mut resealed = 0u64;
    let mut idle_passes = 0;
    loop {
        let pass = store
            .rotate_keys(1000)
            .await
            .map_err(|e| store_failure(&e, url))?;
        resealed = resealed.saturating_add(pass.resealed);
        if pass.remaining == 0 {
            break;
        }
        // Rows re-sealed under an old key as fast as they are rotated: an instance still
        // runs with the old key list first.
        idle_passes = if pass.resealed == 0 { idle_passes + 1 } else { 0 };
        if idle_passes >= 3 {
            return Err(Failure::runtime(format!(
                "{} tokens are still sealed under older keys, and are written again under them",
                pass.remaining
            ))
            .hint("give every instance the new key list (new key first), then run this again"));
        }
    }
    let current = store.keys().current_id().to_owned();
    if settings.json {
        crate::out::json(&serde_json::json!({"resealed": resealed, "key_id": current, "remaining": 0}));
    } else {
        println!("{resealed} tokens sealed again under key {current}; none left under older keys.");
        println!("The older keys can now be removed from IGDISPLAY_STORE_KEYS.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::password_of;

    #[test]
    fn the_password_of_a_url_is_found_to_be_masked() {
        assert_eq!(
            password_of("postgres://app:s3cr%40t@db:5432/igd"),
            Some("s3cr%40t")
        );
        assert_eq!(password_of("postgres://app@db/igd"), None);
        assert_eq!(password_of("sqlite:/tmp/a.db"), None);
        assert_eq!(password_of("postgres://db/igd?password=x"), None);
    }
}
