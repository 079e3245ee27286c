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
        let mut child = self
            .command(&["token", "import", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{}\n", issued.access_token).as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
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

#[test]
fn the_demo_runs_the_whole_flow_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let output = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args(["demo", "--out", out.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Started a mock Instagram (instagram-login)",
        "state=[redacted]",
        "#_",
        "short-lived token",
        "long-lived token",
        "refreshed the token",
        "@jayposiris (MEDIA_CREATOR), 40 media",
        "40 items in 4 requests",
        "The items of album",
        "40 items, 89 files downloaded",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("IGAA"), "a token was printed");
    assert!(out.join("index.json").exists());
    let basic = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args([
            "demo",
            "--platform",
            "basic-display",
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(basic.status.success());
    assert!(String::from_utf8_lossy(&basic.stdout).contains("(basic-display)"));
}

#[test]
fn login_read_and_export_against_a_running_mock() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let login = env.login("jayposiris");
    let user_id = env.mock.users()[0].id.clone();
    assert_eq!(login["user_id"], user_id);
    let stored = std::fs::read_to_string(env.dir.path().join("tokens.json")).unwrap();
    assert!(stored.contains(&user_id));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.dir.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !env.dir.path().join("pending-authorization.json").exists(),
        "the state is single use"
    );

    let me = env.json(&["me"]);
    assert_eq!(
        (me["username"].as_str(), me["id"].as_str()),
        (Some("jayposiris"), Some(user_id.as_str()))
    );
    let human = env.ok(&["me"]);
    assert!(human.contains("@jayposiris") && human.contains("MEDIA_CREATOR"));

    let all = env.json(&["media", "list", "--all"]);
    let items = all.as_array().unwrap();
    assert_eq!(items.len(), 40);
    assert!(items.iter().all(|m| m["id"].is_string()), "ids are strings");
    let page = env.json(&["media", "list", "--limit", "5"]);
    assert_eq!(page.as_array().unwrap().len(), 5);
    let table = env.ok(&["media", "list", "--limit", "3"]);
    assert!(table.starts_with("ID") && table.lines().count() == 4, "{table}");
    let album = items
        .iter()
        .find(|m| m["media_type"] == "CAROUSEL_ALBUM")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let children = env.json(&["media", "children", album]);
    assert!(children.as_array().unwrap().len() >= 2);
    let one = env.json(&["media", "get", album]);
    assert_eq!(one["id"], album);
    let newest = items[0]["timestamp"].as_str().unwrap();
    let since = env.json(&["media", "list", "--all", "--since", newest]);
    assert_eq!(since.as_array().unwrap().len(), 1);

    let out = env.dir.path().join("export");
    let first = env.json(&["export", out.to_str().unwrap(), "--concurrency", "4"]);
    assert_eq!(
        (first["items"].as_u64(), first["downloaded"].as_u64()),
        (Some(40), Some(89))
    );
    let second = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        (second["downloaded"].as_u64(), second["skipped"].as_u64()),
        (Some(0), Some(89)),
        "a second run resumes"
    );
    check_export(&out);

    let status = env.json(&["token", "status"]);
    assert_eq!(
        (status["kind"].as_str(), status["refresh_due"].as_bool()),
        (Some("long_lived"), Some(false))
    );
    let early = env.run(&["token", "refresh"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("24 hours"));
    env.mock.advance(Duration::from_secs(25 * 3600));
    let refreshed = env.json(&["token", "refresh"]);
    assert!(refreshed["expires_at"].as_str().unwrap().starts_with("2026-03-1"));
    let logout = env.json(&["token", "logout"]);
    assert_eq!(logout["removed"], true);
    let none = env.run(&["me"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no one is logged in"));
}

fn check_export(out: &Path) {
    let index = read_index(out);
    assert!(
        index["exported_at"].as_str().unwrap().starts_with("2026-01-15T"),
        "dated on the mock's clock, not this machine's: {}",
        index["exported_at"]
    );
    let text = index.to_string();
    assert!(!text.contains("access_token") && !text.contains("_nc_sig") && !text.contains("IGAA"));
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), 40);
    let video = items.iter().find(|i| i["media_type"] == "VIDEO").unwrap();
    let roles: Vec<&str> = video["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["media", "thumbnail"]);
    for file in video["files"].as_array().unwrap() {
        let path = out.join(file["name"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            file["bytes"].as_u64().unwrap()
        );
    }
    // Every post names the file that shows it: a video its poster, an album its first
    // item's, a photo itself; only the flagged photo has none, and the videos Meta sent
    // without their file say why.
    let thumbnail = video["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "thumbnail")
        .unwrap();
    assert_eq!(video["picture"], thumbnail["name"]);
    let album = items
        .iter()
        .find(|i| i["media_type"] == "CAROUSEL_ALBUM")
        .unwrap();
    assert_eq!(album["picture"], album["children"][0]["picture"]);
    let without: Vec<&Value> = items.iter().filter(|i| i.get("picture").is_none()).collect();
    assert_eq!(without.len(), 1, "{without:?}");
    assert_eq!(without[0]["media_type"], "IMAGE");
    let unplayable = items.iter().filter(|i| i.get("unplayable").is_some()).count();
    assert_eq!(unplayable, 2, "licensed audio and copyright");
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn login_listens_on_a_loopback_redirect_uri() {
    let env = Env::new(MockPlatform::BasicDisplay);
    let (child, url, port) = listening_login(&env);
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    assert!(location.starts_with(&redirect) && location.ends_with("#_"));
    // A stray request first (a favicon): it must not consume the login.
    assert_eq!(get(&format!("http://127.0.0.1:{port}/favicon.ico")).0, 404);
    let (status, page) = follow_callback(&location);
    assert_eq!(status, 200);
    let page = page.to_ascii_lowercase();
    assert!(page.contains("cache-control: no-store") && page.contains("referrer-policy: no-referrer"));
    assert!(!page.contains("code=") && !page.contains("<script"));
    let output = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.status.success(), "{all}");
    assert!(all.contains("Logged in as @jayposiris ("), "{all}");
    assert!(env.dir.path().join("tokens.json").exists());
}

#[test]
fn a_dashboard_token_is_imported_from_stdin() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let imported = env.import("cafe_nova");
    assert_eq!(imported["username"], "cafe_nova");
    assert_eq!(env.json(&["me"])["username"], "cafe_nova");
}

#[test]
fn failures_are_one_sentence_with_a_fix_and_the_right_exit_code() {
    let env = Env::new(MockPlatform::InstagramLogin);
    // A usage error: no app id, no secret, no redirect URI, and no mock to take them from:
    // every missing setting in one message.
    let output = env
        .command(&["auth", "url"])
        .env_remove("IGDISPLAY_APP_ID")
        .env_remove("IGDISPLAY_APP_SECRET")
        .env_remove("IGDISPLAY_REDIRECT_URI")
        .env_remove("IGDISPLAY_MOCK")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "a login needs settings that are missing: the app id (--app-id or IGDISPLAY_APP_ID); the app secret"
        ) && stderr.contains("; the redirect URI (--redirect-uri or IGDISPLAY_REDIRECT_URI")
            && stderr.contains("hint: set them"),
        "{stderr}"
    );
    // A callback whose state does not match is refused, and the pending login stays.
    env.ok(&["auth", "url"]);
    let forged = env.run(&[
        "auth",
        "callback",
        "https://app.example/auth/?code=AQxyz&state=forged#_",
    ]);
    assert_eq!(forged.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&forged.stderr).contains("not for the login in progress"));
    assert!(env.dir.path().join("pending-authorization.json").exists());
    // A cancelled login.
    let url = env.json(&["auth", "url"])["url"].as_str().unwrap().to_owned();
    let location = env.mock.deny(&url).unwrap();
    let denied = env.run(&["auth", "callback", &location]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("cancelled"));
    // Unknown platform and bad arguments are usage errors.
    assert_eq!(env.run(&["--platform", "myspace", "me"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["media", "list", "--limit", "many"]).status.code(),
        Some(2)
    );
    // No secret in help or errors.
    for args in [
        &["--help"][..],
        &["auth", "url", "--redirect-uri", "nope"][..],
        &["me"][..],
    ] {
        let output = env.run(args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!all.contains(SECRET_CANARY_PREFIX), "{args:?}: {all}");
    }
}

#[test]
fn signed_requests_are_verified_with_the_app_secret() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let value = env.mock.signed_request("jayposiris").unwrap();
    let payload = env.json(&["signed-request", "verify", &value]);
    assert_eq!(payload["user_id"], env.mock.users()[0].id);
    let tampered = format!("{}x", value);
    let output = env.run(&["signed-request", "verify", &tampered]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn basic_display_against_the_real_hosts_says_it_is_shut_down() {
    let env = Env::new(MockPlatform::BasicDisplay);
    let output = env
        .command(&["auth", "url"])
        .env_remove("IGDISPLAY_MOCK")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("switched off the Instagram Basic Display API on 2024-12-04")
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("https://api.instagram.com/oauth/authorize?")
    );
}

#[test]
fn an_expired_media_url_is_renewed_by_listing_its_page_again() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let items = env.json(&["media", "list", "--all"]);
    let image = items
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["media_type"] == "IMAGE")
        .unwrap();
    let id = image["id"].as_str().unwrap();
    // The CDN refuses the first fetch of this file as an expired link would.
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", &format!("/cdn/v/{id}.jpg"), 403, serde_json::json!(null)).times(1),
    );
    let out = env.dir.path().join("export");
    let listings = || {
        env.mock
            .journal()
            .iter()
            .filter(|e| e.method == "GET" && e.path.ends_with("/media"))
            .count()
    };
    let before = listings();
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(summary["items"], 3);
    assert_eq!(
        listings() - before,
        2,
        "the page listed once more for fresh links"
    );
    env.mock.expect_requests("GET", &format!("/{id}"), 0).unwrap();
    assert_eq!(
        std::fs::read(out.join(format!("{id}.jpg"))).unwrap()[..2],
        [0xFF, 0xD8]
    );
}

#[test]
fn mock_serve_prints_where_it_listens_first() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
        .args([
            "mock",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--platform",
            "basic-display",
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    let mut byte = [0u8; 1];
    while !first.ends_with('\n') && stdout.read(&mut byte).unwrap() == 1 {
        first.push(char::from(byte[0]));
    }
    let base = first.trim().strip_prefix("listening on ").unwrap().to_owned();
    let (status, _, body) = get(&format!("{base}/_mock/health"));
    assert_eq!(status, 200);
    assert!(body.contains("basic-display"));
    // Each request is one line on stderr, its secrets masked (issue 15).
    assert_eq!(
        get(&format!("{base}/me?fields=id&access_token=IGQVJSECRETCANARY")).0,
        400
    );
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(log.trim(), "GET /me fields=id&access_token=[redacted] 400");
}

#[test]
fn a_failed_download_keeps_the_rest_and_the_next_run_resumes() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    // Refused twice: the first fetch, then the fetch of the re-fetched URL.
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", &format!("/cdn/v/{id}.jpg"), 403, serde_json::json!(null)).times(2),
    );
    let out = env.dir.path().join("export");
    let failed = env.run(&["export", out.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("run the same export again"));
    assert!(!out.join(format!("{id}.jpg")).exists());
    let index = read_index(&out);
    assert_eq!(index["items"].as_array().unwrap().len(), 3);
    let resumed = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(resumed["downloaded"], 1, "only the missing file: {resumed}");
    assert!(out.join(format!("{id}.jpg")).exists());
}

#[test]
fn an_interrupted_export_resumes_with_its_complete_files_and_clears_its_leftovers() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    let out = env.dir.path().join("export");
    let first = env.json(&["export", out.to_str().unwrap()]);
    // What a kill mid-run leaves: no index, one file not yet renamed, an unfinished index.
    std::fs::remove_file(out.join("index.json")).unwrap();
    std::fs::rename(
        out.join(format!("{id}.jpg")),
        out.join(format!(".{id}.jpg.0123456789abcdef.tmp")),
    )
    .unwrap();
    std::fs::write(
        out.join(".index.json.0123456789abcdef.tmp"),
        "{\"version\":1,\"items\":[",
    )
    .unwrap();
    let resumed = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(resumed["downloaded"], 1, "only the unfinished file: {resumed}");
    assert_eq!(resumed["skipped"], first["downloaded"].as_u64().unwrap() - 1);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(names, Vec::<String>::new(), "no leftover remains");
    assert_eq!(read_index(&out)["items"].as_array().unwrap().len(), 3);
}

/// Every file of an export (the index aside), by name, with its bytes.
fn exported_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "index.json")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Each exported file's identity on disk (device, inode, modification time): a file written
/// again, even with the same bytes, has another.
fn written(dir: &Path) -> std::collections::BTreeMap<String, (u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap())
                .filter(|e| {
                    e.file_name() != "index.json" && !e.file_name().to_string_lossy().starts_with('.')
                })
                .map(|e| {
                    let meta = e.metadata().unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        (meta.dev(), meta.ino(), meta.modified().unwrap()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reliability case 59: an export of 500 items under seeded random faults (drops, resets
/// mid-body, 5xx, transient Graph errors, truncated and malformed JSON, slow drips, delays,
/// expired CDN links), run again until it succeeds. After every run, failed or not, each file
/// under its final name holds exactly the bytes of a clean export (no partial file), and no
/// file completed by an earlier run was written again (no duplicate download); no run prints
/// the token or the app secret; the end is the same files and index as a clean export.
#[test]
#[cfg(unix)]
fn an_export_under_random_faults_converges_to_the_clean_export() {
    use igdisplay_mock::{Fault, FaultKind, Seed};
    let mock = MockServer::builder()
        .calls_per_hour(None)
        .seed(Seed::demo().with_generated_user("bulk", 500, 10))
        .start()
        .unwrap();
    let env = Env::with_mock(mock);
    let (_, token) = env.import_token("bulk");
    let canaries = [token, env.mock.app().secret];
    let clean = env.dir.path().join("clean");
    env.json(&["export", clean.to_str().unwrap(), "--concurrency", "4"]);
    let expected = exported_files(&clean);
    assert!(
        expected.len() >= 500,
        "a file per item at least: {}",
        expected.len()
    );
    let faults = [
        ("/", FaultKind::DropConnection, 0.03),
        ("/", FaultKind::ResetMidBody, 0.03),
        ("/", FaultKind::Status { status: 503 }, 0.03),
        ("/", FaultKind::Latency { ms: 20 }, 0.10),
        ("/me", FaultKind::GraphTransient, 0.05),
        ("/me", FaultKind::TruncatedJson, 0.05),
        ("/me", FaultKind::MalformedJson, 0.03),
        (
            "/cdn/",
            FaultKind::SlowDrip {
                chunk: 4096,
                delay_ms: 1,
            },
            0.05,
        ),
        ("/cdn/", FaultKind::Status { status: 403 }, 0.05),
    ];
    for (prefix, kind, probability) in faults {
        env.mock
            .add_fault(Fault::new(prefix, kind).probability(probability));
    }
    let chaos = env.dir.path().join("chaos");
    let mut failed_runs = 0;
    let mut complete = std::collections::BTreeMap::new();
    loop {
        let output = env.run(&["export", chaos.to_str().unwrap(), "--concurrency", "4"]);
        let printed = [&output.stdout[..], &output.stderr[..]].concat();
        let printed = String::from_utf8_lossy(&printed);
        for canary in &canaries {
            assert!(!printed.contains(canary.as_str()), "a secret was printed");
        }
        let files = exported_files(&chaos);
        for (name, bytes) in files.iter().filter(|(name, _)| !name.starts_with('.')) {
            assert!(expected.get(name) == Some(bytes), "{name} is partial or unknown");
        }
        let now = written(&chaos);
        for (name, identity) in &complete {
            assert_eq!(now.get(name), Some(identity), "{name} was downloaded again");
        }
        complete = now;
        if output.status.success() {
            break;
        }
        assert_eq!(
            output.status.code(),
            Some(1),
            "a fault is a runtime failure: {printed}"
        );
        failed_runs += 1;
        assert!(failed_runs < 60, "the export did not converge");
    }
    assert!(failed_runs > 0, "the faults made some runs fail");
    let faults_hit = env
        .mock
        .journal()
        .iter()
        .filter(|e| e.status >= 400 || e.status == 0)
        .count();
    assert!(faults_hit > 10, "the faults were rolled: {faults_hit}");
    assert!(
        exported_files(&chaos) == expected,
        "the same files with the same bytes, and no leftover"
    );
    let items = |dir: &Path| read_index(dir)["items"].clone();
    assert_eq!(items(&chaos), items(&clean));
}

/// The subcommand paths under `path` (`["auth", "url"]`, …), read from each `--help`.
fn subcommands(env: &Env, path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = env.ok(&args);
    let mut found = Vec::new();
    let section = help.split("Commands:").nth(1).unwrap_or_default();
    for line in section.lines().skip(1) {
        if !line.starts_with("  ") || line.trim().is_empty() {
            break;
        }
        if line.starts_with("   ") {
            continue; // a wrapped description
        }
        let name = line.split_whitespace().next().unwrap_or_default().to_owned();
        if name != "help" {
            let mut child = path.to_vec();
            child.push(name);
            found.extend(subcommands(env, &child));
            found.push(child);
        }
    }
    found
}

/// Reliability case 29: no `--help` of any command shows a secret from the environment or
/// the configuration (clap prints `[env: NAME=value]` for options read from the environment).
#[test]
fn no_help_page_shows_a_secret() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let token_file = std::fs::read_to_string(env.dir.path().join("tokens.json")).unwrap();
    let token: Value = serde_json::from_str(&token_file).unwrap();
    let token = token.to_string();
    let secret = env.mock.app().secret;
    let commands = subcommands(&env, &[]);
    assert!(commands.len() >= 10, "{commands:?}");
    for command in commands.iter().chain([&Vec::new()]) {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let help = env.ok(&args);
        assert!(!help.contains(&secret), "{args:?} shows the app secret");
        for word in token.split('"').filter(|w| w.starts_with("IG")) {
            assert!(!help.contains(word), "{args:?} shows a token");
        }
    }
}

/// Reliability case 67: with its output piped (no terminal), no command writes an ANSI escape
/// sequence: no colour, no progress bar, no cursor movement.
#[test]
fn piped_output_carries_no_escape_sequence() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let out = env.dir.path().join("export");
    let runs = [
        vec!["me"],
        vec!["media", "list", "--all"],
        vec!["token", "status"],
        vec!["export", out.to_str().unwrap()],
        vec!["media", "get", "no-such-id"],
        vec!["no-such-command"],
    ];
    for args in runs {
        let output = env.run(&args);
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            assert!(
                !bytes.contains(&0x1b),
                "{args:?} wrote an escape to {stream}: {}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// Reliability case 66: a "media" file that is not an image or a video (an error page, a
/// login page) is refused and never saved under a media name; the rest is exported.
#[test]
fn a_download_that_is_not_media_is_refused() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    env.mock.stub(igdisplay_mock::Stub::json(
        "GET",
        &format!("/cdn/v/{id}.jpg"),
        200,
        serde_json::json!({"login": "required"}),
    ));
    let out = env.dir.path().join("export");
    let failed = env.run(&["export", out.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("is not an image or a video (content type `application/json`)"),
        "{stderr}"
    );
    let names: Vec<String> = exported_files(&out).into_keys().collect();
    assert!(!names.iter().any(|n| n.starts_with(&id)), "{names:?}");
    assert!(names.len() >= 3, "the other files are kept: {names:?}");
}

/// Reliability case 63: `--token-store keyring` on a machine without a Secret Service (here:
/// a D-Bus address where nothing listens) warns once per run and keeps the tokens in the token
/// file, so a headless server still works.
#[test]
fn the_keyring_falls_back_to_the_token_file_with_a_warning_where_there_is_none() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let issued = env
        .mock
        .issue_token("cafe_nova", igdisplay_mock::TokenLifetime::LongLived)
        .unwrap();
    let keyring = |args: &[&str]| {
        let mut command = env.command(args);
        command.env("IGDISPLAY_TOKEN_STORE", "keyring").env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/igdisplay-test-bus",
        );
        command
    };
    let mut child = keyring(&["token", "import"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(issued.access_token.as_bytes())
        .unwrap();
    let imported = child.wait_with_output().unwrap();
    assert!(imported.status.success());
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(
        stderr.starts_with("warning: there is no system keyring here ("),
        "{stderr}"
    );
    assert!(stderr.contains("tokens are kept in"), "{stderr}");
    assert!(!stderr.contains(&issued.access_token));
    assert!(env.dir.path().join("tokens.json").exists());
    let me = keyring(&["me", "--json"]).output().unwrap();
    assert!(me.status.success());
    let me: Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["username"], "cafe_nova");
}

#[test]
fn captions_cannot_drive_the_terminal() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("jayposiris");
    let hostile = serde_json::json!({"data": [
        {"id": "17900000000000001", "media_type": "IMAGE", "caption": "\u{1b}]0;pwned\u{7}\u{1b}[2Jhello"}
    ]});
    env.mock
        .stub(igdisplay_mock::Stub::json("GET", "/me/media", 200, hostile).times(1));
    let table = env.ok(&["media", "list", "--limit", "1"]);
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "{table:?}");
    assert!(table.contains("hello"));
}

/// `igdisplay login` waiting on a loopback redirect URI: the child, and the authorize URL it
/// printed.
fn listening_login(env: &Env) -> (std::process::Child, String, u16) {
    listening_login_with(env, &["login", "--no-browser", "--timeout", "30"], None)
}

/// `listening_login` with other arguments and, when given, another `PATH`.
fn listening_login_with(env: &Env, args: &[&str], path: Option<&Path>) -> (std::process::Child, String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    env.mock.add_redirect_uri(&redirect);
    let mut command = env.command(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command
        .env("IGDISPLAY_REDIRECT_URI", &redirect)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.as_mut().unwrap();
    let mut url = String::new();
    let mut byte = [0u8; 1];
    while !url.ends_with('\n') {
        if stdout.read(&mut byte).unwrap() == 0 {
            break;
        }
        url.push(char::from(byte[0]));
    }
    (child, url.trim().to_owned(), port)
}

#[test]
fn a_forged_or_stateless_callback_does_not_end_the_login() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let (child, url, port) = listening_login(&env);
    let base = format!("http://127.0.0.1:{port}/callback");
    // Any web page could send the browser here: neither ends the login.
    assert_eq!(
        get(&format!("{base}?error=access_denied&error_reason=user_denied")).0,
        400
    );
    assert_eq!(get(&format!("{base}?code=FORGED&state=forged")).0, 400);
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    let (status, page) = follow_callback(&location);
    assert_eq!(status, 200);
    assert!(page.contains("You are logged in"), "{page}");
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    env.mock
        .expect_requests("POST", "/oauth/access_token", 1)
        .unwrap();
}

#[test]
fn an_idle_connection_does_not_hold_up_the_login() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let (child, url, port) = listening_login(&env);
    // A connection that never sends a request stays open while the real callback arrives.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    let (status, _) = follow_callback(&location);
    assert_eq!(status, 200);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_callback_with_another_state_keeps_the_pending_login() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let url = env.json(&["auth", "url"])["url"].as_str().unwrap().to_owned();
    let forged = env.run(&[
        "auth",
        "callback",
        "https://app.example/auth/?code=AQxyz&state=forged",
    ]);
    assert_eq!(forged.status.code(), Some(2));
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    let done = env.json(&["auth", "callback", &location]);
    assert_eq!(done["kind"], "long_lived");
}

/// A listener on loopback that counts the connections made to it, each answered with an
/// empty PNG.
fn counting_listener() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ =
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (addr, count)
}

/// Graph answers whose links name a listener on loopback, the metadata address, a private
/// network, another host and `file:`, and a redirect from the mock's CDN path to loopback:
/// the export connects to none of them, marks those items unavailable with the reason,
/// exports the rest and succeeds.
#[test]
fn an_export_never_fetches_links_naming_internal_or_foreign_hosts() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let good = env.first_image();
    let (internal, connections) = counting_listener();
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", "/cdn/v/redirected.jpg", 302, serde_json::json!({}))
            .header("location", &format!("http://{internal}/internal.png")),
    );
    let hostile = [
        format!("http://{internal}/internal.png"),
        format!("https://{internal}/internal.png"),
        format!("http://localhost:{}/internal.png", internal.port()),
        "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
        "https://169.254.169.254/latest/".to_owned(),
        "https://10.0.0.7/a.jpg".to_owned(),
        "https://evil.example/a.jpg".to_owned(),
        "file:///etc/passwd".to_owned(),
        format!("{}/cdn/v/redirected.jpg", env.mock.base_url()),
    ];
    let mut data: Vec<Value> = hostile
        .iter()
        .enumerate()
        .map(|(n, url)| {
            serde_json::json!({"id": format!("17900000000000000{n:02}"), "media_type": "VIDEO",
                "thumbnail_url": url, "media_url": url, "permalink": url})
        })
        .collect();
    data.push(good.clone());
    env.mock.stub(igdisplay_mock::Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({ "data": data }),
    ));
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection to the listener"
    );
    assert_eq!(summary["unavailable"], 2 * hostile.len(), "{summary}");
    let id = good["id"].as_str().unwrap();
    assert!(
        out.join(format!("{id}.jpg")).exists(),
        "the CDN's file is exported"
    );
    let index = read_index(&out);
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), hostile.len() + 1);
    for item in items.iter().filter(|item| item["id"] != id) {
        assert!(item["unavailable"].is_string(), "{item}");
        assert!(item["files"].as_array().unwrap().is_empty(), "{item}");
        assert!(
            item["permalink"].is_null(),
            "only Instagram's pages are kept: {item}"
        );
    }
}

#[test]
fn a_download_redirected_to_another_scheme_is_refused_and_the_rest_exported() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    // Stays on loopback even if the policy were broken: ftp is simply not followed.
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", &format!("/cdn/v/{id}.jpg"), 302, serde_json::json!(null))
            .header("location", "ftp://127.0.0.1/elsewhere")
            .times(2),
    );
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(summary["unavailable"], 1, "{summary}");
    assert!(!out.join(format!("{id}.jpg")).exists());
    let index = read_index(&out);
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the other items are kept");
    let refused = items.iter().find(|item| item["id"] == id.as_str()).unwrap();
    assert!(
        refused["unavailable"].as_str().unwrap().contains("scheme"),
        "{refused}"
    );
}

#[test]
fn a_media_id_listed_twice_is_exported_once() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let image = env.first_image();
    // A page that repeats an item, as a misbehaving API might: one download, one entry.
    let page = serde_json::json!({"data": [image.clone(), image.clone()]});
    env.mock
        .stub(igdisplay_mock::Stub::json("GET", "/me/media", 200, page).times(1));
    let out = env.dir.path().join("export");
    let summary = env.json(&["export", out.to_str().unwrap()]);
    assert_eq!(
        (summary["items"].as_u64(), summary["downloaded"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
    let index = read_index(&out);
    assert_eq!(index["items"].as_array().unwrap().len(), 1);
}

/// Reliability case 62: a browser that cannot be opened (an `xdg-open` that fails noisily, as
/// it does without a display) leaves one line and the URL, and the login goes on waiting and
/// completes; then the listener is gone (case 61: one callback, then it stops).
#[cfg(unix)]
#[test]
fn a_browser_that_cannot_open_leaves_the_url_and_the_login_goes_on() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(MockPlatform::InstagramLogin);
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        "#!/bin/sh\necho 'xdg-open: no method available for opening' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, url, port) = listening_login_with(&env, &["login", "--timeout", "30"], Some(&bin));
    assert!(url.starts_with(&env.mock.authorize_url()), "{url}");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    assert_eq!(follow_callback(&location).0, 200);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Open this URL in a browser:"), "{stderr}");
    assert!(
        !stderr.contains("no method available"),
        "the opener's noise is not shown: {stderr}"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener stopped after the login"
    );
}

/// Reliability case 61: with no redirect before `--timeout`, the login ends with a clear
/// message and a hint, exit 1.
#[test]
fn a_login_that_gets_no_redirect_times_out_with_a_hint() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let (child, _, _) = listening_login_with(&env, &["login", "--no-browser", "--timeout", "1"], None);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no redirect arrived within 1 s"), "{stderr}");
    assert!(
        stderr.contains("hint: run `igdisplay login` again, or pass --timeout"),
        "{stderr}"
    );
}

/// Issue 13, defect 2: igdisplay's own configuration directory, found open (`0755`, as an
/// older version left it), is made private when the default token file is used.
#[cfg(unix)]
#[test]
fn the_default_token_directory_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(MockPlatform::InstagramLogin);
    let config = env.dir.path().join("config");
    let own = config.join("igdisplay");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = env
        .command(&["token", "status"])
        .env_remove("IGDISPLAY_TOKEN_FILE")
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("no one is logged in"));
    let mode = std::fs::metadata(&own).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Issue 15: a command's help shows its own options first and the global ones apart, under
/// "Global options" (the summary form, `-h`, as a user first sees it).
#[test]
fn help_shows_a_commands_own_options_before_the_global_ones() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    insta::assert_snapshot!("mock_serve_help", help(&["mock", "serve", "-h"]));
    insta::assert_snapshot!("media_list_help", help(&["media", "list", "-h"]));
}

/// Issue 15: `media list --limit 0` is refused instead of silently showing one item, and
/// `media show` is `media get`.
#[test]
fn a_zero_limit_is_refused_and_show_is_get() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let zero = env.run(&["media", "list", "--limit", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("0 is not in 1.."));
    let id = env.first_image()["id"].as_str().unwrap().to_owned();
    assert_eq!(env.json(&["media", "show", &id])["id"], id.as_str());
}

/// Issue 15: a network failure names the host it could not reach and, with `--mock`, asks
/// whether the mock is running.
#[test]
fn an_unreachable_mock_is_named_with_a_hint() {
    let env = Env::with_mock(mock_on_system_clock(0));
    env.import("cafe_nova");
    let mut me = env.command(&["me"]);
    let Env { mock, dir: _dir } = env;
    let gone = mock.addr();
    drop(mock); // the mock stops: its port refuses connections
    let output = me.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("igdisplay: could not reach {gone}: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "hint: is the mock running at http://{gone}? Start one with `igdisplay mock serve`"
        )),
        "{stderr}"
    );
}

/// Issue 15: a token from a mock is never sent to Instagram (nor to another mock): the
/// record keeps where it came from, and the command says so instead of sending it.
#[test]
fn a_mock_token_is_never_sent_elsewhere() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("jayposiris");
    let other = MockServer::start().unwrap();
    for (target, named) in [
        (Some(other.base_url().to_owned()), other.base_url().to_owned()),
        (None, "https://graph.instagram.com".to_owned()),
    ] {
        let mut command = env.command(&["me"]);
        match &target {
            Some(base) => command.env("IGDISPLAY_MOCK", base),
            None => command.env_remove("IGDISPLAY_MOCK"),
        };
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "the stored token was issued by {}; it is not sent to {named}",
                env.mock.base_url()
            )),
            "{stderr}"
        );
    }
    assert_eq!(other.requests_total(), 0, "nothing reached the other mock");
}

/// Issue 15: a 5xx that outlasts the retries says how many attempts were made and what to do.
#[test]
fn a_server_error_says_how_often_it_was_tried() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    env.mock.add_fault(igdisplay_mock::Fault::new(
        "/me",
        igdisplay_mock::FaultKind::Status { status: 503 },
    ));
    let output = env.run(&["me"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unexpected response with status 503 after 3 attempt(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the server answered 503 to all 3 attempt(s): Instagram is having trouble"),
        "{stderr}"
    );
}

/// Issue 15: `token status` names the user by username and, like `gh auth status`, exits 1
/// when the token no longer works: expired, or revoked by Instagram.
#[test]
fn token_status_exits_1_for_an_expired_or_revoked_token() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("jayposiris");
    let good = env.run(&["token", "status"]);
    assert!(good.status.success());
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(stdout.contains("user          @jayposiris ("), "{stdout}");
    assert!(stdout.contains("accepted      yes"), "{stdout}");

    // Revoked: the user removed the app (the mock's deauthorize revokes the user's tokens).
    assert!(env.mock.revoke_tokens("jayposiris").unwrap() >= 1);
    let status = env.run(&["token", "status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("accepted      no (revoked or invalid)"));
    assert!(String::from_utf8_lossy(&status.stderr).contains("hint: run `igdisplay login` again"));

    // Expired: sixty days later.
    env.login("cafe_nova");
    env.mock.advance(Duration::from_secs(61 * 86_400));
    let nova = env
        .mock
        .users()
        .into_iter()
        .find(|u| u.username == "cafe_nova")
        .unwrap();
    let expired = env.run(&["token", "status", "--user", &nova.id]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired at"));
}

/// Issue 15: in the pasted-URL login, a bad paste (not a URL, another login's) asks again;
/// the right URL then completes the login.
#[test]
fn a_bad_paste_asks_again() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let mut child = env
        .command(&["login", "--no-browser"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.as_mut().unwrap();
    let mut url = String::new();
    let mut byte = [0u8; 1];
    while !url.ends_with('\n') && stdout.read(&mut byte).unwrap() == 1 {
        url.push(char::from(byte[0]));
    }
    let location = env.mock.approve(url.trim(), "jayposiris").unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "not a url at all").unwrap();
    writeln!(stdin, "https://app.example/auth/?code=AQx&state=another-login#_").unwrap();
    writeln!(stdin, "{location}").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("That is not a redirect URL"), "{stderr}");
    assert!(stderr.contains("That URL is from another login"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Logged in as @jayposiris"));
}

/// Issue 15: with `--mock`, a login takes the app id, secret and redirect URI the mock knows
/// when none is configured, and says so.
#[test]
fn with_a_mock_the_app_settings_come_from_the_mock() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let output = env
        .command(&["auth", "url", "--json"])
        .env_remove("IGDISPLAY_APP_ID")
        .env_remove("IGDISPLAY_APP_SECRET")
        .env_remove("IGDISPLAY_REDIRECT_URI")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: using the mock's app id, app secret, redirect URI"),
        "{stderr}"
    );
    let url: Value = serde_json::from_slice(&output.stdout).unwrap();
    let url = url["url"].as_str().unwrap();
    assert!(url.contains(&format!("client_id={}", env.mock.app().id)), "{url}");
    assert!(
        !stderr.contains(&env.mock.app().secret),
        "the note never shows the secret"
    );
}

/// Issue 15: a rate-limit pause is announced on stderr instead of a silent wait.
#[test]
fn a_rate_limit_pause_is_announced() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let limited = serde_json::json!({"error": {"message": "Application request limit reached", "type": "OAuthException", "code": 4}});
    env.mock.stub(
        igdisplay_mock::Stub::json("GET", "/me", 429, limited)
            .header("retry-after", "1")
            .times(1),
    );
    let output = env.run(&["me"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Instagram asks us to wait 1 s (rate limit); Ctrl-C to stop"),
        "{stderr}"
    );
}

/// `igdisplay doctor` with `args`: its exit code and its report.
fn doctor(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    (output.status.code(), String::from_utf8(output.stdout).unwrap())
}

/// Runs `doctor` expecting a failure; the line of `check`.
fn doctor_failure(command: &mut Command, check: &str) -> String {
    let (code, report) = doctor(command);
    assert_eq!(code, Some(1), "{report}");
    doctor_line(&report, check).to_owned()
}

/// A mock on this machine's clock shifted by `offset` seconds.
fn mock_on_system_clock(offset: i64) -> MockServer {
    MockServer::builder()
        .clock(igdisplay_mock::MockClock::System { offset })
        .start()
        .unwrap()
}

/// The report line of `check`.
fn doctor_line<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{check}:")))
        })
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{report}"))
}

#[test]
fn doctor_passes_a_working_setup() {
    // A mock on this machine's time, as `igdisplay mock serve` runs by default.
    let env = Env::with_mock(mock_on_system_clock(0));
    env.login("cafe_nova");
    let callback = format!("{}/_mock/health", env.mock.base_url());
    let (code, report) = doctor(&mut env.command(&["doctor", "--deauthorize-url", &callback]));
    assert_eq!(code, Some(0), "{report}");
    for check in [
        "configuration",
        "redirect URI",
        "token",
        "scopes",
        "account",
        "clock",
        "rate limit",
        "deauthorize callback",
    ] {
        assert!(doctor_line(&report, check).starts_with("ok "), "{report}");
    }
    assert!(
        doctor_line(&report, "account").contains("@cafe_nova, BUSINESS"),
        "{report}"
    );
    assert!(
        doctor_line(&report, "data-deletion callback").starts_with("skip"),
        "{report}"
    );
}

#[test]
fn doctor_fails_a_missing_configuration() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let mut command = env.command(&["doctor"]);
    command
        .env_remove("IGDISPLAY_MOCK")
        .env_remove("IGDISPLAY_APP_ID")
        .env("IGDISPLAY_REDIRECT_URI", "app.example/auth");
    let line = doctor_failure(&mut command, "configuration");
    assert!(
        line.starts_with("FAIL  configuration: no app id") && line.contains("not an absolute http(s) URL"),
        "{line}"
    );
}

#[test]
fn doctor_fails_an_unregistered_redirect_uri() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let mut command = env.command(&["doctor"]);
    command.env("IGDISPLAY_REDIRECT_URI", "https://elsewhere.example/cb");
    let line = doctor_failure(&mut command, "redirect URI");
    assert!(
        line.starts_with("FAIL  redirect URI: the authorize window refuses it"),
        "{line}"
    );
    assert!(line.contains("fix: add it, byte for byte"), "{line}");
}

#[test]
fn doctor_fails_an_expired_token() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    env.mock.advance(Duration::from_secs(61 * 86_400));
    let line = doctor_failure(&mut env.command(&["doctor"]), "token");
    assert!(line.starts_with("FAIL  token: expired at"), "{line}");
}

#[test]
fn doctor_fails_a_personal_account() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.import("sam_personal");
    let line = doctor_failure(&mut env.command(&["doctor"]), "account");
    assert!(
        line.starts_with("FAIL  account: @sam_personal is a personal account"),
        "{line}"
    );
}

#[test]
fn doctor_fails_missing_scopes() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    // A token from a login that approved less (as an older app's did).
    let path = env.dir.path().join("tokens.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for record in file["tokens"].as_object_mut().unwrap().values_mut() {
        record["permissions"] = serde_json::json!(["instagram_business_content_publish"]);
    }
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let line = doctor_failure(&mut env.command(&["doctor"]), "scopes");
    assert!(
        line.starts_with("FAIL  scopes: not granted: instagram_business_basic"),
        "{line}"
    );
}

#[test]
fn doctor_fails_a_clock_an_hour_off() {
    let env = Env::with_mock(mock_on_system_clock(3600));
    env.login("cafe_nova");
    let line = doctor_failure(&mut env.command(&["doctor"]), "clock");
    assert!(
        line.starts_with("FAIL  clock: this machine is 3") && line.contains("s behind the server"),
        "{line}"
    );
}

#[test]
fn doctor_fails_a_nearly_spent_rate_budget() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let me = serde_json::json!({"id": "1", "username": "cafe_nova"});
    let usage = r#"{"call_count":95,"total_time":10,"total_cputime":10}"#;
    env.mock
        .stub(igdisplay_mock::Stub::json("GET", "/me", 200, me).header("x-app-usage", usage));
    let line = doctor_failure(&mut env.command(&["doctor"]), "rate limit");
    assert!(
        line.starts_with("FAIL  rate limit: 95 % of the budget used"),
        "{line}"
    );
}

#[test]
fn doctor_fails_an_unreachable_callback() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/deletion");
    let line = doctor_failure(
        &mut env.command(&["doctor", "--data-deletion-url", &url]),
        "data-deletion callback",
    );
    assert!(
        line.starts_with("FAIL  data-deletion callback: unreachable"),
        "{line}"
    );
}

/// `command` with its tokens in a SQLite store under the test's folder, sealed with `keys`.
fn with_store<'a>(env: &Env, command: &'a mut Command, keys: &str) -> &'a mut Command {
    command
        .env(
            "IGDISPLAY_STORE",
            format!("sqlite:{}", env.dir.path().join("fleet?#.db").display()),
        )
        .env("IGDISPLAY_STORE_KEYS", keys)
}

fn store_ok(env: &Env, args: &[&str], keys: &str) -> String {
    let output = with_store(env, &mut env.command(args), keys).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Logs `user` in with `auth url` and `auth callback`, the token going to the store.
fn store_login(env: &Env, keys: &str, user: &str) {
    let url: Value = serde_json::from_str(&store_ok(env, &["auth", "url", "--json"], keys)).unwrap();
    let location = env.mock.approve(url["url"].as_str().unwrap(), user).unwrap();
    store_ok(env, &["auth", "callback", &location], keys);
}

#[test]
fn a_store_keeps_accounts_sealed_lists_them_and_rotates_its_key() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let first = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    assert!(first.starts_with("k1:"), "{first}");
    store_login(&env, &first, "cafe_nova");
    assert!(
        !env.dir.path().join("tokens.json").exists(),
        "the token went to the store, not the token file"
    );
    let me: Value = serde_json::from_str(&store_ok(&env, &["me", "--json"], &first)).unwrap();
    assert_eq!(me["username"], "cafe_nova");

    let accounts: Value = serde_json::from_str(&store_ok(&env, &["accounts", "--json"], &first)).unwrap();
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["state"], "active");
    assert_eq!(accounts[0]["key_id"], "k1");
    let table = store_ok(&env, &["accounts"], &first);
    assert!(
        table.starts_with("USER ID") && table.contains("active"),
        "{table}"
    );

    let second = env.ok(&["store", "generate-key", "--id", "k2"]).trim().to_owned();
    let both = format!("{second},{first}");
    let rotated = store_ok(&env, &["store", "rotate-key"], &both);
    assert!(
        rotated.contains("1 tokens sealed again under key k2"),
        "{rotated}"
    );
    let accounts: Value = serde_json::from_str(&store_ok(&env, &["accounts", "--json"], &second)).unwrap();
    assert_eq!(accounts[0]["key_id"], "k2", "the old key is no longer needed");

    // A fresh token is not due: the keeper finds nothing to do and stops.
    let totals: Value =
        serde_json::from_str(&store_ok(&env, &["keeper", "--until-idle", "--json"], &second)).unwrap();
    assert_eq!(totals["refreshed"], 0);
}

#[test]
fn a_store_without_its_keys_is_a_usage_error_that_shows_no_key() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let output = env
        .command(&["accounts"])
        .env("IGDISPLAY_STORE", "sqlite::memory:")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store generate-key"), "{stderr}");

    let wrong = "k1:c2VjcmV0LWJ1dC10b28tc2hvcnQ";
    let output = with_store(&env, &mut env.command(&["accounts"]), wrong)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("key 1 of the list"), "{stderr}");
    assert!(!stderr.contains("c2VjcmV0"), "the key is never shown: {stderr}");
}

/// Accepts one HTTP request on a loopback port, answers 200, and hands over its head and body.
fn one_request() -> (String, std::thread::JoinHandle<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/igdisplay", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .unwrap();
                    return (
                        text[..end].to_owned(),
                        received[end + 4..end + 4 + length].to_vec(),
                    );
                }
            }
            assert!(n > 0, "the connection closed early");
        }
    });
    (url, handle)
}

/// A webhook is signed at the real time (its receiver checks it against its own clock), even
/// when the keeper follows the mock's.
#[allow(
    clippy::disallowed_methods,
    reason = "the signature's timestamp is wall-clock time"
)]
fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[test]
fn the_keeper_refreshes_a_due_account_and_posts_a_signed_event() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    store_login(&env, &keys, "cafe_nova");
    // Day 21 of the token's 60: due.
    env.mock.advance(Duration::from_secs(21 * 86_400));

    let (hook, received) = one_request();
    let output = with_store(
        &env,
        &mut env.command(&["keeper", "--until-idle", "--json", "--webhook", &hook]),
        &keys,
    )
    .env("IGDISPLAY_WEBHOOK_SECRETS", "whsec-1")
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let totals: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(totals["refreshed"], 1);
    let (head, body) = received.join().unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("post /hooks/igdisplay "), "{head}");
    assert!(head.contains("igdisplay-event: refreshed"), "{head}");
    let mut headers = igdisplay::http::http::HeaderMap::new();
    for line in head.lines().skip(1) {
        let (name, value) = line.split_once(": ").unwrap();
        headers.insert(
            igdisplay::http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "refreshed");
    assert!(
        !String::from_utf8_lossy(&body).contains("IGAA"),
        "no token in an event"
    );
    let verified = igdisplay::store::verify_webhook(
        &["whsec-1"],
        &headers,
        &body,
        wall_clock(),
        Duration::from_secs(300),
    )
    .unwrap();
    assert!(verified.event_id > 0);
}

#[cfg(unix)]
#[test]
fn the_keeper_stops_cleanly_on_ctrl_c() {
    use std::io::BufRead as _;
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    let mut child = with_store(&env, &mut env.command(&["keeper", "--idle", "3600"]), &keys)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("started"), "{line}");
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("stopping") && rest.contains("(stopped)"), "{rest}");
}

/// A child process killed when dropped, so a failed assertion never leaves it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET url` (plain http): the status, the head in lower case, and the body's bytes.
fn get_bytes(url: &str) -> (u16, String, Vec<u8>) {
    exchange("GET", url, "", "")
}

/// One request over a plain socket, `connection: close`: `head` (extra header lines, each
/// ending in CRLF) and `body` as given; the status, the answer's head in lower case, and its
/// body's bytes.
fn exchange(method: &str, url: &str, head: &str, body: &str) -> (u16, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nhost: {host}\r\n{head}connection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, response[end + 4..].to_vec())
}

#[test]
fn sync_mirrors_the_stored_account_incrementally_and_serve_serves_it() {
    use std::io::BufRead as _;
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let out = env.dir.path().join("mirror");
    let out_arg = out.to_str().unwrap();
    let first: Value = serde_json::from_str(&env.ok(&["sync", "--out", out_arg, "--json"])).unwrap();
    let report = &first[0]["report"];
    let user = first[0]["user_id"].as_str().unwrap().to_owned();
    assert!(report["items"].as_u64().unwrap() > 0);
    assert_eq!(report["graph_calls"], 1, "one page, albums expanded");
    let second: Value = serde_json::from_str(&env.ok(&["sync", "--out", out_arg, "--json"])).unwrap();
    assert_eq!(second[0]["report"]["downloaded"], 0, "nothing downloaded twice");

    let mut child = KillOnDrop(
        env.command(&["serve", "--dir", out_arg, "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    let (status, _, body) = get_bytes(&format!("{base}/feeds/{user}.json"));
    assert_eq!(status, 200);
    let index: Value = serde_json::from_slice(&body).unwrap();
    let page = index["pages"][0]["key"].as_str().unwrap();
    let (status, head, body) = get_bytes(&format!("{base}/{page}"));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains("immutable"),
        "a page never changes under its key: {head}"
    );
    let key = serde_json::from_slice::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find_map(|item| item["image"]["original"].as_str())
        .unwrap()
        .to_owned();
    let (status, head, image) = get_bytes(&format!("{base}/{key}"));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: image/jpeg"), "{head}");
    assert_eq!(&image[..2], &[0xFF, 0xD8]);
    assert!(head.contains("etag: "), "validators for caches: {head}");
    // A link planted in the folder to a file outside it, and a dotfile, are not served.
    let secret = env.dir.path().join("secret.txt");
    std::fs::write(&secret, "not for visitors").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, out.join("media").join("planted.jpg")).unwrap();
    std::fs::write(out.join("media").join(".hidden.jpg"), "not for visitors").unwrap();
    for outside in [
        "/feeds/../../tokens.json",
        "/tokens.json",
        "/media/..%2F..%2Ftokens.json",
        "/media/%2e%2e/%2e%2e/tokens.json",
        "/media/planted.jpg",
        "/media/.hidden.jpg",
    ] {
        assert_eq!(get_bytes(&format!("{base}{outside}")).0, 404, "{outside}");
    }
}

#[test]
fn sync_marks_an_account_whose_token_instagram_refuses_revoked_in_the_store() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    store_login(&env, &keys, "cafe_nova");
    let out = env.dir.path().join("mirror");
    let out_arg = out.to_str().unwrap();
    store_ok(&env, &["sync", "--out", out_arg, "--json"], &keys);

    assert!(env.mock.revoke_tokens("cafe_nova").unwrap() >= 1);
    let output = with_store(
        &env,
        &mut env.command(&["sync", "--out", out_arg, "--json"]),
        &keys,
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "an account was not synced");
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[0]["event"]["type"], "revoked", "{reports}");
    assert!(
        reports[0]["kept"].as_u64().unwrap() > 0,
        "the last good feed is kept"
    );
    let accounts: Value = serde_json::from_str(&store_ok(&env, &["accounts", "--json"], &keys)).unwrap();
    assert_eq!(accounts[0]["state"], "revoked", "{accounts}");
}

#[test]
fn sync_writes_the_mirror_into_an_s3_compatible_bucket() {
    let Ok(server) = std::env::var("IGDISPLAY_TEST_S3") else {
        assert!(
            std::env::var_os("IGDISPLAY_REQUIRE_S3").is_none(),
            "IGDISPLAY_REQUIRE_S3 is set but IGDISPLAY_TEST_S3 is not"
        );
        return;
    };
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let bucket = format!("cli-sync-{}", std::process::id());
    let host = server.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut created = String::new();
    stream.read_to_string(&mut created).unwrap();
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");

    let output = env
        .command(&["sync", "--bucket", &bucket, "--s3-endpoint", &server, "--json"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let user = reports[0]["user_id"].as_str().unwrap();
    // Read back through the library, signed like any client of the bucket.
    let config =
        igdisplay_mirror::S3Config::new(bucket, Some(server), "testing", "testing-secret").allow_http(true);
    let store = igdisplay_mirror::ObjectBlobStore::s3(&config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let feed = runtime
        .block_on(igdisplay_mirror::BlobStore::get(
            &store,
            &format!("feeds/{user}.json"),
        ))
        .unwrap()
        .expect("the feed is an object of the bucket");
    let index: Value = serde_json::from_slice(&feed).unwrap();
    assert_eq!(index["items"], reports[0]["report"]["items"]);
    let page = runtime
        .block_on(igdisplay_mirror::BlobStore::get(
            &store,
            index["pages"][0]["key"].as_str().unwrap(),
        ))
        .unwrap()
        .expect("its first page is an object of the bucket");
    let items: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(
        items.as_array().unwrap().len() as u64,
        index["pages"][0]["items"].as_u64().unwrap()
    );
}

/// Meta's `kind` callback for `username`, applied to the CLI's store as a site would.
fn apply_callback(env: &Env, keys: &str, username: &str, callback: igdisplay::store::MetaCallback) {
    let secret = igdisplay::model::AppSecret::new(env.mock.app().secret);
    let signed = env.mock.signed_request(username).unwrap();
    let request = igdisplay::auth::verify_signed_request(&secret, &signed).unwrap();
    let db = env.dir.path().join("fleet?#.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let keys = igdisplay::store::KeyRing::parse(keys).unwrap();
        let store = igdisplay::store::SqlStore::sqlite(&db, keys).await.unwrap();
        store.apply_callback(&request, callback).await.unwrap();
    });
}

#[test]
fn sync_purges_deauthorized_and_deleted_accounts() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    store_login(&env, &keys, "cafe_nova");
    store_login(&env, &keys, "jayposiris");
    let out = env.dir.path().join("mirror");
    let out_arg = out.to_str().unwrap();
    let first: Value =
        serde_json::from_str(&store_ok(&env, &["sync", "--out", out_arg, "--json"], &keys)).unwrap();
    let id_of = |n: usize| first[n]["user_id"].as_str().unwrap().to_owned();
    let (cafe, jay) = (id_of(0), id_of(1));
    let feed = |user: &str| out.join("feeds").join(format!("{user}.json"));
    assert!(feed(&cafe).exists() && feed(&jay).exists());
    let media_before = files_in(&out.join("media"));

    // cafe_nova removes the app: the next sync purges its mirror and succeeds.
    let who = |user: &str| {
        env.mock
            .users()
            .into_iter()
            .find(|u| u.id == user)
            .map(|u| u.username)
            .unwrap()
    };
    apply_callback(
        &env,
        &keys,
        &who(&cafe),
        igdisplay::store::MetaCallback::Deauthorize,
    );
    let second: Value =
        serde_json::from_str(&store_ok(&env, &["sync", "--out", out_arg, "--json"], &keys)).unwrap();
    assert!(!feed(&cafe).exists(), "the deauthorized account's feed is gone");
    assert!(feed(&jay).exists());
    assert!(files_in(&out.join("media")) < media_before);
    let purged = second
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == cafe.as_str())
        .unwrap();
    assert!(purged["purged"]["files"].as_u64().unwrap() > 0, "{second}");

    // jayposiris asks for deletion: purged too, and a run with nothing left to sync succeeds.
    apply_callback(
        &env,
        &keys,
        &who(&jay),
        igdisplay::store::MetaCallback::DataDeletion {
            confirmation_code: "c1".to_owned(),
        },
    );
    store_ok(&env, &["sync", "--out", out_arg, "--json"], &keys);
    assert!(!feed(&jay).exists());
    assert_eq!(
        files_in(&out.join("media")),
        0,
        "no file of either account is left"
    );
    // Again: nothing to purge, nothing to sync.
    let output = with_store(&env, &mut env.command(&["sync", "--out", out_arg]), &keys)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "no account to mirror");
}

#[test]
fn mirror_purge_deletes_one_accounts_mirror_by_hand() {
    let env = Env::new(MockPlatform::InstagramLogin);
    env.login("cafe_nova");
    let out = env.dir.path().join("mirror");
    let out_arg = out.to_str().unwrap();
    let synced: Value = serde_json::from_str(&env.ok(&["sync", "--out", out_arg, "--json"])).unwrap();
    let user = synced[0]["user_id"].as_str().unwrap().to_owned();
    assert!(files_in(&out.join("media")) > 0);
    let purged: Value =
        serde_json::from_str(&env.ok(&["mirror", "purge", &user, "--out", out_arg, "--json"])).unwrap();
    assert_eq!(purged["purged"]["had_feed"], true);
    assert_eq!(files_in(&out.join("media")), 0);
    assert!(!out.join("feeds").join(format!("{user}.json")).exists());
    let again = env.ok(&["mirror", "purge", &user, "--out", out_arg]);
    assert!(again.contains("has no mirror"), "{again}");
}

/// Files under `dir`, recursively (0 when it does not exist).
fn files_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| entry.unwrap().path())
        .map(|path| if path.is_dir() { files_in(&path) } else { 1 })
        .sum()
}

#[test]
fn sync_skips_an_account_another_instance_is_syncing() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let keys = env.ok(&["store", "generate-key", "--id", "k1"]).trim().to_owned();
    store_login(&env, &keys, "cafe_nova");
    let user = env
        .mock
        .users()
        .into_iter()
        .find(|u| u.username == "cafe_nova")
        .unwrap()
        .id;
    let listings = || {
        env.mock
            .journal()
            .iter()
            .filter(|e| e.path.ends_with("/media") && e.method == "GET")
            .count()
    };
    // Another instance holds the account's sync lease (on the mock's time, as the CLI's is).
    let db = env.dir.path().join("fleet?#.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let held = runtime.block_on(async {
        let clock = igdisplay::http::ManualClock::at_unix(u64::try_from(env.mock.now()).unwrap());
        let store = igdisplay::store::SqlStore::sqlite(&db, igdisplay::store::KeyRing::parse(&keys).unwrap())
            .await
            .unwrap()
            .with_pinned_time(std::sync::Arc::new(clock));
        let task = igdisplay_mirror::Mirror::sync_task(&igdisplay::model::UserId::new(&user));
        store
            .try_task(&task, igdisplay_mirror::SYNC_LEASE)
            .await
            .unwrap()
            .unwrap()
    });
    let out = env.dir.path().join("mirror");
    let before = listings();
    let report: Value = serde_json::from_str(&store_ok(
        &env,
        &["sync", "--out", out.to_str().unwrap(), "--json"],
        &keys,
    ))
    .unwrap();
    assert_eq!(report[0]["skipped"], "syncing elsewhere", "{report}");
    assert_eq!(listings(), before, "nothing listed: the other instance syncs it");
    runtime.block_on(held.release()).unwrap();
    let report: Value = serde_json::from_str(&store_ok(
        &env,
        &["sync", "--out", out.to_str().unwrap(), "--json"],
        &keys,
    ))
    .unwrap();
    assert!(report[0]["report"]["items"].as_u64().unwrap() > 0, "{report}");
}

/// `POST url` with a JSON body (plain http): the answer's JSON.
#[cfg(target_os = "linux")]
fn post_json(url: &str, body: &str) -> Value {
    let head = format!(
        "content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    let (_, _, answer) = exchange("POST", url, &head, body);
    serde_json::from_slice(&answer).unwrap()
}

/// A seed file of the demo plus a user `library` with `posts` image posts, each captioned
/// `caption`, written a post at a time: the test process never holds the library (a process
/// it starts shares its memory until it runs the binary, so its size would count in the
/// child's peak).
#[cfg(target_os = "linux")]
fn library_seed(path: &Path, posts: usize, caption: &str) {
    use igdisplay_mock::{Seed, SeedKind, SeedMedia, SeedUser};
    let mark = SeedMedia::new(SeedKind::Image, Some("library-post-mark"));
    let mut seed = Seed::demo();
    seed.users.push(SeedUser {
        username: "library".to_owned(),
        name: "A library".to_owned(),
        account_type: "MEDIA_CREATOR".to_owned(),
        tester: true,
        followers: 0,
        follows: 0,
        biography: None,
        website: None,
        media: vec![mark.clone()],
        generated: None,
        stories: Vec::new(),
    });
    let text = serde_json::to_string(&seed).unwrap();
    let (head, tail) = text.split_once(&serde_json::to_string(&mark).unwrap()).unwrap();
    let post = serde_json::to_string(&SeedMedia::new(SeedKind::Image, Some(caption))).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(head.as_bytes()).unwrap();
    for n in 0..posts {
        if n > 0 {
            file.write_all(b",").unwrap();
        }
        file.write_all(post.as_bytes()).unwrap();
    }
    file.write_all(tail.as_bytes()).unwrap();
    file.flush().unwrap();
}

/// Reliability case 72: the export holds one page of the library at a time, whatever the
/// library's size. Two libraries of posts with 8 KiB captions, 200 posts (1.6 MiB of
/// captions) and 2,000 (16 MiB), each served by `igdisplay mock serve` in a process of its
/// own: the export's peak resident memory (the waited-for children's, from `getrusage`) for
/// the larger stays within 8 MiB of the smaller's. An export that kept the library, or its
/// index, in memory would grow by the captions alone.
#[test]
#[cfg(target_os = "linux")]
fn the_exports_peak_memory_does_not_grow_with_the_library() {
    use nix::sys::resource::{UsageWho, getrusage};
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let caption = "x".repeat(8 * 1024);
    let mut mocks = Vec::new();
    let mut peaks = Vec::new();
    for posts in [200, 2_000] {
        let seed = dir.path().join(format!("seed-{posts}.json"));
        library_seed(&seed, posts, &caption);
        // Not waited for until the end: its own memory stays out of the children's peak.
        let mut mock = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
            .args(["mock", "serve", "--addr", "127.0.0.1:0", "--quiet"])
            .args(["--calls-per-hour", "0", "--seed"])
            .arg(&seed)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(mock.stdout.take().unwrap()).lines();
        let mut field = |name: &str| {
            lines
                .find_map(|line| Some(line.ok()?.strip_prefix(name)?.trim().to_owned()))
                .unwrap()
        };
        let base = field("listening on");
        let (id, secret) = (field("app id:"), field("app secret:"));
        mocks.push(mock);
        let issued = post_json(&format!("{base}/_mock/tokens"), r#"{"username": "library"}"#);
        let run = |args: &[&str], stdin: Option<&str>| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_igdisplay"))
                .args(args)
                .env_clear()
                .env("IGDISPLAY_APP_ID", &id)
                .env("IGDISPLAY_APP_SECRET", &secret)
                .env("IGDISPLAY_REDIRECT_URI", "https://app.example/auth/")
                .env("IGDISPLAY_MOCK", &base)
                .env(
                    "IGDISPLAY_TOKEN_FILE",
                    dir.path().join(format!("tokens-{posts}.json")),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
            drop(input);
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<Value>(&output.stdout).unwrap()
        };
        let token = format!("{}\n", issued["access_token"].as_str().unwrap());
        run(&["token", "import", "--json"], Some(&token));
        let out = dir.path().join(format!("export-{posts}"));
        let summary = run(
            &["export", out.to_str().unwrap(), "--concurrency", "4", "--json"],
            None,
        );
        assert_eq!(summary["items"], posts, "{summary}");
        // Kibibytes: the largest of every child waited for so far.
        peaks.push(getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss());
    }
    for mut mock in mocks {
        let _ = mock.kill();
        let _ = mock.wait();
    }
    let (small, large) = (peaks[0], peaks[1]);
    assert!(
        large <= small + 8 * 1024,
        "{large} KiB at 2,000 posts against {small} KiB at 200"
    );
}

/// Issue 31: comments, tags, insights and webhook subscriptions from the command line, after
/// a login that asked for their scopes; a renamed scope is refused with its successor.
#[test]
fn comments_tags_insights_and_subscriptions_from_the_command_line() {
    let env = Env::new(MockPlatform::InstagramLogin);
    let refused = env.run(&["auth", "url", "--scope", "business_manage_comments"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("ask for `instagram_business_manage_comments`"),
        "{stderr}"
    );

    let scopes = [
        "--scope",
        "instagram_business_manage_comments",
        "--scope",
        "instagram_business_manage_insights",
    ];
    let url = env.json(&[&["auth", "url"][..], &scopes[..]].concat())["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.contains("instagram_business_manage_insights"), "{url}");
    let location = env.mock.approve(&url, "jayposiris").unwrap();
    env.json(&["auth", "callback", &location]);

    let media = env.json(&["media", "list", "--all"]);
    let post = media
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["comments_count"].as_u64() >= Some(8)
                && m["like_count"].as_u64() > Some(0)
                && m["media_product_type"] == "FEED"
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let comments = env.json(&["comments", &post]);
    let first = comments[0]["id"].as_str().unwrap().to_owned();
    assert!(comments.as_array().unwrap().len() >= 2);
    let table = env.ok(&["comments", &post]);
    assert!(
        table.contains(&first) && table.contains("↳"),
        "replies under their comment: {table}"
    );
    env.ok(&["comments", "hide", &first]);
    let after = env.json(&["comments", &post]);
    assert_eq!(after[0]["hidden"], true);

    let tags = env.json(&["tags"]);
    assert!(!tags.as_array().unwrap().is_empty());

    let output = env.run(&[
        "insights",
        &post,
        "--metric",
        "impressions",
        "--metric",
        "navigation",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("impressions was removed by Instagram; asked as views"),
        "{stderr}"
    );
    assert!(stderr.contains("navigation left out"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("views"));
    let account = env.json(&["insights", "me", "--metric", "reach"]);
    assert_eq!(account["availability"], "Values");

    env.ok(&[
        "webhooks",
        "subscribe",
        "--field",
        "comments",
        "--field",
        "mentions",
    ]);
    assert_eq!(env.ok(&["webhooks", "subscriptions"]).trim(), "comments,mentions");
    let bad = env.run(&["webhooks", "subscribe", "--field", "feed"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Issue 31: `webhooks serve` answers Meta's handshake for the verify token only, refuses an
/// unsigned delivery, and writes a signed one to standard output before acknowledging it.
#[test]
fn webhooks_serve_answers_the_handshake_and_keeps_signed_deliveries() {
    use igdisplay::auth::webhooks::sign_webhook;
    use igdisplay::model::AppSecret;
    use std::io::BufRead as _;
    let env = Env::new(MockPlatform::InstagramLogin);
    let token_file = env.dir.path().join("verify-token");
    std::fs::write(&token_file, "the-verify-token\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = env
        .command(&[
            "webhooks",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--verify-token-file",
            token_file.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split("on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let handshake = |token: &str| {
        get(&format!(
            "{base}/?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        ))
    };
    let (status, _, response) = handshake("the-verify-token");
    assert_eq!(status, 200);
    assert!(response.ends_with("1158201444"), "{response}");
    assert_eq!(handshake("wrong").0, 403);

    let body = r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"changes":[{"field":"mentions","value":{"media_id":"17900000000000001"}}]}]}"#;
    let (status, _, _) = exchange(
        "POST",
        &format!("{base}/"),
        &format!("content-length: {}\r\n", body.len()),
        body,
    );
    assert_eq!(status, 401, "unsigned");
    let signature = sign_webhook(&AppSecret::new(env.mock.app().secret), body.as_bytes());
    let head = format!(
        "x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n",
        body.len()
    );
    let (status, _, _) = exchange("POST", &format!("{base}/"), &head, body);
    assert_eq!(status, 200);
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let kept: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        kept["entry"][0]["changes"][0]["field"], "mentions",
        "written before the 200"
    );
}
