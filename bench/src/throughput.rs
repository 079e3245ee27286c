//! Comparison 1: `GET /me` on igdisplay-mock, wiremock and bare hyper, 32 connections.

use crate::common::{ME_FIELDS, me_body};
use crate::procs::Server;
use crate::report::{Report, Sample};
use crate::{Plan, load};

/// 1. `GET /me`, 32 connections: igdisplay-mock, wiremock (1 and 50 mocks), bare hyper.
pub(crate) async fn throughput(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    let wiremock_1 = Server::start(&["serve-wiremock", "--mounted", "1", "--body", &body])?;
    let wiremock_50 = Server::start(&["serve-wiremock", "--mounted", "50", "--body", &body])?;
    let bare = Server::start(&["serve-bare", "--body", &body])?;
    // The same request line to every server (wiremock's `/me` mocks match any query, bare
    // hyper ignores it): each parses what a client of the mock sends.
    let target = format!("/me?fields={ME_FIELDS}&access_token={token}");
    let mut sides = [
        Side::new("igdisplay-mock", &mock, &target),
        Side::new("wiremock, 1 mock mounted", &wiremock_1, &target),
        Side::new("wiremock, 50 mounted (match last)", &wiremock_50, &target),
        Side::new("bare hyper (ceiling)", &bare, &target),
    ];
    for side in &sides {
        load::run(side.server.addr, side.target, 32, plan.requests / 10).await?;
    }
    for _ in 0..plan.rounds {
        for side in &mut sides {
            let elapsed = load::run(side.server.addr, side.target, 32, plan.requests).await?;
            side.samples.push(plan.requests as f64 / elapsed.as_secs_f64());
        }
    }
    let [ours, wiremock, _, ceiling] = sides.each_ref().map(|side| side.samples.as_slice());
    let ratio = Sample::paired_ratio(ours, ceiling);
    report.verdict(
        "1. igdisplay-mock ≥ 0.85 of bare hyper",
        ratio >= 0.85,
        format!(
            "{ratio:.2} ({:.2}× wiremock)",
            Sample::paired_ratio(ours, wiremock)
        ),
    );
    let rows = sides
        .iter()
        .map(|side| {
            vec![
                side.name.to_owned(),
                Sample::of(&side.samples).show(0),
                format!("{:.2}", Sample::paired_ratio(&side.samples, ceiling)),
            ]
        })
        .collect();
    report.section(
        "1. Mock server throughput",
        &format!(
            "`GET /me?fields=…&access_token=…` (the same request line to every server) answering the same {}-byte \
             body, 32 keep-alive connections, {} requests per round, {} rounds \
             alternating the servers; requests/s, median (min–max); ratio to bare hyper (the median of the rounds' \
             ratios). Goal: igdisplay-mock ≥ 0.85 \
             of bare hyper.",
            body.len(),
            plan.requests,
            plan.rounds
        ),
        &["server", "requests/s", "ratio to bare hyper"],
        rows,
    );
    Ok(())
}

/// One server under load, with its requests/s samples.
struct Side<'a> {
    name: &'static str,
    server: &'a Server,
    target: &'a str,
    samples: Vec<f64>,
}

impl<'a> Side<'a> {
    fn new(name: &'static str, server: &'a Server, target: &'a str) -> Self {
        Self {
            name,
            server,
            target,
            samples: Vec::new(),
        }
    }
}
