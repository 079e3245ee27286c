//! `web-gallery`: a site with "Log in with Instagram" and a gallery of the user's media.
//!
//! `cargo run -p web-gallery -- --mock` runs it against an embedded igdisplay mock; with
//! `IGDISPLAY_APP_ID`, `IGDISPLAY_APP_SECRET`, `IGDISPLAY_REDIRECT_URI` and `PUBLIC_URL` set it runs
//! against Instagram (Instagram Login by default).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use igdisplay::Instagram;
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

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
    /// instagram-login or basic-display.
    #[arg(long, env = "IGDISPLAY_PLATFORM", default_value = "instagram-login")]
    platform: String,
}

#[tokio::main]
async fn main() -> ExitCode {
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
    let (instagram, mock, media_origin) = if args.mock {
        let mock = MockServer::builder()
            .platform(igdisplay::mock_platform(platform))
            .calls_per_hour(None)
            .start()?;
        mock.add_redirect_uri(&redirect);
        mock.set_callbacks(
            Some(&format!("{public}/deauthorize")),
            Some(&format!("{public}/data-deletion")),
        );
        let app = mock.app();
        let instagram = Instagram::builder(platform, app.id, AppSecret::new(app.secret), &redirect)
            .mock(mock.base_url())
            .clock(igdisplay::follow_mock_clock(&mock))
            .build()?;
        let origin = mock.base_url().to_owned();
        (instagram, Some(mock), origin)
    } else {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name} (or pass --mock)"));
        let redirect = var("IGDISPLAY_REDIRECT_URI")?;
        let instagram = Instagram::builder(
            platform,
            var("IGDISPLAY_APP_ID")?,
            AppSecret::new(var("IGDISPLAY_APP_SECRET")?),
            redirect,
        )
        .build()?;
        (instagram, None, "https:".to_owned())
    };
    let public = std::env::var("PUBLIC_URL").unwrap_or(public);
    println!("web-gallery listening on {public}");
    if let Some(mock) = &mock {
        println!("mock Instagram at {}", mock.base_url());
    }
    let state = Arc::new(web_gallery::App::new(instagram, public, media_origin));
    axum::serve(listener, web_gallery::router(state)).await?;
    drop(mock);
    Ok(())
}
