//! A throwaway S3-compatible server for the test run and the bench: moto's server (installed
//! from PyPI by `.ci/run` into `target/s3-python`, named by `IGDISPLAY_S3_SERVER`) on a free
//! loopback port, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
pub(crate) struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
}

impl S3Server {
    /// The server `IGDISPLAY_S3_SERVER` names, or the one `.ci/run` installed under `root`.
    pub(crate) fn program(root: &std::path::Path) -> Option<String> {
        std::env::var("IGDISPLAY_S3_SERVER").ok().or_else(|| {
            let installed = root.join("target/s3-python/bin/moto_server");
            installed
                .is_file()
                .then(|| installed.to_string_lossy().into_owned())
        })
    }

    /// Starts [`Self::program`] and waits (up to a minute) until it accepts connections.
    #[allow(
        clippy::disallowed_methods,
        reason = "xtask waits for a real process in real time"
    )]
    pub(crate) fn start(root: &std::path::Path) -> Result<Self, String> {
        let program = Self::program(root).ok_or(
            "no S3-compatible server: IGDISPLAY_S3_SERVER is not set and target/s3-python has none \
             (`bash .ci/run` installs moto's server there)",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(|e| format!("no free port: {e}"))?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {program}: {e}"))?;
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the S3 server did not start within a minute".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
