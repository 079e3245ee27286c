//! `igdisplay-mock`: the fake Instagram as a standalone server. Prints `listening on ...` first,
//! then the app's credentials and the seeded users, and serves until killed.

#![allow(clippy::print_stderr)]

use clap::Parser;

/// A stateful, seeded, time-controlled fake Instagram for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "igdisplay-mock", version)]
struct Cli {
    #[command(flatten)]
    serve: igdisplay_mock::cli::ServeArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match igdisplay_mock::cli::start(&cli.serve, &mut std::io::stdout()) {
        Ok(_server) => loop {
            std::thread::park();
        },
        Err(error) => {
            // The whole chain: a seed file's error names the field, the line and the column.
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("igdisplay-mock: {message}");
            std::process::ExitCode::from(2)
        }
    }
}
