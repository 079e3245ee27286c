//! A throwaway PostgreSQL cluster for the test run: `initdb` into a temporary folder under
//! `target/`, a server on a free loopback port (and its socket in that folder), trust
//! authentication for the local test user, stopped and removed when the guard drops. The
//! server binaries come from Debian's versioned folder (`/usr/lib/postgresql/N/bin`), which is
//! kept off `PATH`; `.ci/run` installs the package when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster; stopped and removed on drop.
pub(crate) struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    owner: Option<&'static str>,
    /// `postgres://…` of the cluster's `postgres` database.
    pub(crate) url: String,
    /// The folder of `pg_dump` and the rest.
    pub(crate) bin_dir: PathBuf,
    port: u16,
}

/// The newest `/usr/lib/postgresql/N/bin` that has `initdb`.
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A free loopback port (the kernel's pick, released at once).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl Cluster {
    /// Starts a cluster under `root/target`.
    pub(crate) fn start(root: &Path) -> Result<Self, String> {
        Self::start_with(root, false)
    }

    /// Starts a cluster under `root/target` that counts every statement of its clients
    /// (`pg_stat_statements`, preloaded when the server has it: the benchmarks count them).
    pub(crate) fn start_counting_statements(root: &Path) -> Result<Self, String> {
        Self::start_with(root, true)
    }

    fn start_with(root: &Path, count_statements: bool) -> Result<Self, String> {
        let bin = server_binaries().ok_or(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (`apt-get install postgresql`; .ci/run does)",
        )?;
        let data = root.join(format!("target/pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let owner = is_root().then_some("postgres");
        if let Some(user) = owner {
            let status = Command::new("chown")
                .args(["-R", user])
                .arg(&data)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("could not give {} to {user}", data.display()));
            }
        }
        let port = free_port()?;
        let mut cluster = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin_dir: bin.clone(),
            bin,
            data,
            owner,
            port,
        };
        let data = cluster.data.to_string_lossy().into_owned();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let mut options =
            format!("-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300");
        let statements = cluster
            .bin
            .parent()
            .is_some_and(|version| version.join("lib/pg_stat_statements.so").exists());
        if count_statements && statements {
            options
                .push_str(" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all");
        }
        let log = format!("{data}/server.log");
        cluster.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        )?;
        Ok(cluster)
    }

    /// Creates the database `name` and returns its URL.
    pub(crate) fn create_database(&mut self, name: &str) -> Result<String, String> {
        let port = self.port.to_string();
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name],
        )?;
        Ok(format!("postgres://postgres@127.0.0.1:{port}/{name}"))
    }

    /// Runs a server binary, as the cluster's owner.
    fn run(&mut self, program: &str, args: &[&str]) -> Result<(), String> {
        let binary = self.bin.join(program);
        let mut command = match self.owner {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let output = command
            .args(args)
            .output()
            .map_err(|e| format!("could not run {program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
