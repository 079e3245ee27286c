//! The CLI's the store, the keeper and the mirror's sync.

use super::*;

/// `command` with its tokens in a SQLite store under the test's folder, sealed with `keys`.
pub(super) fn with_store<'a>(env: &Env, command: &'a mut Command, keys: &str) -> &'a mut Command {
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
pub(super) fn one_request() -> (String, std::thread::JoinHandle<(String, Vec<u8>)>) {
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
    assert_success(&output);
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
pub(super) struct KillOnDrop(pub(super) std::process::Child);

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
pub(super) fn exchange(method: &str, url: &str, head: &str, body: &str) -> (u16, String, Vec<u8>) {
    let (status, head, body) = exchange_raw(method, url, head, body);
    (status, head.to_ascii_lowercase(), body)
}

/// [`exchange`], the response's head as sent (a `Location` or a cookie keeps its case).
pub(super) fn exchange_raw(method: &str, url: &str, head: &str, body: &str) -> (u16, String, Vec<u8>) {
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
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
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
    assert_success(&output);
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
