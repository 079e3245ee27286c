//! The `igdisplay` binary against an in-process mock: every command, including failures and
//! exit codes. Plain sockets stand in for the browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_mock::{MockPlatform, MockServer};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const SECRET_CANARY_PREFIX: &str = "mock-app-secret-";

struct Env {
    mock: MockServer,
    dir: tempfile::TempDir,
}

impl Env {
    fn new(platform: MockPlatform) -> Self {
        Self::with_mock(MockServer::builder().platform(platform).start().unwrap())
    }

    fn with_mock(mock: MockServer) -> Self {
        Self {
            mock,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Imports a dashboard token of `user` with `token import`.
    fn import(&self, user: &str) -> Value {
        self.import_token(user).0
    }

    /// [`import`](Self::import), with the token imported.
    fn import_token(&self, user: &str) -> (Value, String) {
        let issued = self
            .mock
            .issue_token(user, igdisplay_mock::TokenLifetime::LongLived)
            .unwrap();
        let input = format!("{}\n", issued.access_token);
        let output = with_stdin(
            &mut self.command(&["token", "import", "--json"]),
            input.as_bytes(),
        );
        assert_success(&output);
        (
            serde_json::from_slice(&output.stdout).unwrap(),
            issued.access_token,
        )
    }

    fn command(&self, args: &[&str]) -> Command {
        let app = self.mock.app();
        let platform = match self.mock.platform() {
            MockPlatform::BasicDisplay => "basic-display",
            _ => "instagram-login",
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_igdisplay"));
        command
            .args(args)
            .env_clear()
            .env("IGDISPLAY_PLATFORM", platform)
            .env("IGDISPLAY_APP_ID", &app.id)
            .env("IGDISPLAY_APP_SECRET", &app.secret)
            .env("IGDISPLAY_REDIRECT_URI", "https://app.example/auth/")
            .env("IGDISPLAY_MOCK", self.mock.base_url())
            .env("IGDISPLAY_TOKEN_FILE", self.dir.path().join("tokens.json"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Logs in with `auth url` and `auth callback`, as the mock approves for `user`.
    fn login(&self, user: &str) -> Value {
        let url = self.json(&["auth", "url"])["url"].as_str().unwrap().to_owned();
        let location = self.mock.approve(&url, user).unwrap();
        self.json(&["auth", "callback", &location])
    }

    /// Logs `cafe_nova` in and returns the first image of her library, as `media list` prints it.
    fn first_image(&self) -> Value {
        self.login("cafe_nova");
        let items = self.json(&["media", "list", "--all"]);
        items
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["media_type"] == "IMAGE")
            .unwrap()
            .clone()
    }
}

/// Asserts that `output` is a success, showing its stderr when it is not.
#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` with `input` on its stdin (then closed), its output captured.
fn with_stdin(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The first line a child prints (the URL a login prints first), without its newline.
fn first_line(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.as_mut().unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') && stdout.read(&mut byte).unwrap() == 1 {
        line.push(char::from(byte[0]));
    }
    line.trim().to_owned()
}

/// The `index.json` of an export into `out`.
fn read_index(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap()
}

/// What a browser does with the login listener's answer to the redirect `location`: a 303
/// to a URL without the code or the state, then the page there. The final status and page.
fn follow_callback(location: &str) -> (u16, String) {
    let callback = location.trim_end_matches("#_");
    let (status, target, _) = get(callback);
    assert_eq!(status, 303, "the callback is answered with a redirect");
    let target = target.unwrap();
    assert!(
        !target.contains("code=") && !target.contains("state="),
        "{target}"
    );
    let origin: String = callback.split('/').take(3).collect::<Vec<_>>().join("/");
    let (status, _, page) = get(&format!("{origin}{target}"));
    (status, page)
}

/// A GET over a plain socket: the status and the Location header.
fn get(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let location = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .map(|l| l["location:".len()..].trim().to_owned());
    (status, location, response)
}

#[path = "cli/doctor.rs"]
mod doctor;
#[path = "cli/downloads.rs"]
mod downloads;
#[path = "cli/export.rs"]
mod export;
#[path = "cli/feeds.rs"]
mod feeds;
#[path = "cli/flow.rs"]
mod flow;
#[path = "cli/login.rs"]
mod login;
#[path = "cli/memory.rs"]
mod memory;
#[path = "cli/social.rs"]
mod social;
#[path = "cli/store.rs"]
mod store;
#[path = "cli/usage.rs"]
mod usage;

// The helpers more than one room uses.
use doctor::mock_on_system_clock;
use login::{counting_listener, listening_login, listening_login_with};
use store::{KillOnDrop, exchange, exchange_raw, one_request, with_store};
