//! `web-gallery`: a site with "Log in with Instagram" and a gallery of the user's media.
//!
//! `cargo run -p web-gallery -- --mock` runs it against an embedded igdisplay mock; with
//! `IGDISPLAY_APP_ID`, `IGDISPLAY_APP_SECRET`, `IGDISPLAY_REDIRECT_URI` and `PUBLIC_URL` set it runs
//! against Instagram (Instagram Login by default).
//!
//! With `--database-url` (sqlite:PATH or postgres://…, the keys in `IGDISPLAY_STORE_KEYS`) the
//! tokens and sessions live in that database, and a keeper keeps every account's token alive:
//! run as many instances as needed on one PostgreSQL. `--mock-url` points an instance at
//! another one's mock.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use igdisplay::Instagram;
use igdisplay::http::{SharedClock, ShiftedClock, SystemClock};
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use igdisplay::store::{KeyRing, SqlStore};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use web_gallery::Fleet;

/// Show your Instagram on your site.
#[derive(Debug, Parser)]
#[command(name = "web-gallery")]
struct Args {
    /// Run against an embedded mock Instagram instead of the real one.
    #[arg(long)]
    mock: bool,
    /// Where to listen (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8788")]
    addr: SocketAddr,
    /// Run against a mock already running at this URL (another instance's, or
    /// `igdisplay mock serve`), taking the app's settings from it.
    #[arg(long, value_name = "URL", conflicts_with = "mock")]
    mock_url: Option<String>,
    /// instagram-login or basic-display.
    #[arg(long, env = "IGDISPLAY_PLATFORM", default_value = "instagram-login")]
    platform: String,
    /// Owner mode: the site's own account, shown to every visitor from a mirror in
    /// --mirror-dir (images from this site, never from Instagram's CDN). The account is the
    /// one --owner-id names or, without it, the one connected through the one-time setup link
    /// printed at start; no other account can log in.
    #[arg(long)]
    owner: bool,
    /// Owner mode: the app-scoped user id of the account the site shows.
    #[arg(long, env = "IGDISPLAY_OWNER_ID", value_name = "USER_ID", requires = "owner")]
    owner_id: Option<String>,
    /// Where the site keeps its records without a database (the owner binding, the data
    /// deletions answered), a private file.
    #[arg(long, value_name = "FILE", default_value = "web-gallery-records.json")]
    records: std::path::PathBuf,
    /// Where owner mode mirrors the media.
    #[arg(long, value_name = "DIR", default_value = "web-gallery-mirror")]
    mirror_dir: std::path::PathBuf,
    /// Keep tokens and sessions in this database (sqlite:PATH or postgres://USER@HOST/DB),
    /// sealed with the keys of IGDISPLAY_STORE_KEYS, and keep every account's token alive.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Warnings (a failed sync, a keeper's failure) on stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web-gallery: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::parse(&args.platform).ok_or("--platform is instagram-login or basic-display")?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let public = format!("http://{}", listener.local_addr()?);
    let redirect = format!("{public}/auth/callback");
    let (builder, media_origin, clock, embedded) = client(&args, platform, &public, &redirect).await?;
    let simulated = args.mock || args.mock_url.is_some();
    let public = std::env::var("PUBLIC_URL").unwrap_or(public);
    let (app, keeper) = match &args.database_url {
        Some(url) => {
            let keys = std::env::var("IGDISPLAY_STORE_KEYS").map_err(
                |_| "--database-url needs the keys in IGDISPLAY_STORE_KEYS (`igdisplay store generate-key`)",
            )?;
            let keys = KeyRing::parse(&keys)?;
            let mut store = SqlStore::connect(url, keys).await?;
            if simulated {
                // Against a mock, the mock's time (which a test may move) is the database's.
                store = store.with_pinned_time(clock.clone());
            }
            let instagram = builder.store(Arc::new(store.clone())).build()?;
            // The one way to build a fleet: on this client's token requests, pacer, retry
            // budget and backend. Its waits are real ones beside the visitors' requests (the
            // client's clock, following a mock, would move the mock instead of waiting).
            let keeper = instagram.fleet(store.clone()).clock(clock).build();
            let fleet = Fleet { store };
            let app =
                web_gallery::App::with_fleet(instagram, public.clone(), media_origin.clone(), fleet).await?;
            (app, Some(keeper))
        }
        None => (
            web_gallery::App::new(builder.build()?, public.clone(), media_origin.clone()),
            None,
        ),
    };
    let app = app.with_records(web_gallery::Records::file(args.records.clone())?);
    let (app, setup_link) = owner_mode(app, &args, &media_origin).await?;
    let app = Arc::new(app);
    if let Some(link) = setup_link {
        println!(
            "owner setup link (valid for {} minutes, once): {link}",
            web_gallery::SETUP_LINK_TTL.as_secs() / 60
        );
    }
    println!("web-gallery listening on {public}");
    if let Some(mock) = &embedded {
        println!("mock Instagram at {}", mock.base_url());
    }
    if let Some(keeper) = keeper {
        let mut events = keeper.store().events().subscribe().await?;
        tokio::spawn(async move {
            while let Ok(outbox) = events.next().await {
                eprintln!("account {}: {}", outbox.event.user_id(), outbox.event.kind());
            }
        });
        tokio::spawn(async move {
            if let Err(error) = keeper.run(std::future::pending()).await {
                eprintln!("web-gallery: the keeper stopped: {error}");
            }
        });
    }
    if app.showcase().is_some() {
        web_gallery::spawn_sync_loop(app.clone());
    }
    // The mirror's serve loop: header and idle timeouts, a connection limit, accept errors
    // backed off; the files themselves through its file server (the /media route).
    let service = hyper_util::service::TowerToHyperService::new(web_gallery::router(app));
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    igdisplay_mirror::serve(listener, igdisplay_mirror::ServeLimits::default(), service, stop).await;
    drop(embedded);
    Ok(())
}

/// The app's client settings, the origin its media come from and the clock its keeper and
/// store run on: an embedded mock (kept alive by the returned server), a mock running
/// elsewhere, or Instagram with the app's settings from the environment.
async fn client(
    args: &Args,
    platform: Platform,
    public: &str,
    redirect: &str,
) -> Result<
    (
        igdisplay::InstagramBuilder,
        String,
        SharedClock,
        Option<MockServer>,
    ),
    Box<dyn std::error::Error>,
> {
    let mut embedded = None;
    let (builder, media_origin, clock): (_, String, SharedClock) = if args.mock {
        let mock = MockServer::builder()
            .platform(igdisplay::mock_platform(platform))
            .calls_per_hour(None)
            .start()?;
        mock.add_redirect_uri(redirect);
        mock.set_callbacks(
            Some(&format!("{public}/deauthorize")),
            Some(&format!("{public}/data-deletion")),
        );
        let app = mock.app();
        let clock = Arc::new(ShiftedClock::at_unix(mock.now()));
        let builder = Instagram::builder(platform, app.id, AppSecret::new(app.secret), redirect)
            .mock(mock.base_url())
            .clock(igdisplay::follow_mock_clock(&mock));
        let origin = mock.base_url().to_owned();
        embedded = Some(mock);
        (builder, origin, clock)
    } else if let Some(url) = &args.mock_url {
        let (builder, clock) = remote_mock(platform, url, redirect).await?;
        (builder, url.clone(), clock)
    } else {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name} (or pass --mock)"));
        let redirect = var("IGDISPLAY_REDIRECT_URI")?;
        let builder = Instagram::builder(
            platform,
            var("IGDISPLAY_APP_ID")?,
            AppSecret::new(var("IGDISPLAY_APP_SECRET")?),
            redirect,
        );
        (builder, "https:".to_owned(), Arc::new(SystemClock))
    };
    Ok((builder, media_origin, clock, embedded))
}

/// Owner mode, when asked: the site shows one account from its mirror, the configured one or
/// the one bound before; without either, a one-time setup link (returned) binds the first
/// login through it.
async fn owner_mode(
    app: web_gallery::App,
    args: &Args,
    media_origin: &str,
) -> Result<(web_gallery::App, Option<String>), Box<dyn std::error::Error>> {
    let mut setup_link = None;
    let app = if args.owner {
        let showcase = web_gallery::Showcase::new(
            args.mirror_dir.clone(),
            web_gallery::downloader(media_origin)?,
            app.instagram().clock().clone(),
        )?;
        showcase.remove_leftovers().await?;
        // The account is the configured one, else the one bound before (by the setup link),
        // never one found in the token store.
        if let Some(owner) = &args.owner_id {
            app.records()
                .configure(&igdisplay::model::UserId::new(owner.clone()))
                .await?;
        }
        match app.records().owner().await? {
            Some(owner) => showcase.set_owner(owner),
            None => setup_link = Some(app.setup_link().await?),
        }
        app.with_showcase(showcase)
    } else {
        app
    };
    Ok((app, setup_link))
}

/// A client of the mock running at `url`: the app's id and secret from its state, this
/// instance's redirect URI registered with it, and a clock at the mock's time.
async fn remote_mock(
    platform: Platform,
    url: &str,
    redirect: &str,
) -> Result<(igdisplay::InstagramBuilder, SharedClock), Box<dyn std::error::Error>> {
    // Through igdisplay's own transport: the example has no HTTP client of its own.
    let backend = igdisplay::http::default_backend(Default::default())?;
    let control = |method: igdisplay::http::http::Method, path: &str, body: Option<serde_json::Value>| {
        let body = body.map(|json| json.to_string()).unwrap_or_default();
        igdisplay::http::http::Request::builder()
            .method(method)
            .uri(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(igdisplay::http::bytes::Bytes::from(body))
            .map(igdisplay::http::HttpRequest::from)
    };
    let answer = backend
        .send(control(igdisplay::http::http::Method::GET, "/_mock/state", None)?)
        .await?;
    if !answer.status().is_success() {
        return Err(format!("{url} is not an igdisplay mock (status {})", answer.status()).into());
    }
    let state: serde_json::Value = serde_json::from_slice(answer.body())?;
    let registered = backend
        .send(control(
            igdisplay::http::http::Method::POST,
            "/_mock/redirect_uris",
            Some(serde_json::json!({"uri": redirect})),
        )?)
        .await?;
    if !registered.status().is_success() {
        return Err(format!(
            "the mock refused the redirect URI (status {})",
            registered.status()
        )
        .into());
    }
    let app = &state["app"];
    let (Some(id), Some(secret), Some(now)) = (
        app["id"].as_str(),
        app["secret"].as_str(),
        state["clock"]["unix"].as_i64(),
    ) else {
        return Err(format!("{url} is not an igdisplay mock").into());
    };
    let clock: SharedClock = Arc::new(ShiftedClock::at_unix(now));
    let builder = Instagram::builder(platform, id, AppSecret::new(secret), redirect)
        .mock(url)
        .clock(clock.clone());
    Ok((builder, clock))
}
