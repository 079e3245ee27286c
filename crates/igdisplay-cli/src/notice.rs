//! What the CLI says while it waits: when Instagram asks for a pause (a `Retry-After`, or a
//! spent rate budget), the library sends a `tracing` event ([`RATE_LIMIT_WAIT`]); this layer
//! turns it into a line on stderr, and on a terminal into a countdown, instead of a command
//! that looks stuck for a minute.

use igdisplay::graph::RATE_LIMIT_WAIT;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Waits shorter than this pass without a word.
const QUIET_BELOW: Duration = Duration::from_secs(1);

/// Installs the notice as the process's `tracing` subscriber; for a service
/// (`json_logs`), with the libraries' events at INFO and above as one JSON object a line on
/// stderr, each with its spans (a request's id).
pub(crate) fn install(json_logs: bool) {
    let logs = json_logs.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    // Each layer filters for itself: a layer's own `enabled` would silence the others.
    let notice = RateLimitNotice.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.target() == RATE_LIMIT_WAIT
    }));
    let _ = tracing_subscriber::registry().with(notice).with(logs).try_init();
}

struct RateLimitNotice;

impl<S: tracing::Subscriber> Layer<S> for RateLimitNotice {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut wait = WaitMs(None);
        event.record(&mut wait);
        if let Some(ms) = wait.0 {
            announce(Duration::from_millis(ms));
        }
    }
}

struct WaitMs(Option<u64>);

impl Visit for WaitMs {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "wait_ms" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// One line, or a countdown on a terminal (a thread of its own that ends with the wait).
fn announce(wait: Duration) {
    if wait < QUIET_BELOW {
        return;
    }
    let seconds = wait.as_secs_f64().ceil() as u64;
    let line = |left: u64| format!("Instagram asks us to wait {left} s (rate limit); Ctrl-C to stop");
    let mut stderr = std::io::stderr();
    if !stderr.is_terminal() {
        let _ = writeln!(stderr, "{}", line(seconds));
        return;
    }
    let _ = std::thread::Builder::new()
        .name("igdisplay-countdown".to_owned())
        .spawn(move || {
            let mut stderr = std::io::stderr();
            for left in (1..=seconds).rev() {
                let _ = write!(stderr, "\r{}", line(left));
                let _ = stderr.flush();
                // The countdown is wall-clock by nature: it shows a real wait.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(Duration::from_secs(1));
            }
            let _ = write!(stderr, "\r{}\r", " ".repeat(line(seconds).len()));
        });
}
