//! The command line: these names are the interface users script against.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Instagram from the command line: log in, show the profile, list and export all media.
#[derive(Debug, Parser)]
#[command(name = "igdisplay", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command understands (flags, or the environment), listed apart from each
/// command's own under "Global options".
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// Which API: instagram-login (the live one) or basic-display (shut down by Meta on 2024-12-04).
    #[arg(
        long,
        global = true,
        env = "IGDISPLAY_PLATFORM",
        default_value = "instagram-login"
    )]
    pub(crate) platform: String,
    /// The Instagram App ID (App Dashboard > Instagram > API setup).
    #[arg(long, global = true, env = "IGDISPLAY_APP_ID")]
    pub(crate) app_id: Option<String>,
    /// A file holding the Instagram App Secret; otherwise it is read from IGDISPLAY_APP_SECRET.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) app_secret_file: Option<PathBuf>,
    /// The redirect URI, exactly as registered in the App Dashboard.
    #[arg(long, global = true, env = "IGDISPLAY_REDIRECT_URI")]
    pub(crate) redirect_uri: Option<String>,
    /// Point every base URL at a running igdisplay mock, e.g. http://127.0.0.1:8787.
    #[arg(
        long,
        global = true,
        env = "IGDISPLAY_MOCK",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) mock: Option<String>,
    /// The authorize window URL.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) authorize_url: Option<String>,
    /// The base of POST /oauth/access_token.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) api_base: Option<String>,
    /// The Graph base.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) graph_base: Option<String>,
    /// The token file (default: igdisplay/tokens.json in the OS config directory).
    #[arg(long, global = true, env = "IGDISPLAY_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Where tokens are kept: the token file, or the system keyring (Secret Service, Keychain,
    /// Credential Manager; the token file, with a warning, where there is none).
    #[arg(
        long,
        global = true,
        env = "IGDISPLAY_TOKEN_STORE",
        value_enum,
        default_value = "file"
    )]
    pub(crate) token_store: TokenStoreKind,
    /// Keep the tokens of many accounts in a database instead: sqlite:PATH (one file) or
    /// postgres://USER@HOST/DB (shared by many instances). The keys that seal the tokens come
    /// from IGDISPLAY_STORE_KEYS or --store-keys-file (`igdisplay store generate-key` makes one).
    #[arg(
        long,
        global = true,
        env = "IGDISPLAY_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) store: Option<String>,
    /// A file holding the store's key list (ID:BASE64, the current key first); otherwise it is
    /// read from IGDISPLAY_STORE_KEYS.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) store_keys_file: Option<PathBuf>,
    /// Which stored user to act as, when several have logged in.
    #[arg(long, global = true, value_name = "USER_ID")]
    pub(crate) user: Option<String>,
    /// Machine-readable JSON output (ids always as strings).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// A scope to ask for at login besides the platform's defaults (repeatable):
    /// instagram_business_manage_comments (comments, tags), instagram_business_manage_insights,
    /// ...
    #[arg(long = "scope", global = true, value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
}

/// Where tokens are kept (`--token-store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenStoreKind {
    /// The token file (`--token-file`), `0600` in a `0700` directory.
    File,
    /// The operating system's credential store.
    Keyring,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The whole flow on a built-in mock Instagram: no configuration, no network.
    Demo {
        /// Where to export the media.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The two halves of a login, for scripts and servers.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Log in: open the authorize window and take the redirect (a local listener for
    /// http://localhost and http://127.0.0.1 redirect URIs, otherwise a pasted URL).
    Login {
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Give up waiting for the redirect after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Inspect and manage the stored token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The profile of the logged-in user.
    Me,
    /// A post's comments with their replies (`comments MEDIA_ID`), or hide, unhide or delete
    /// one (`comments hide ID`). Needs --scope instagram_business_manage_comments at login.
    #[command(args_conflicts_with_subcommands = true)]
    Comments {
        /// What to do to a comment.
        #[command(subcommand)]
        action: Option<CommentAction>,
        /// The post whose comments to list.
        media_id: Option<String>,
    },
    /// The posts the account is tagged in. Needs the comments scope.
    Tags,
    /// A post's insights (`insights MEDIA_ID`) or the account's (`insights me`). A removed
    /// metric is asked as its replacement and one that does not apply is left out, each
    /// said on stderr. Needs --scope instagram_business_manage_insights at login.
    Insights {
        /// A media id, or `me`.
        target: String,
        /// A metric (repeatable; default views and reach).
        #[arg(long = "metric", value_name = "METRIC")]
        metrics: Vec<String>,
        /// For `me`: day, week, days_28 or lifetime.
        #[arg(long, default_value = "day")]
        period: String,
        /// For `me`: a breakdown (media_product_type, follow_type, ...).
        #[arg(long)]
        breakdown: Option<String>,
    },
    /// Meta's webhooks: subscribe the account (or, with --all, every account of the --store).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// List media (`media list`), show one item (`media get`), or an album's items.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Download every media item (album items and video thumbnails included) to DIR, with an
    /// index.json. A second run resumes.
    Export {
        /// The output directory.
        dir: PathBuf,
        /// Downloads at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Check a deauthorize or data-deletion `signed_request` with the app secret.
    #[command(subcommand, name = "signed-request")]
    SignedRequest(SignedCommand),
    /// Run the mock Instagram.
    #[command(subcommand)]
    Mock(MockCommand),
    /// Keep every account's token in the --store alive: refresh each on day 20 of 60, retry
    /// failures with backoff, mark revoked and expired ones, deliver their events to
    /// --webhook. Needs only the store and its keys. Run it on as many machines as you like;
    /// they share the work and one budget. Stops cleanly on Ctrl-C.
    Keeper(KeeperArgs),
    /// Every account in the --store: state, expiry, next refresh, failures.
    Accounts,
    /// The --store's outbox: every event (refreshed, expiring soon, revoked, expired,
    /// deauthorized, deletion requested) with its delivery state; `events resend ID`.
    Events(EventsArgs),
    /// The --store's keys.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Mirror every stored account's media into a folder (--out) or a bucket (--bucket): each
    /// image and video thumbnail once, with resized copies, each video's file (up to 200 MiB),
    /// and a feed per account (an index, feeds/USER_ID.json, naming pages of 100 posts).
    /// Incremental: a second run downloads only what is new; when Instagram fails, the last
    /// good feed stays. With --store, an account whose token Instagram refuses is marked
    /// revoked there, accounts the store marks deauthorized or deleted are purged from the
    /// mirror (their files, pages and feed), only active ones are synced, and an account
    /// another instance is syncing is skipped.
    Sync(MirrorTarget),
    /// The mirror by hand.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// The feed service: feeds of many accounts from the --store and a folder or bucket, with
    /// an admin API, one-time connect links and a sync scheduler; run as many instances as
    /// you like on one database and one bucket.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Serve a mirror over HTTP: GET /feeds/USER_ID.json (the index), its pages under /feeds/,
    /// and the files under /media/.
    Serve {
        /// The mirror's folder (what `igdisplay sync --out` wrote).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8790")]
        addr: std::net::SocketAddr,
    },
    /// Check the setup, one line per check, with the fix for each failure (exit 1 if any
    /// fails): configuration, redirect URI, token, account type, scopes, clock, rate limit,
    /// callbacks.
    Doctor {
        /// The app's deauthorize callback URL, to check that it answers.
        #[arg(
            long,
            env = "IGDISPLAY_DEAUTHORIZE_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        deauthorize_url: Option<String>,
        /// The app's data-deletion callback URL, to check that it answers.
        #[arg(
            long,
            env = "IGDISPLAY_DATA_DELETION_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        data_deletion_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Print the authorize URL and keep the pending state for `auth callback`.
    Url,
    /// Verify the redirect URL, exchange the code, upgrade to a 60-day token and store it.
    Callback {
        /// The full URL Instagram redirected to (with its `#_`), or its query.
        redirect_url: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CommentAction {
    /// Hide a comment from everyone but its author.
    Hide {
        /// The comment.
        id: String,
    },
    /// Show a hidden comment again.
    Unhide {
        /// The comment.
        id: String,
    },
    /// Delete a comment (and, for a top-level one, its replies).
    Delete {
        /// The comment.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Subscribe the app to the account's webhook fields (all of them by default).
    Subscribe {
        /// Every account of the --store, each reported.
        #[arg(long)]
        all: bool,
        /// A field (repeatable): comments, mentions, messages, ...
        #[arg(long = "field", value_name = "FIELD")]
        fields: Vec<String>,
    },
    /// Receive Meta's webhooks on ADDR (behind your HTTPS proxy): the handshake answered for
    /// the verify token in FILE, every delivery checked against the app secret and kept before
    /// it is acknowledged: in the --store's outbox, or POSTed to --forward (which must answer
    /// 2xx), or written to standard output as a JSON line.
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8790")]
        addr: std::net::SocketAddr,
        /// A file readable by its owner only, holding the verify token of the App Dashboard.
        #[arg(long, value_name = "FILE")]
        verify_token_file: PathBuf,
        /// Hand each delivery to this URL instead (without --store).
        #[arg(long, value_name = "URL")]
        forward: Option<String>,
    },
    /// The app's subscription for the account.
    Subscriptions,
    /// End the app's subscription for the account.
    Unsubscribe,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Who, which kind, issued, expires, and whether a refresh is due.
    Status,
    /// Refresh the long-lived token now (it must be 24 hours old).
    Refresh,
    /// Store a long-lived token generated in the App Dashboard, read from standard input.
    Import,
    /// Forget the stored token.
    Logout,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MediaCommand {
    /// Newest first: one page, or everything with --all.
    List {
        /// Items per page (at least 1).
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Every item, over all pages.
        #[arg(long)]
        all: bool,
        /// Only media published at or after this time (Unix seconds or 2024-01-31T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only media published at or before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
    },
    /// One media item.
    #[command(visible_alias = "show")]
    Get {
        /// The media id.
        id: String,
    },
    /// The items of an album.
    Children {
        /// The album's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SignedCommand {
    /// Verify VALUE and print its payload.
    Verify {
        /// The `signed_request` form value.
        value: String,
    },
}

/// `igdisplay keeper`'s options.
#[derive(Debug, Args)]
pub(crate) struct KeeperArgs {
    /// Stop once no account is due (those leased by a stopped instance are waited out and
    /// taken over), instead of running until interrupted.
    #[arg(long)]
    pub(crate) until_idle: bool,
    /// The name this instance holds its leases under (default: keeper-PID-RANDOM); unique
    /// per running instance.
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// Refreshes in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) concurrency: u32,
    /// Accounts claimed at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) batch: u32,
    /// Seconds a claim holds an account; a stopped instance's accounts are taken over after this.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) lease: u64,
    /// The longest an idle keeper sleeps before it asks the database again (one statement per
    /// wake; it wakes sooner when something comes due).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) idle: u64,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    pub(crate) progress_every: u64,
    /// Post every event (refreshed, expiring soon, revoked, expired…) to this URL, signed with
    /// HMAC-SHA256 under the secrets of IGDISPLAY_WEBHOOK_SECRETS (comma-separated: the
    /// current one first, the previous one during a rotation).
    #[arg(
        long,
        env = "IGDISPLAY_WEBHOOK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) webhook: Option<String>,
    /// The longest wait, in seconds, between two delivery attempts of one event (the backoff
    /// doubles from 10 s up to it); an event is given up after 3 days either way.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) webhook_retry_max: u64,
    /// At most this many calls for the whole app (a refresh is one), however many keepers and
    /// feed services run: COUNT/PERIOD, e.g. 600/h (periods: s, min, h, d). Kept in the
    /// database, shared by every instance; give every instance the same.
    #[arg(long, value_name = "COUNT/PERIOD")]
    pub(crate) quota: Option<String>,
    /// Serve /metrics (Prometheus' text format), /healthz and /readyz on this address.
    #[arg(long, env = "IGDISPLAY_METRICS_ADDR", value_name = "ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

/// `igdisplay feeds …`.
#[derive(Debug, Subcommand)]
pub(crate) enum FeedsCommand {
    /// Run one instance until interrupted: the HTTP API (/v1/feeds, /v1/admin, /v1/connect,
    /// /healthz, /readyz), the sync scheduler and the keeper (tokens refreshed, events
    /// delivered to --webhook). Needs --store and the app's id and secret.
    Serve(Box<FeedsServeArgs>),
    /// Print a new admin API token (the --store keeps only its hash): send it as
    /// `Authorization: Bearer TOKEN` to /v1/admin/.
    AdminToken {
        /// What the token is for (shown to operators, never a secret).
        #[arg(long, default_value = "admin")]
        label: String,
    },
}

/// `igdisplay feeds serve`'s options.
#[derive(Debug, Args)]
pub(crate) struct FeedsServeArgs {
    /// Where to listen.
    #[arg(long, env = "IGDISPLAY_FEEDS_ADDR", default_value = "127.0.0.1:8791")]
    pub(crate) addr: std::net::SocketAddr,
    /// The service's public address (https://feeds.example.com): connect links and the login's
    /// redirect URI (PUBLIC_URL/v1/connect/callback, to register in the Meta app) use it.
    #[arg(long, env = "IGDISPLAY_FEEDS_PUBLIC_URL", value_name = "URL")]
    pub(crate) public_url: String,
    /// Where pages point for media: the bucket's public URL or a CDN in front of it (default:
    /// the service serves them, from a folder only).
    #[arg(long, env = "IGDISPLAY_FEEDS_MEDIA_BASE", value_name = "URL")]
    pub(crate) media_base: Option<String>,
    #[command(flatten)]
    pub(crate) target: MirrorTarget,
    /// This instance's name in the leases (default: feeds-PID); unique per running instance.
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// Seconds the scheduler waits when no sync is due before it asks the database again.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) idle: u64,
    /// Seconds a claimed sync is this instance's; a stopped instance's accounts are taken over
    /// after this (renewed while a sync runs).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(3..=86_400))]
    pub(crate) sync_lease: u64,
    /// Syncs this instance runs at once (each mostly waits on Instagram and the bucket).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) sync_concurrency: u16,
    /// At most this many Graph calls for the whole app, syncs and refreshes together, however
    /// many instances run: COUNT/PERIOD, e.g. 4800/h (periods: s, min, h, d). Kept in the
    /// database, shared by every instance (and `igdisplay fleet keep`); give each the same.
    /// Without it, syncs follow only the usage Instagram reports and the pauses it announces.
    #[arg(long, value_name = "COUNT/PERIOD")]
    pub(crate) quota: Option<String>,
    /// Post every event (needs_login, refreshed, revoked…) to this URL, signed with HMAC-SHA256
    /// under the secrets of IGDISPLAY_WEBHOOK_SECRETS.
    #[arg(
        long,
        env = "IGDISPLAY_WEBHOOK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) webhook: Option<String>,
}

/// `igdisplay events`' options.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only the events in this state: pending, delivered or dead.
    #[arg(long, value_name = "STATE")]
    pub(crate) state: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Option<EventsCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Send event ID again (a dead one, once its endpoint is fixed): it is pending again, and
    /// the next delivery pass of any keeper with a webhook delivers it.
    Resend {
        /// The event's id (the ID column of `igdisplay events`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Print a new random key as a key list entry (ID:BASE64). Put it first in
    /// IGDISPLAY_STORE_KEYS, keep the old ones after it, then run `store rotate-key`.
    GenerateKey {
        /// The key's id (default: today's date).
        #[arg(long)]
        id: Option<String>,
    },
    /// Seal every token again under the current key (the first of the list), in batches,
    /// while keepers run. Resumable; when it reports 0 left, the old keys can go.
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MockCommand {
    /// Serve the mock until interrupted (the platform comes from --platform).
    Serve(igdisplay::mock::cli::ServeOptions),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// Where a mirror lives: a folder or an S3-compatible bucket.
#[derive(Debug, Args)]
pub(crate) struct MirrorTarget {
    #[command(flatten)]
    pub(crate) place: MirrorPlace,
    /// The S3-compatible server's endpoint (default: AWS).
    #[arg(
        long,
        env = "IGDISPLAY_S3_ENDPOINT",
        value_name = "URL",
        requires = "bucket",
        hide_env_values = true
    )]
    pub(crate) s3_endpoint: Option<String>,
}

/// A folder or a bucket, one of the two.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct MirrorPlace {
    /// The mirror's folder.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Or an S3-compatible bucket (credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY, region from AWS_REGION, default us-east-1).
    #[arg(long, env = "IGDISPLAY_S3_BUCKET", value_name = "NAME")]
    pub(crate) bucket: Option<String>,
}

/// `igdisplay mirror …`.
#[derive(Debug, Subcommand)]
pub(crate) enum MirrorCommand {
    /// Delete an account's mirror: every file of its posts, its feed's pages and its index
    /// (what a data-deletion request asks for). Safe to run again.
    Purge {
        /// The account's app-scoped user id.
        #[arg(value_name = "USER_ID")]
        user_id: String,
        #[command(flatten)]
        target: MirrorTarget,
    },
}
