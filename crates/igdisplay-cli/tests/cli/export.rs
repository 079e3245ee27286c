//! The CLI's exports that resume and converge, help pages and terminal output.

use super::*;

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
    let imported = with_stdin(&mut keyring(&["token", "import"]), issued.access_token.as_bytes());
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
