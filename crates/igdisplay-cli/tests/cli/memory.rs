//! The CLI's the export's memory on a large library.

use super::*;

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
