//! Many accounts in a database: `keeper`, `accounts`, `events`, `store generate-key`,
//! `store rotate-key`.

use crate::cli::{EventsArgs, EventsCommand, KeeperArgs};
use crate::fail::{Failure, chain};
use crate::settings::Settings;
use igdisplay::http::SharedClock;
use igdisplay::model::UserId;
use igdisplay::store::{
    AppQuota, Error, EventState, Keeper, KeeperSettings, KeyRing, SqlStore, Tally, WebhookSender,
};
use std::time::{Duration, Instant};

/// Opens the store at `url` (`sqlite:PATH`, `sqlite://PATH`, `postgres://…`); with a
/// `pinned` clock (a mock's), its statements take their time from it.
pub(crate) async fn open(
    url: &str,
    keys: &KeyRing,
    pinned: Option<SharedClock>,
) -> Result<SqlStore, Failure> {
    let store = SqlStore::connect(url, keys.clone())
        .await
        .map_err(|e| store_failure(&e, url))?;
    Ok(match pinned {
        Some(clock) => store.with_pinned_time(clock),
        None => store,
    })
}

/// A store error as a failure, the URL's password masked wherever the message repeats it,
/// with a hint naming what failed: the connection, the credentials, a migration, a statement.
pub(crate) fn store_failure(error: &Error, url: &str) -> Failure {
    let mut message = chain(error);
    for password in passwords_of(url) {
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
        Error::Connect(_) => failure.hint(
            "the database did not answer: check that it is running and that the --store URL's host, port              (or file) are right",
        ),
        Error::Authentication(_) => {
            failure.hint("the database refused the login: check the user and password of the --store URL")
        }
        Error::Migration { .. } => failure.hint(
            "the schema could not be migrated: the database user needs the right to create tables              (the migration is applied again at the next start)",
        ),
        Error::SchemaTooNew { .. } => failure.hint("a newer igdisplay wrote this database: upgrade this one"),
        Error::Database { .. } => {
            failure.hint("a statement failed: the message says which; the database's own log says why")
        }
        Error::Permissions { .. } => failure.hint("the store's file must be owned by the user running igdisplay"),
        _ => failure,
    }
}

/// The passwords a URL holds: of `scheme://user:password@host/…`, and of `?password=…`
/// (percent-encoded or not), so a message repeating either is masked.
fn passwords_of(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    if let Some(rest) = url.split_once("://").map(|(_, rest)| rest)
        && let Some(userinfo) = rest
            .split(['/', '?', '#'])
            .next()
            .and_then(|a| a.rsplit_once('@'))
        && let Some((_, password)) = userinfo.0.split_once(':')
        && !password.is_empty()
    {
        found.push(password);
    }
    if let Some(query) = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
    {
        for pair in query.split('&') {
            if let Some(("password" | "sslpassword", value)) = pair.split_once('=')
                && !value.is_empty()
            {
                found.push(value);
            }
        }
    }
    found
}

/// `igdisplay keeper`: built by the facade (`Instagram::fleet`) on this invocation's one
/// client, so the app's budget is one; needs only the store and its keys.
pub(crate) async fn keeper(settings: &Settings, args: &KeeperArgs) -> Result<(), Failure> {
    let store = settings.sql_store().await?;
    let instagram = settings.instagram_for_store(store.clone()).await?;
    let mut keeper_settings = KeeperSettings::default()
        .concurrency(usize::try_from(args.concurrency).unwrap_or(16))
        .batch(args.batch)
        .lease(Duration::from_secs(args.lease))
        .idle(Duration::from_secs(args.idle));
    if let Some(quota) = &args.quota {
        keeper_settings = keeper_settings.quota(parse_quota(quota)?);
    }
    let mut builder = instagram.fleet(store.clone()).settings(keeper_settings);
    if let Some(owner) = &args.owner {
        builder = builder.owner(owner.clone());
    }
    if let Some(url) = &args.webhook {
        let retry_max = Duration::from_secs(args.webhook_retry_max);
        let sender = webhook(url, instagram.backend().clone())?.with_retry(
            igdisplay::http::RetryPolicy::default()
                .base_delay(Duration::from_secs(10).min(retry_max))
                .max_delay(retry_max),
        );
        builder = builder.webhook(sender);
    }
    let keeper = builder.build();
    let metrics = match args.metrics_addr {
        Some(addr) => Some(crate::metrics::serve(addr, store.clone()).await?),
        None => None,
    };
    let shutdown = shutdown_signal();
    eprintln!("keeper {}: started", keeper.owner());
    if let Some(metrics) = &metrics {
        eprintln!(
            "keeper {}: metrics at http://{}/metrics",
            keeper.owner(),
            metrics.addr
        );
    }
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
    result.map_err(|e| store_failure(&e, settings_store_url(settings)))?;
    eprintln!("{line} (stopped)");
    if settings.json {
        crate::out::json(&totals);
    }
    Ok(())
}

/// `600/h`, `10/min`, `2/s`, `1000/d`: the app's quota of calls.
pub(crate) fn parse_quota(text: &str) -> Result<AppQuota, Failure> {
    let invalid = || {
        Failure::usage(
            format!("`{text}` is not a quota"),
            "write it as COUNT/PERIOD, e.g. --quota 600/h (periods: s, min, h, d)",
        )
    };
    let (count, period) = text.split_once('/').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    let per = match period.trim() {
        "s" => Duration::from_secs(1),
        "min" | "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86_400),
        _ => return Err(invalid()),
    };
    if count == 0 {
        return Err(invalid());
    }
    Ok(AppQuota::new(count, per))
}

/// The webhook sender to `url`, its secrets from IGDISPLAY_WEBHOOK_SECRETS.
pub(crate) fn webhook(url: &str, backend: igdisplay::http::SharedBackend) -> Result<WebhookSender, Failure> {
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

fn settings_store_url(settings: &Settings) -> &str {
    settings.store_url().unwrap_or_default()
}

/// `keeper NAME: 1234 refreshed (56.7/s), 2 failed, 1 revoked, 0 expired, 0 lost races, …`.
fn progress_line(keeper: &Keeper, totals: &Tally, elapsed: Duration) -> String {
    let rate = totals.refreshed as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "keeper {}: {} refreshed ({rate:.1}/s), {} failed, {} revoked, {} expired, {} lost races, {} leases lost, \
         {} taken over, {} re-sealed, {} events delivered, {} dead",
        keeper.owner(),
        totals.refreshed,
        totals.failed,
        totals.revoked,
        totals.expired,
        totals.lost_races,
        totals.leases_lost,
        totals.takeovers,
        totals.resealed,
        totals.delivered,
        totals.dead
    )
}

/// A future completing on Ctrl-C, or on SIGTERM where there is one (a service manager's
/// stop). The handlers are installed before this returns, so a signal sent as soon as the
/// keeper says it started is caught.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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

/// `igdisplay events`: the outbox, a page at a time; `igdisplay events resend ID`.
pub(crate) async fn events(settings: &Settings, args: &EventsArgs) -> Result<(), Failure> {
    const PAGE: u32 = 1000;
    let store = settings.sql_store().await?;
    let url = settings_store_url(settings);
    if let Some(EventsCommand::Resend { id }) = &args.command {
        let found = store
            .resend_event(*id)
            .await
            .map_err(|e| store_failure(&e, url))?;
        if !found {
            return Err(Failure::usage(
                format!("there is no event {id} in the outbox"),
                "list them with `igdisplay events --state dead`",
            ));
        }
        println!("event {id} is pending again; the next delivery pass of any keeper with a webhook sends it");
        return Ok(());
    }
    let state = match &args.state {
        Some(name) => Some(EventState::parse(name).ok_or_else(|| {
            Failure::usage(
                format!("unknown state `{name}`"),
                "use --state pending, delivered or dead",
            )
        })?),
        None => None,
    };
    let header: &[&str] = &["ID", "TYPE", "USER ID", "AT", "STATE", "ATTEMPTS", "LAST ERROR"];
    let mut after = 0;
    let mut first = true;
    loop {
        let page = store
            .list_events(state, after, PAGE)
            .await
            .map_err(|e| store_failure(&e, url))?;
        if settings.json {
            for event in &page {
                let line = serde_json::to_string(event).map_err(|e| Failure::runtime(e.to_string()))?;
                println!("{}{line}", if first { "[" } else { "," });
                first = false;
            }
        } else {
            let rows: Vec<Vec<String>> = page
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        e.event.kind().to_owned(),
                        e.event.user_id().to_string(),
                        e.created_at.to_string(),
                        e.state.to_string(),
                        e.attempts.to_string(),
                        e.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            if first && !rows.is_empty() {
                crate::out::table(header, &rows);
                first = false;
            } else {
                crate::out::rows(header, &rows);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.id,
            _ => break,
        }
    }
    if settings.json {
        println!("{}", if first { "[]" } else { "]" });
    } else if first {
        eprintln!("no events in the outbox");
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
    use super::{parse_quota, passwords_of};
    use std::time::Duration;

    #[test]
    fn the_passwords_of_a_url_are_found_to_be_masked() {
        assert_eq!(passwords_of("postgres://app:s3cr%40t@db:5432/igd"), ["s3cr%40t"]);
        assert!(passwords_of("postgres://app@db/igd").is_empty());
        assert!(passwords_of("sqlite:/tmp/a.db").is_empty());
        assert_eq!(
            passwords_of("postgres://db/igd?user=app&password=x%26y"),
            ["x%26y"]
        );
        assert_eq!(
            passwords_of("postgres://app:one@db/igd?sslpassword=two#frag"),
            ["one", "two"]
        );
    }

    #[test]
    fn a_quota_reads_count_and_period() {
        let quota = parse_quota("600/h").unwrap();
        assert_eq!((quota.calls, quota.per), (600, Duration::from_secs(3600)));
        assert!(parse_quota("0/h").is_err());
        assert!(parse_quota("600").is_err());
        assert!(parse_quota("600/fortnight").is_err());
    }
}
