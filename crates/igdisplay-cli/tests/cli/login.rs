//! The CLI's the listening login: callbacks that must not end it.

use super::*;

/// `igdisplay login` waiting on a loopback redirect URI: the child, and the authorize URL it
/// printed.
pub(super) fn listening_login(env: &Env) -> (std::process::Child, String, u16) {
    listening_login_with(env, &["login", "--no-browser", "--timeout", "30"], None)
}

/// `listening_login` with other arguments and, when given, another `PATH`.
pub(super) fn listening_login_with(
    env: &Env,
    args: &[&str],
    path: Option<&Path>,
) -> (std::process::Child, String, u16) {
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
    let url = first_line(&mut child);
    (child, url, port)
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
    assert_success(&output);
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
    assert_success(&output);
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
pub(super) fn counting_listener() -> (
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
