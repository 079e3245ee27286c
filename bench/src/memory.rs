//! Comparison 2: the resident memory of igdisplay-mock and wiremock after many requests.

use crate::common::{ME_FIELDS, me_body};
use crate::procs::Server;
use crate::report::{self, Report};
use crate::{Plan, load};

/// 2. Resident memory of igdisplay-mock and wiremock after many requests.
pub(crate) async fn memory(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    let wiremock = Server::start(&["serve-wiremock", "--mounted", "1", "--body", &body])?;
    let mock_target = format!("/me?fields={ME_FIELDS}&access_token={token}");
    let mut rows = Vec::new();
    let mut growths = Vec::new();
    for (name, server, target) in [
        ("igdisplay-mock", &mock, mock_target.as_str()),
        ("wiremock", &wiremock, "/me"),
    ] {
        let start = server.rss_kib();
        load::run(server.addr, target, 32, plan.memory_small).await?;
        let small = server.rss_kib();
        load::run(server.addr, target, 32, plan.memory_large - plan.memory_small).await?;
        let large = server.rss_kib();
        growths.push((large as f64 - small as f64) / 1024.0);
        rows.push(vec![
            name.to_owned(),
            report::mib(start),
            report::mib(small),
            report::mib(large),
            format!("{:+.1} MiB", (large as f64 - small as f64) / 1024.0),
        ]);
    }
    report.verdict(
        "2. igdisplay-mock memory flat (< 10 MB growth)",
        growths[0] < 10.0,
        format!("{:+.1} MiB (wiremock {:+.1} MiB)", growths[0], growths[1]),
    );
    report.section(
        "2. Mock server memory under load",
        &format!(
            "Resident memory (VmRSS) of each server process at start, after {} and after {} requests of comparison 1. \
             Goal: igdisplay-mock flat (under 10 MB of growth).",
            plan.memory_small, plan.memory_large
        ),
        &["server", "at start", &format!("after {}", plan.memory_small), &format!("after {}", plan.memory_large), "growth"],
        rows,
    );
    Ok(())
}
