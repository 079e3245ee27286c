//! The command line of the standalone mock, shared with `igdisplay mock serve`.
//!
//! The first line the binary prints is always `listening on http://HOST:PORT`, so a script
//! that starts it with `--addr 127.0.0.1:0` can read the port from it. The lines after it
//! give the app's id, secret and redirect URIs and each seeded user with their ids, account
//! type and whether they are a tester: what a person needs to configure a client by hand. The
//! last line points at `/_mock/state`, where the same facts are JSON.
//!
//! ```text
//! listening on http://127.0.0.1:8787
//! platform:      instagram-login
//! app id:        684477648739411
//! app secret:    mock-app-secret-...
//! redirect URIs: https://app.example/auth/ http://127.0.0.1:8788/callback ...
//! users:
//!   @jayposiris     id 1784140...  MEDIA_CREATOR, tester  40 media
//! control API:   http://127.0.0.1:8787/_mock/state
//! ```

use crate::{MockClock, MockError, MockPlatform, MockServer, Seed, TokenShape};
use std::net::SocketAddr;

/// Options of `igdisplay-mock` (and `igdisplay mock serve`): where to listen, what to play,
/// what to start with and how time passes. Flatten it into a clap parser of your own to
/// offer the same options.
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     serve: igdisplay_mock::cli::ServeArgs,
/// }
///
/// let args = Args::parse_from(["mock", "--platform", "basic-display", "--calls-per-hour", "0"]);
/// assert_eq!(args.serve.platform, igdisplay_mock::MockPlatform::BasicDisplay);
/// assert_eq!(args.serve.options.addr.port(), 8787);
/// ```
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Platform to play: instagram-login or basic-display.
    #[arg(long, default_value = "instagram-login", value_parser = parse_platform)]
    pub platform: MockPlatform,
    /// Everything but the platform.
    #[command(flatten)]
    pub options: ServeOptions,
}

/// The options of [`ServeArgs`] but the platform, for a command line with a `--platform` of
/// its own to flatten (as `igdisplay mock serve` does: the platform is global there), so the
/// two never drift apart.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeOptions {
    /// Address to listen on; port 0 picks a free one (the first line printed names it). Keep
    /// it on loopback: the mock has no authentication.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// Seed data: `demo`, or a JSON seed file.
    #[arg(long, default_value = "demo")]
    pub seed: String,
    /// Clock: `system` (the default for a person using it), `frozen` or
    /// `frozen:<RFC 3339 UTC>` (for scripts that move it through `/_mock/clock/advance`).
    #[arg(long, default_value = "system", value_parser = parse_clock)]
    pub clock: MockClock,
    /// Graph calls per user per rolling hour (0: unlimited).
    #[arg(long, default_value_t = 200)]
    pub calls_per_hour: u32,
    /// Instagram Login code-exchange shape: flat (observed) or wrapped (documented `data[]`).
    #[arg(long, default_value = "flat", value_parser = parse_shape)]
    pub token_shape: TokenShape,
    /// Add a user `bulk` with this many generated media (every 10th an album), for load and
    /// paging tests; mint a token for it with `POST /_mock/tokens {"username": "bulk"}`.
    #[arg(long)]
    pub generate: Option<usize>,
    /// Serve HTTPS with a test root made at start; its PEM is written to a file whose path is
    /// printed (in the system's temporary folder, named after the port), and served at
    /// `/_mock/ca.pem`. Point the client's CA bundle at that file.
    #[arg(long)]
    pub https: bool,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// No request log (by default each request is one line on stderr, secrets masked).
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `--platform`: `instagram-login` or `basic-display`.
///
/// # Errors
///
/// A message naming the accepted values.
pub fn parse_platform(text: &str) -> Result<MockPlatform, String> {
    MockPlatform::parse(text).ok_or_else(|| "expected instagram-login or basic-display".to_owned())
}

/// Parses `--clock`: `system`, `frozen` or `frozen:<RFC 3339 UTC>`.
///
/// # Errors
///
/// A message naming the accepted forms.
pub fn parse_clock(text: &str) -> Result<MockClock, String> {
    MockClock::parse(text).ok_or_else(|| "expected system, frozen or frozen:2026-01-15T12:00:00Z".to_owned())
}

/// Parses `--token-shape`: `flat` (what the API sends) or `wrapped` (what the docs show).
///
/// # Errors
///
/// A message naming the accepted values.
pub fn parse_shape(text: &str) -> Result<TokenShape, String> {
    match text {
        "flat" => Ok(TokenShape::Flat),
        "wrapped" => Ok(TokenShape::Wrapped),
        _ => Err("expected flat or wrapped".to_owned()),
    }
}

/// Starts a mock from `args` and writes, first, `listening on http://HOST:PORT`, then the
/// app's credentials and the seeded users, to `out`.
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     serve: igdisplay_mock::cli::ServeArgs,
/// }
///
/// let args = Args::parse_from(["igdisplay-mock", "--addr", "127.0.0.1:0", "--clock", "frozen"]);
/// let mut out = Vec::new();
/// let mock = igdisplay_mock::cli::start(&args.serve, &mut out)?;
/// let banner = String::from_utf8_lossy(&out);
/// assert!(banner.starts_with(&format!("listening on {}", mock.base_url())));
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
///
/// # Errors
///
/// [`MockError`] when the seed file is unreadable or the address cannot be bound.
pub fn start(args: &ServeArgs, out: &mut impl std::io::Write) -> Result<MockServer, MockError> {
    let (platform, args) = (args.platform, &args.options);
    let mut seed = match args.seed.as_str() {
        "demo" => Seed::demo(),
        path => {
            let text = std::fs::read_to_string(path).map_err(|source| MockError::SeedRead {
                path: path.to_owned(),
                source,
            })?;
            Seed::from_json(&text).map_err(|source| MockError::SeedParse {
                path: path.to_owned(),
                source,
            })?
        }
    };
    if let Some(count) = args.generate {
        seed = seed.with_generated_user("bulk", count, 10);
    }
    let mut builder = MockServer::builder();
    if args.https {
        builder = builder.https();
    }
    if !args.quiet {
        builder = builder.on_request(|entry| {
            let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{entry}\n"));
        });
    }
    let server = builder
        .platform(platform)
        .seed(seed)
        .clock(args.clock)
        .addr(args.addr)
        .calls_per_hour((args.calls_per_hour > 0).then_some(args.calls_per_hour))
        .token_shape(args.token_shape)
        .workers(args.workers)
        .start()?;
    let app = server.app();
    let mut lines = vec![
        format!("listening on {}", server.base_url()),
        format!("platform:      {}", platform.as_str()),
        format!("app id:        {}", app.id),
        format!("app secret:    {}", app.secret),
        format!("redirect URIs: {}", app.redirect_uris.join(" ")),
        "users:".to_owned(),
    ];
    for user in server.users() {
        lines.push(format!(
            "  @{:<14} id {}  {}{}  {} media",
            user.username,
            user.id,
            user.account_type,
            if user.tester { ", tester" } else { ", NOT a tester" },
            user.media_count
        ));
    }
    if let Some(pem) = server.root_certificate_pem() {
        let path = std::env::temp_dir().join(format!("igdisplay-mock-{}-root.pem", server.addr().port()));
        std::fs::write(&path, pem).map_err(|source| MockError::WriteRoot {
            path: path.display().to_string(),
            source,
        })?;
        lines.push(format!(
            "root certificate: {} (trust it in the client)",
            path.display()
        ));
    }
    lines.push(format!("control API:   {}/_mock/state", server.base_url()));
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    Ok(server)
}
