//! Comparison 11: `igdisplay serve` beside nginx (Debian's package, `sendfile on`), both
//! serving the same mirror folder on loopback to the same load generator, side by side in one
//! run: small images, a feed page, and a 20 MiB video fetched in 1 MiB ranges.

use crate::Plan;
use crate::load::{self, Target};
use crate::mirror::ServeProcess;
use crate::procs::{self, Server};
use crate::report::{self, Report, Sample};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The video's size and the range each request asks for.
const VIDEO: u64 = 20 * 1024 * 1024;
const RANGE: u64 = 1024 * 1024;

/// Where Debian puts nginx (outside a normal user's PATH).
const NGINX_PATHS: [&str; 3] = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"];

/// 11. Serving a mirror: igdisplay serve / nginx, requests per second, on three workloads.
pub(crate) async fn versus_nginx(plan: &Plan, cli: &str, report: &mut Report) -> Result<(), String> {
    let Some(binary) = binary() else {
        report.note(
            "11. Serving a mirror: igdisplay serve beside nginx",
            "Not run: nginx is not installed (`apt-get install nginx`; `.ci/run` installs it).",
        );
        return Ok(());
    };
    let work = std::env::temp_dir().join(format!("igdisplay-bench-nginx-{}", std::process::id()));
    let result = compare(plan, cli, binary, &work, report).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn compare(
    plan: &Plan,
    cli: &str,
    binary: &Path,
    work: &Path,
    report: &mut Report,
) -> Result<(), String> {
    let (dir, user) = crate::mirror::mirrored_library(cli, plan.mirror_items.0, work)?;
    let workloads = workloads(&dir, &user)?;
    let ours = ServeProcess::start(cli, &dir)?;
    let nginx = Nginx::start(binary, &dir, &work.join("nginx"))?;
    let at_start = procs::status_kib(ours.child.id(), "VmRSS:");
    let mut rows = Vec::new();
    let mut all_met = true;
    let mut ratios = Vec::new();
    for workload in &workloads {
        let requests = (plan.requests / workload.share).max(workload.targets.len());
        // The ceiling of our HTTP stack: bare hyper answering as many bytes from memory.
        let bare = Server::start(&["serve-bare", "--size", &workload.bytes.to_string()])?;
        let whole = [Target::whole("/")];
        let (mut mine, mut theirs, mut ceiling) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..plan.rounds {
            let elapsed = load::run_targets(ours.addr, &workload.targets, 32, requests).await?;
            mine.push(requests as f64 / elapsed.as_secs_f64());
            let elapsed = load::run_targets(nginx.addr, &workload.targets, 32, requests).await?;
            theirs.push(requests as f64 / elapsed.as_secs_f64());
            let elapsed = load::run_targets(bare.addr, &whole, 32, requests).await?;
            ceiling.push(requests as f64 / elapsed.as_secs_f64());
        }
        drop(bare);
        let ratio = Sample::paired_ratio(&mine, &theirs);
        let hyper_ratio = Sample::paired_ratio(&ceiling, &theirs);
        all_met &= ratio >= 0.9;
        ratios.push(format!("{} {ratio:.2}", workload.name));
        let (mine, theirs, ceiling) = (Sample::of(&mine), Sample::of(&theirs), Sample::of(&ceiling));
        rows.push(vec![
            workload.name.to_owned(),
            workload.detail.clone(),
            mine.show(0),
            theirs.show(0),
            format!("{ratio:.2}"),
            ceiling.show(0),
            format!("{hyper_ratio:.2}"),
        ]);
    }
    let peak = procs::status_kib(ours.child.id(), "VmHWM:");
    drop(ours);
    drop(nginx);
    report.verdict(
        "11. igdisplay serve ≥ 0.9 of nginx's requests/s on each workload",
        all_met,
        ratios.join(", "),
    );
    report.section(
        "11. Serving a mirror: igdisplay serve beside nginx",
        &format!(
            "The same mirror folder ({} posts synced by `igdisplay sync`, and a 20 MiB video) served by `igdisplay serve` \
             and by nginx (Debian's package: 2 worker processes, `sendfile on`, `tcp_nopush on`, access log off, \
             `open_file_cache` with files checked again after a second, as `igdisplay serve` keeps small files a \
             second; started by the bench with a generated configuration); 32 keep-alive connections, {} rounds alternating \
             between the two; requests/s, and the round-by-round ratio's median. Beside them, the ceiling of our HTTP \
             stack: bare hyper answering as many bytes from memory per request (the whole, for a range). igdisplay \
             serve's resident memory \
             went from {} at start to a peak of {} over all the workloads.",
            plan.mirror_items.0,
            plan.rounds,
            report::mib(at_start),
            report::mib(peak),
        ),
        &[
            "workload",
            "requests",
            "igdisplay serve, requests/s",
            "nginx, requests/s",
            "ratio",
            "bare hyper, same bytes from memory",
            "bare hyper / nginx",
        ],
        rows,
    );
    Ok(())
}

/// One workload: its requests, cycled through by every connection.
struct Workload {
    name: &'static str,
    detail: String,
    targets: Vec<Target>,
    /// The bytes of one answer (on average).
    bytes: u64,
    /// A round sends the plan's requests divided by this (a range moves 1 MiB).
    share: usize,
}

/// Small images (the mirrored originals of the first page), the first feed page, and a 20 MiB
/// video written beside them, in 1 MiB ranges.
fn workloads(dir: &Path, user: &str) -> Result<Vec<Workload>, String> {
    let read = |key: &str| -> Result<serde_json::Value, String> {
        serde_json::from_slice(&std::fs::read(dir.join(key)).map_err(|e| format!("{key}: {e}"))?)
            .map_err(|e| format!("{key}: {e}"))
    };
    let index = read(&format!("feeds/{user}.json"))?;
    let page = index["pages"][0]["key"].as_str().ok_or("no page")?.to_owned();
    let items = read(&page)?;
    let items = items.as_array().ok_or("a page is an array")?;
    let images: Vec<Target> = items
        .iter()
        .filter_map(|item| item["image"]["original"].as_str())
        .map(|key| Target::whole(&format!("/{key}")))
        .collect();
    if images.is_empty() {
        return Err("no mirrored image".to_owned());
    }
    let image_bytes: u64 = images
        .iter()
        .filter_map(|t| std::fs::metadata(dir.join(&t.path[1..])).ok())
        .map(|m| m.len())
        .sum();
    let page_bytes = std::fs::metadata(dir.join(&page))
        .map_err(|e| e.to_string())?
        .len();
    let image_count = images.len() as u64;
    // A real MP4's first box, then filler: both servers call it video/mp4.
    let video = "media/bench-video/video.mp4";
    let mut bytes = vec![0u8; usize::try_from(VIDEO).map_err(|e| e.to_string())?];
    bytes[..24].copy_from_slice(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2");
    let path = dir.join(video);
    std::fs::create_dir_all(path.parent().ok_or("no folder")?).map_err(|e| e.to_string())?;
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    let ranges = (0..VIDEO / RANGE)
        .map(|n| Target {
            path: format!("/{video}"),
            range: Some((n * RANGE, (n + 1) * RANGE - 1)),
        })
        .collect();
    Ok(vec![
        Workload {
            name: "small images",
            detail: format!(
                "{} images of a feed page, {} bytes on average",
                images.len(),
                image_bytes / image_count
            ),
            targets: images,
            bytes: image_bytes / image_count,
            share: 1,
        },
        Workload {
            name: "a feed page",
            detail: format!("{} posts, {page_bytes} bytes", items.len()),
            targets: vec![Target::whole(&format!("/{page}"))],
            bytes: page_bytes,
            share: 4,
        },
        Workload {
            name: "a 20 MiB video",
            detail: "1 MiB ranges, in turn (206)".to_owned(),
            targets: ranges,
            bytes: RANGE,
            share: 20,
        },
    ])
}

/// Where nginx is installed, if it is.
pub(crate) fn binary() -> Option<&'static Path> {
    NGINX_PATHS.iter().map(Path::new).find(|p| p.exists())
}

/// nginx serving `root` on a free loopback port, with a configuration of its own under
/// `prefix`; stopped (SIGQUIT to the master, then waited for) when dropped.
pub(crate) struct Nginx {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Nginx {
    pub(crate) fn start(binary: &Path, root: &Path, prefix: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(prefix.join("logs")).map_err(|e| e.to_string())?;
        let addr = free_port()?;
        // The mirror's files are private to their owner (0600): as root, the workers must be
        // root too to read them, as `igdisplay serve` does.
        let user = if running_as_root() { "user root;" } else { "" };
        let temp: PathBuf = prefix.join("temp");
        let config = format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\n{user}\n\
             error_log {prefix}/logs/error.log warn;\npid {prefix}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
               keepalive_requests 1000000;\n  keepalive_timeout 65;\n\
               open_file_cache max=10000 inactive=20s;\n  open_file_cache_valid 1s;\n\
               types {{ image/jpeg jpg; video/mp4 mp4; application/json json; }}\n\
               default_type application/octet-stream;\n\
               client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n\
               fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n\
               server {{\n    listen {addr};\n    root {root};\n    location / {{ }}\n  }}\n}}\n",
            prefix = prefix.display(),
            temp = temp.display(),
            root = root.display(),
        );
        std::fs::create_dir_all(&temp).map_err(|e| e.to_string())?;
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config).map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let nginx = Self { child, addr };
        // Up when it accepts (a few milliseconds); give up after five seconds.
        for _ in 0..500 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
        Err(format!("nginx did not start: {log}"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
