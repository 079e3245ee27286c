//! `igdisplay`: Instagram from the command line. Exit codes: 0 success, 1 API or runtime
//! failure, 2 usage or configuration error.
// A program at a terminal: the login listener waits for a person in real time, and the export
// stamps its index with the wall clock. The library crates take time from the injected Clock.
#![allow(clippy::disallowed_methods)]
// Printing is this program's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod auth;
mod cli;
mod demo;
mod doctor;
mod export;
mod fail;
mod feeds;
mod files;
mod fleet;
mod hooks;
mod keyring;
mod metrics;
mod mirror;
mod notice;
mod out;
mod read;
mod settings;
mod social;

use clap::Parser;
use cli::{
    AuthCommand, Cli, Command, FeedsCommand, MediaCommand, MirrorCommand, MockCommand, SignedCommand,
    StoreCommand, TokenCommand,
};
use fail::Failure;
use settings::Settings;
use std::process::ExitCode;

fn main() -> ExitCode {
    // reqwest is built without a default crypto provider (igdisplay-http's, and the object
    // store's for a bucket), so the program installs one (a no-op if already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    notice::install(matches!(cli.command, Command::Feeds(FeedsCommand::Serve(_))));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("igdisplay: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("igdisplay: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let settings = Settings::resolve(&cli.global, needs_app(&cli.command)).await?;
    dispatch(cli.command, &settings)
        .await
        .map_err(|failure| failure.with_host(|side| settings.host(side), settings.mock()))
}

/// Whether `command` uses the app's id, secret or redirect URI (a login, its check, a
/// `signed_request`): with `--mock`, only these ask the mock for what is not configured. A
/// keeper's or a reader's needs nothing of the app (and a mock with a fleet of users answers
/// its state in megabytes).
fn needs_app(command: &Command) -> bool {
    matches!(
        command,
        Command::Auth(_)
            | Command::Login { .. }
            | Command::Doctor { .. }
            | Command::SignedRequest(_)
            | Command::Feeds(FeedsCommand::Serve(_))
    )
}

async fn dispatch(command: Command, settings: &Settings) -> Result<(), Failure> {
    match command {
        Command::Demo { out } => demo::run(settings.platform, out, settings.json).await,
        Command::Auth(AuthCommand::Url) => auth::url(settings).await,
        Command::Auth(AuthCommand::Callback { redirect_url }) => {
            auth::callback(settings, &redirect_url).await
        }
        Command::Login { no_browser, timeout } => auth::login(settings, no_browser, timeout).await,
        Command::Token(TokenCommand::Status) => read::status(settings).await,
        Command::Token(TokenCommand::Refresh) => read::refresh(settings).await,
        Command::Token(TokenCommand::Import) => read::import(settings).await,
        Command::Token(TokenCommand::Logout) => read::logout(settings).await,
        Command::Me => read::me(settings).await,
        Command::Comments { action, media_id } => social::comments(settings, action, media_id).await,
        Command::Tags => social::tags(settings).await,
        Command::Insights {
            target,
            metrics,
            period,
            breakdown,
        } => social::insights(settings, &target, &metrics, &period, breakdown.as_deref()).await,
        Command::Webhooks(command) => social::webhooks(settings, command).await,
        Command::Media(MediaCommand::List {
            limit,
            all,
            since,
            until,
        }) => read::list(settings, limit, all, since.as_deref(), until.as_deref()).await,
        Command::Media(MediaCommand::Get { id }) => read::get(settings, &id).await,
        Command::Media(MediaCommand::Children { id }) => read::children(settings, &id).await,
        Command::Export { dir, concurrency } => export::command(settings, &dir, concurrency).await,
        Command::SignedRequest(SignedCommand::Verify { value }) => {
            read::verify(settings, &value, settings.app_secret())
        }
        Command::Doctor {
            deauthorize_url,
            data_deletion_url,
        } => {
            let callbacks = doctor::Callbacks {
                deauthorize: deauthorize_url,
                data_deletion: data_deletion_url,
            };
            doctor::run(settings, &callbacks).await
        }
        Command::Keeper(args) => fleet::keeper(settings, &args).await,
        Command::Accounts => fleet::accounts(settings).await,
        Command::Events(args) => fleet::events(settings, &args).await,
        Command::Sync(target) => mirror::sync(settings, mirror::target(target)?).await,
        Command::Mirror(MirrorCommand::Purge { user_id, target }) => {
            mirror::purge(settings, &user_id, mirror::target(target)?).await
        }
        Command::Serve { dir, addr } => mirror::serve(&dir, addr).await,
        Command::Feeds(FeedsCommand::Serve(args)) => feeds::serve(settings, *args).await,
        Command::Feeds(FeedsCommand::AdminToken { label }) => feeds::admin_token(settings, &label).await,
        Command::Store(StoreCommand::GenerateKey { id }) => fleet::generate_key(id.as_deref()),
        Command::Store(StoreCommand::RotateKey) => fleet::rotate_key(settings).await,
        Command::Mock(MockCommand::Serve(args)) => {
            let args = igdisplay::mock::cli::ServeArgs {
                platform: igdisplay::mock_platform(settings.platform),
                options: args,
            };
            let _server = igdisplay::mock::cli::start(&args, &mut std::io::stdout()).map_err(|e| {
                Failure::usage(fail::chain(&e), "pick another --addr, or check the --seed file")
            })?;
            std::future::pending::<()>().await;
            Ok(())
        }
    }
}
