//! [`MockBuilder`]: a mock's settings before it starts, and starting it.

use crate::server::{self, Shared};
use crate::state::World;
use crate::{
    AssetSizes, JournalEntry, MockClock, MockError, MockOptions, MockPlatform, MockServer, Seed, TokenShape,
    tls,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Configures a mock before it starts; see [`MockServer::builder`]. Every setting has a
/// default that suits a test: Instagram Login, the demo seed, a frozen clock, 200 calls per
/// user per hour, a free loopback port, two worker threads.
///
/// ```
/// use igdisplay_mock::{MockClock, MockPlatform, MockServer, Seed};
///
/// let mock = MockServer::builder()
///     .platform(MockPlatform::BasicDisplay)
///     .seed(Seed::demo().with_generated_user("bulk", 1_000, 10))
///     .clock(MockClock::Frozen(1_700_000_000))
///     .calls_per_hour(None)
///     .start()?;
/// assert_eq!(mock.now(), 1_700_000_000);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "call .start() to run the mock"]
pub struct MockBuilder {
    seed: Seed,
    options: MockOptions,
    clock: MockClock,
    addr: SocketAddr,
    workers: usize,
    https: bool,
    on_request: Option<RequestLog>,
}

/// What [`MockBuilder::on_request`] keeps: a function given every request's entry.
#[derive(Clone)]
pub struct RequestLog(Arc<dyn Fn(&JournalEntry) + Send + Sync>);

impl RequestLog {
    /// Gives `entry` to the function.
    pub fn log(&self, entry: &JournalEntry) {
        (self.0)(entry);
    }
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}

/// The defaults of [`MockServer::builder`].
impl Default for MockBuilder {
    fn default() -> Self {
        Self {
            seed: Seed::demo(),
            options: MockOptions::default(),
            clock: MockClock::default(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 2,
            https: false,
            on_request: None,
        }
    }
}

impl MockBuilder {
    /// Serves HTTPS instead of http, with a certificate for `127.0.0.1` and `localhost` made at
    /// start and signed by a test root of its own; trust the root
    /// ([`MockServer::root_certificate_pem`]) in the client under test. For clients that refuse
    /// plain http for OAuth.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::builder().https().start()?;
    /// assert!(mock.base_url().starts_with("https://127.0.0.1:"));
    /// assert!(mock.root_certificate_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn https(mut self) -> Self {
        self.https = true;
        self
    }

    /// Calls `log` with every request's journal entry once it is answered (its query's
    /// secrets masked, as [`MockServer::journal`] shows them), outside the mock's lock: a
    /// server's request log. `igdisplay mock serve` prints one line per request with it.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let mock = igdisplay_mock::MockServer::builder()
    ///     .on_request(move |entry| log.lock().unwrap().push(entry.to_string()))
    ///     .start()?;
    /// // Any client's request; here a bare one with a token the mock never issued.
    /// let mut stream = std::net::TcpStream::connect(mock.addr())?;
    /// write!(stream, "GET /me?access_token=SECRET HTTP/1.1\r\nhost: mock\r\nconnection: close\r\n\r\n")?;
    /// stream.read_to_end(&mut Vec::new())?;
    /// assert_eq!(seen.lock().unwrap().as_slice(), ["GET /me access_token=[redacted] 400"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_request(mut self, log: impl Fn(&JournalEntry) + Send + Sync + 'static) -> Self {
        self.on_request = Some(RequestLog(Arc::new(log)));
        self
    }

    /// The platform to play (Instagram Login by default): hosts, scopes, token shapes and
    /// error texts follow it.
    ///
    /// ```
    /// use igdisplay_mock::{MockPlatform, MockServer};
    ///
    /// let mock = MockServer::builder().platform(MockPlatform::BasicDisplay).start()?;
    /// assert_eq!(mock.platform(), MockPlatform::BasicDisplay);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn platform(mut self, platform: MockPlatform) -> Self {
        self.options.platform = platform;
        self
    }

    /// The seed data ([`Seed::demo`] by default).
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, Seed};
    ///
    /// let seed = Seed::demo().with_generated_user("bulk", 250, 10);
    /// let mock = MockServer::builder().seed(seed).start()?;
    /// let bulk = mock.users().into_iter().find(|u| u.username == "bulk").unwrap();
    /// assert_eq!(bulk.media_count, 250);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// The clock (frozen at [`DEFAULT_START`](crate::DEFAULT_START) by default).
    ///
    /// ```
    /// use igdisplay_mock::{MockClock, MockServer};
    ///
    /// let mock = MockServer::builder().clock(MockClock::Frozen(1_700_000_000)).start()?;
    /// assert_eq!(mock.now(), 1_700_000_000);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn clock(mut self, clock: MockClock) -> Self {
        self.clock = clock;
        self
    }

    /// The address (`127.0.0.1:0` by default: a free port).
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::builder().addr(([127, 0, 0, 1], 0).into()).start()?;
    /// assert!(mock.addr().ip().is_loopback());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Graph calls per user per rolling hour (`None`: unlimited). Default 200. From half the
    /// budget on, responses carry the usage header; beyond it, Graph calls fail with code 17
    /// until the clock moves on.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::builder().calls_per_hour(None).start()?;
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn calls_per_hour(mut self, limit: Option<u32>) -> Self {
        self.options.calls_per_hour = limit;
        self
    }

    /// The Instagram Login code-exchange response shape: flat, as the API sends it today
    /// (default), or wrapped in `data[]`, as the documentation shows it.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, TokenShape};
    ///
    /// let mock = MockServer::builder().token_shape(TokenShape::Wrapped).start()?;
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn token_shape(mut self, shape: TokenShape) -> Self {
        self.options.token_shape = shape;
        self
    }

    /// How many requests the journal keeps (default 1,000); older ones are dropped, and
    /// [`MockServer::requests_total`] still counts them.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::builder().journal_capacity(10).start()?;
    /// assert!(mock.journal().is_empty());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn journal_capacity(mut self, capacity: usize) -> Self {
        self.options.journal_capacity = capacity;
        self
    }

    /// Worker threads of the mock's runtime (default 2; at least 1).
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::builder().workers(1).start()?;
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The sizes of the CDN's files (see [`AssetSizes`]): large downloads from a mock.
    pub fn asset_sizes(mut self, sizes: AssetSizes) -> Self {
        self.options.asset_sizes = sizes;
        self
    }

    /// Every option at once.
    ///
    /// ```
    /// use igdisplay_mock::{MockOptions, MockPlatform, MockServer};
    ///
    /// let mut options = MockOptions::default();
    /// options.platform = MockPlatform::BasicDisplay;
    /// options.calls_per_hour = Some(10);
    /// let mock = MockServer::builder().options(options).start()?;
    /// assert_eq!(mock.platform(), MockPlatform::BasicDisplay);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn options(mut self, options: MockOptions) -> Self {
        self.options = options;
        self
    }

    /// Binds, starts the mock on its own runtime thread, and returns once it accepts
    /// connections. Works from plain `#[test]`s and from inside any async runtime.
    ///
    /// ```
    /// // Inside a tokio test as well as in a plain #[test].
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), igdisplay_mock::MockError> {
    /// let mock = igdisplay_mock::MockServer::builder().start()?;
    /// assert!(mock.addr().port() > 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::Bind`] or [`MockError::Runtime`].
    pub fn start(self) -> Result<MockServer, MockError> {
        let listener = std::net::TcpListener::bind(self.addr).map_err(|source| MockError::Bind {
            addr: self.addr,
            source,
        })?;
        let addr = listener.local_addr().map_err(MockError::Runtime)?;
        listener.set_nonblocking(true).map_err(MockError::Runtime)?;
        let tls = self.https.then(tls::generate).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let root_pem = tls.as_ref().map(|tls| tls.root_pem.clone());
        let world = World::new(
            self.seed,
            self.options,
            self.clock,
            base.clone(),
            root_pem.clone(),
        );
        let shared = Arc::new(Shared::new(world, self.clock, self.on_request));
        let acceptor = tls.map(|tls| tls.acceptor);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers)
            .thread_name("igdisplay-mock")
            .enable_all()
            .build()
            .map_err(MockError::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(MockError::Runtime)?
        };
        let thread = std::thread::Builder::new()
            .name("igdisplay-mock".to_owned())
            .spawn(move || {
                runtime.block_on(server::serve(listener, acceptor, serving, stopped));
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(MockError::Runtime)?;
        Ok(MockServer {
            base,
            addr,
            root_pem,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}
