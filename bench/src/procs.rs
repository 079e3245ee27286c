//! Child processes: the servers (started from this very binary) and their memory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A running server process; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) addr: SocketAddr,
    /// `key value` lines it printed before `ready`.
    pub(crate) info: Vec<(String, String)>,
}

impl Server {
    /// Starts `igdisplay-bench <args>` and waits for it to print `ready`.
    pub(crate) fn start(args: &[&str]) -> Result<Self, String> {
        Self::start_under(&[], args)
    }

    /// As [`Server::start`], run by `valgrind <tool>` when `tool` is not empty.
    pub(crate) fn start_under(tool: &[String], args: &[&str]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = if tool.is_empty() {
            Command::new(exe)
        } else {
            let mut command = Command::new("valgrind");
            command.args(tool).arg(exe);
            command
        };
        let mut child = command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut base = None;
        let mut info = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if line == "ready" {
                break;
            }
            if let Some(url) = line.strip_prefix("listening on ") {
                base = Some(url.to_owned());
            } else if let Some((key, value)) = line.split_once(' ') {
                info.push((key.to_owned(), value.to_owned()));
            }
        }
        let base = base.ok_or("the server did not say where it listens")?;
        let addr = base
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("{base}: {e}"))?;
        Ok(Self {
            child,
            base,
            addr,
            info,
        })
    }

    pub(crate) fn info(&self, key: &str) -> Result<String, String> {
        self.info
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("the server printed no {key}"))
    }

    /// Ends the server with SIGTERM (so that a tool running it writes its results) and waits.
    pub(crate) fn terminate(mut self) -> Result<(), String> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        self.child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Resident memory now, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        status_kib(self.child.id(), "VmRSS:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/<pid>/status` field in KiB (0 when unreadable).
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// This process's CPU time (user + system, every thread), in seconds, to the nanosecond.
pub(crate) fn cpu_seconds() -> f64 {
    // `/proc/self/stat` counts in 10 ms ticks: a round's CPU would be off by several percent.
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

/// Runs `command` to completion, sampling its peak resident memory; returns (seconds, KiB).
pub(crate) fn run_measured(command: &mut Command) -> Result<(f64, u64), String> {
    run_measured_keeping_stdout(command.stdout(Stdio::null()))
}

/// As [`run_measured`], leaving the command's standard output as the caller set it.
///
/// Standard error is drained while the child runs (a command that reports progress would
/// otherwise block once the pipe's 64 KiB fill up), keeping only its tail for the error message.
pub(crate) fn run_measured_keeping_stdout(command: &mut Command) -> Result<(f64, u64), String> {
    run_sampled(command).map(|(seconds, kib, _)| (seconds, kib))
}

/// As [`run_measured`], also returning the CPU time the child used (user and system, every
/// thread; sampled from `/proc` until it exits, so the last couple of milliseconds are
/// missing): (seconds, KiB, CPU seconds).
pub(crate) fn run_measured_cpu(command: &mut Command) -> Result<(f64, u64, f64), String> {
    run_sampled(command.stdout(Stdio::null()))
}

/// Runs `command` to completion, sampling its peak resident memory and its CPU time every
/// 2 ms: (seconds, KiB, CPU seconds).
fn run_sampled(command: &mut Command) -> Result<(f64, u64, f64), String> {
    let started = std::time::Instant::now();
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr_tail = child
        .stderr
        .take()
        .map(|stderr| std::thread::spawn(move || tail(stderr)));
    let pid = child.id();
    let (mut peak, mut cpu) = (0, 0.0_f64);
    loop {
        peak = peak.max(status_kib(pid, "VmHWM:"));
        cpu = cpu.max(cpu_of(pid));
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let err = stderr_tail
                .and_then(|reader| reader.join().ok())
                .unwrap_or_default();
            if !status.success() {
                return Err(format!("{command:?} failed: {err}"));
            }
            return Ok((started.elapsed().as_secs_f64(), peak, cpu));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// The CPU seconds process `pid` used so far (`utime + stime` of `/proc/PID/stat`, in the
/// kernel's ticks of 10 ms); 0 once it is gone.
fn cpu_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) close with `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Reads `from` to its end, returning the last [`TAIL_BYTES`] of it as text.
fn tail(mut from: impl std::io::Read) -> String {
    let mut kept = std::collections::VecDeque::with_capacity(TAIL_BYTES);
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            // A signal is no reason to stop draining: the child would block on a full pipe.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        kept.extend(&buf[..n]);
        let excess = kept.len().saturating_sub(TAIL_BYTES);
        kept.drain(..excess);
    }
    String::from_utf8_lossy(kept.make_contiguous()).into_owned()
}

/// How much of a measured command's standard error an error message keeps.
const TAIL_BYTES: usize = 8 * 1024;
