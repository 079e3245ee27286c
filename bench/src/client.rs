//! Comparison 3: `me()` through the facade vs a hand-written loop on the same HTTP stack, for
//! each backend; and the loop `client-loop` runs for profiling it.

use crate::common::{instagram_for, me_body};
use crate::procs::{self, Server};
use crate::report::{Report, Sample};
use crate::{Backend, Plan};
use igdisplay::graph::UserField;
use igdisplay::http::{HyperBackend, ReqwestBackend};
use igdisplay::model::{AccessToken, User};
use std::sync::Arc;
use std::time::Instant;

/// 3. `me()` through the facade vs a hand-written loop, per backend, against bare hyper.
pub(crate) async fn client_overhead(plan: &Plan, report: &mut Report) -> Result<(), String> {
    let mock = Server::start(&["serve-mock"])?;
    let token = mock.info("token")?;
    let body = me_body(&mock, &token).await?;
    drop(mock);
    let bare = Server::start(&["serve-bare", "--body", &body])?;
    let clients = Clients::new(&bare.base)?;
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    for concurrency in [1usize, 32] {
        // Rounds of comparable length: 32 connections get through four times as many.
        let requests = if concurrency == 1 {
            plan.requests / 4
        } else {
            plan.requests
        };
        let per_task = requests.div_ceil(concurrency);
        let mut rps: Vec<(Side, Vec<f64>)> = Side::ALL.iter().map(|side| (*side, Vec::new())).collect();
        let mut cpu: Vec<(Side, Vec<f64>)> = rps.clone();
        for _ in 0..plan.ratio_rounds {
            for (side, samples) in &mut rps {
                let started = Instant::now();
                let cpu_start = procs::cpu_seconds();
                clients.load(*side, concurrency, per_task).await?;
                let done = (per_task * concurrency) as f64;
                samples.push(done / started.elapsed().as_secs_f64());
                let cpu_samples = cpu.iter_mut().find(|(s, _)| s == side).map(|(_, v)| v);
                if let Some(cpu_samples) = cpu_samples {
                    cpu_samples.push((procs::cpu_seconds() - cpu_start) * 1e6 / done);
                }
            }
        }
        let median = |table: &[(Side, Vec<f64>)], side: Side| {
            table
                .iter()
                .find(|(s, _)| *s == side)
                .map(|(_, values)| Sample::of(values))
        };
        for side in Side::ALL {
            let (Some(ours), Some(cpu_us)) = (median(&rps, side), median(&cpu, side)) else {
                continue;
            };
            let ratio = paired_ratio(&rps, side);
            // CPU is better lower: the baseline's over ours, so that 0.95 reads the same way.
            let cpu_ratio = paired_ratio(&cpu, side).recip();
            if side.is_facade() {
                ratios.push(ratio);
                cpu_ratios.push(cpu_ratio);
            }
            rows.push(vec![
                format!("{concurrency}"),
                side.name().to_owned(),
                ours.show(0),
                format!("{ratio:.2}"),
                format!("{:.1}", cpu_us.median),
                format!("{cpu_ratio:.2}"),
            ]);
        }
    }
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let worst = |values: &[f64]| values.iter().copied().fold(f64::INFINITY, f64::min);
    report.verdict(
        "3. facade ≥ 0.95 of the hand-written loop's requests/s, each backend",
        worst(&ratios) >= 0.95,
        list(&ratios),
    );
    report.verdict(
        "3b. facade CPU per request ≤ 1/0.95 of the hand-written loop's, each backend",
        worst(&cpu_ratios) >= 0.95,
        list(&cpu_ratios),
    );
    report.section(
        "3. Client overhead",
        &format!(
            "`me()` decoding the same `User` through the facade vs a hand-written loop on the same HTTP stack, against \
             the bare hyper server; {} requests per round with 1 connection and {} with 32, {} rounds alternating; \
             requests/s median (min–max) and its ratio to the hand-written loop's; process CPU time per request (µs, \
             client side, the load of every connection included) and the hand-written loop's CPU per request over \
             it. Ratios are medians of the rounds' ratios, each round against the baseline's round beside it; the \
             table's order gives the verdicts' (reqwest 1, hyper 1, reqwest 32, hyper 32). Goal: ≥ 0.95 for each \
             backend, both ratios.",
            plan.requests / 4,
            plan.requests,
            plan.ratio_rounds
        ),
        &["concurrency", "client", "requests/s", "ratio", "CPU µs/request", "CPU ratio"],
        rows,
    );
    Ok(())
}

/// `side`'s figure over its baseline's, round by round ([`Sample::paired_ratio`]).
fn paired_ratio(table: &[(Side, Vec<f64>)], side: Side) -> f64 {
    let samples = |wanted: Side| {
        table
            .iter()
            .find(|(s, _)| *s == wanted)
            .map(|(_, v)| v.as_slice())
    };
    match (samples(side), samples(side.baseline())) {
        (Some(ours), Some(baseline)) => Sample::paired_ratio(ours, baseline),
        _ => 0.0,
    }
}

/// For profiling comparison 3 and counting its instructions (comparison 10): `me()` in a loop
/// against `base`, through the facade or (`hand`) the hand-written loop on the same stack.
pub(crate) async fn client_loop(
    base: &str,
    requests: usize,
    backend: Backend,
    hand: bool,
    concurrency: usize,
) -> Result<(), String> {
    let clients = Clients::new(base)?;
    let side = match (backend, hand) {
        (Backend::Hyper, false) => Side::FacadeHyper,
        (Backend::Hyper, true) => Side::HandHyper,
        (Backend::Reqwest, false) => Side::FacadeReqwest,
        (Backend::Reqwest, true) => Side::HandReqwest,
    };
    let concurrency = concurrency.max(1);
    clients
        .load(side, concurrency, requests.div_ceil(concurrency))
        .await
}

/// The four ways comparison 3 asks `/me`: the facade and a hand-written loop, on each stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    FacadeReqwest,
    HandReqwest,
    FacadeHyper,
    HandHyper,
}

impl Side {
    const ALL: [Side; 4] = [
        Side::FacadeReqwest,
        Side::HandReqwest,
        Side::FacadeHyper,
        Side::HandHyper,
    ];

    fn name(self) -> &'static str {
        match self {
            Side::FacadeReqwest => "facade, reqwest backend",
            Side::HandReqwest => "hand-written reqwest + serde_json",
            Side::FacadeHyper => "facade, hyper backend",
            Side::HandHyper => "hand-written hyper-util + serde_json",
        }
    }

    /// The hand-written loop on the same HTTP stack: what the side is measured against.
    fn baseline(self) -> Side {
        match self {
            Side::FacadeReqwest | Side::HandReqwest => Side::HandReqwest,
            Side::FacadeHyper | Side::HandHyper => Side::HandHyper,
        }
    }

    fn is_facade(self) -> bool {
        matches!(self, Side::FacadeReqwest | Side::FacadeHyper)
    }
}

/// The hand-written hyper loop's client: hyper-util over hyper-rustls's connector, the stack
/// of the hyper backend (an Instagram client needs HTTPS), asking plain `http://` here.
type HyperClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// hyper-util's pooled client with hyper-rustls, as a hand-written loop would build it, on the
/// hyper backend's TLS configuration.
fn hand_hyper_client() -> Result<HyperClient, String> {
    let tls = igdisplay::http::rustls_client_config(&[]).map_err(|e| e.to_string())?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// Every side's client, cheap to clone into each task.
#[derive(Clone)]
struct Clients {
    reqwest_graph: igdisplay::graph::GraphClient,
    hyper_graph: igdisplay::graph::GraphClient,
    reqwest_client: reqwest::Client,
    hyper_client: HyperClient,
    url: Arc<str>,
}

impl Clients {
    /// Every side's client, against the server at `base`.
    fn new(base: &str) -> Result<Self, String> {
        let graph = |backend: igdisplay::http::SharedBackend| {
            instagram_for(base, backend).map(|app| app.graph_with_token(AccessToken::new("token")))
        };
        Ok(Self {
            reqwest_graph: graph(Arc::new(ReqwestBackend::new().map_err(|e| e.to_string())?))?,
            hyper_graph: graph(Arc::new(HyperBackend::new().map_err(|e| e.to_string())?))?,
            reqwest_client: reqwest::Client::new(),
            hyper_client: hand_hyper_client()?,
            url: Arc::from(format!("{base}/me?fields=id%2Cusername&access_token=token").as_str()),
        })
    }

    /// `concurrency` tasks asking `/me` `per_task` times each, the way `side` does.
    async fn load(&self, side: Side, concurrency: usize, per_task: usize) -> Result<(), String> {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let clients = self.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        std::hint::black_box(clients.me(side).await?);
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// One `/me`, decoded to a `User`, the way `side` does it.
    async fn me(&self, side: Side) -> Result<User, String> {
        match side {
            // The same request on the wire as the hand-written loop's: `fields=id%2Cusername`.
            Side::FacadeReqwest => (self
                .reqwest_graph
                .me()
                .fields(&[UserField::Username])
                .send()
                .await)
                .map_err(|e| e.to_string()),
            Side::FacadeHyper => {
                (self.hyper_graph.me().fields(&[UserField::Username]).send().await).map_err(|e| e.to_string())
            }
            Side::HandReqwest => {
                let response = self.reqwest_client.get(&*self.url).send().await;
                let bytes = response.map_err(|e| e.to_string())?.bytes().await;
                serde_json::from_slice(&bytes.map_err(|e| e.to_string())?).map_err(|e| e.to_string())
            }
            Side::HandHyper => {
                use http_body_util::BodyExt;
                let uri: http::Uri = self
                    .url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| e.to_string())?;
                let response = self.hyper_client.get(uri).await.map_err(|e| e.to_string())?;
                let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
                serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())
            }
        }
    }
}
