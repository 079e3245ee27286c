//! The one send loop of every igdisplay request that reads an answer: [`SendLoop::send`].
//!
//! A request is an [`Exchange`]: it renders an [`HttpRequest`] and reads a response, both
//! without I/O, and says whether it may be sent twice ([`RequestKind`]). Its error is a
//! [`Failure`] the loop can classify. A client adds what it knows around each attempt through
//! a [`Gate`]: pacing and a fresh token before, usage headers and a rate limit's pause after.
//! The loop does the rest, the same way for the token requests and the Graph queries: it asks
//! [`classify`](crate::classify) (through [`Failure::retry`]), waits what the
//! [`RetryPolicy`] draws or what a rate limit announces, spends the shared [`RetryBudget`], and
//! sends through the [`HttpBackend`].

use crate::{Clock, HttpBackend, HttpRequest, HttpResponse, Jitter, RequestKind, Retry, RetryBudget};
use crate::{RetryPolicy, TransportError};
use std::future::Future;
use std::time::{Duration, SystemTime};

/// A request the [`SendLoop`] can send: rendered and read without I/O, so that each half is
/// tested on its own and the loop owns every wait.
///
/// `C` is what a [`Gate`] hands each attempt (a token fetched for it, or nothing).
pub trait Exchange<C> {
    /// What a success reads as.
    type Output;
    /// What a failure reads as.
    type Error: Failure;

    /// Whether the request may be sent twice: a read may, a code exchange spends its code.
    fn kind(&self) -> RequestKind;

    /// The request for one attempt.
    ///
    /// # Errors
    ///
    /// When the request cannot be formed; the loop returns it without sending anything.
    fn render(&self, context: &C) -> Result<HttpRequest, Self::Error>;

    /// Reads a response of any status.
    ///
    /// # Errors
    ///
    /// The typed error an error status or an unreadable body means.
    fn parse(&self, response: &HttpResponse, context: &C) -> Result<Self::Output, Self::Error>;
}

/// An error the [`SendLoop`] can classify. Its public `is_retryable()` (each crate's error
/// has one) is [`Failure::loop_retries`]: exactly what the loop does with it.
pub trait Failure: Sized {
    /// The failure for a request of `kind` that got no complete response.
    fn transport(source: TransportError, kind: RequestKind) -> Self;

    /// The classifier's answer for this failure.
    fn retry(&self) -> Retry;

    /// The pause a rate limit announced, when this is one and its pause is known: the loop
    /// waits it (never less) if the [`Gate`] is willing to.
    fn pause(&self) -> Option<Duration> {
        None
    }

    /// Records that `attempts` requests were sent, where the error keeps count.
    #[must_use]
    fn after_attempts(self, _attempts: u32) -> Self {
        self
    }

    /// Whether the loop tries again after this failure (attempts, time and budget allowing),
    /// under a gate that waits for any announced pause: a backoff retry, or a rate limit
    /// whose pause is known.
    fn loop_retries(&self) -> bool {
        match self.retry() {
            Retry::Backoff => true,
            Retry::AfterPause => self.pause().is_some(),
            Retry::Stop => false,
        }
    }
}

/// What a client adds around each attempt of the [`SendLoop`]. Every method but
/// [`open`](Self::open) has a default that adds nothing.
pub trait Gate<E>: Sync {
    /// What every attempt gets from the gate for rendering and reading (a token).
    type Context: Send + Sync;

    /// Before an attempt due at `at`: wait if the client must (pacing), then fetch what the
    /// request needs. Returns it with the moment the request goes.
    ///
    /// # Errors
    ///
    /// When the attempt cannot start (a spent rate budget, a token store that failed); the
    /// loop classifies the error like any other.
    fn open(&self, at: SystemTime) -> impl Future<Output = Result<(Self::Context, SystemTime), E>> + Send;

    /// The span an attempt runs in; the loop records `status` and `duration_ms` into it when
    /// it has those fields. No span by default.
    fn span(&self, _request: &HttpRequest, _attempt: u32) -> tracing::Span {
        tracing::Span::none()
    }

    /// Sees every response, before it is read (usage headers).
    fn observe(&self, _response: &HttpResponse) {}

    /// Completes a failure read from `response` at `now` with what the client knows (the
    /// pause of a rate limit, from `Retry-After` or its own pacer).
    fn refused(&self, failure: E, _response: &HttpResponse, _now: SystemTime) -> E {
        failure
    }

    /// Whether the client waits out a rate limit's announced `pause`. Never by default.
    fn waits_for(&self, _pause: Duration) -> bool {
        false
    }
}

/// A gate that adds nothing: no pacing, no context.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGate;

impl<E: Send> Gate<E> for NoGate {
    type Context = ();

    fn open(&self, at: SystemTime) -> impl Future<Output = Result<((), SystemTime), E>> + Send {
        std::future::ready(Ok(((), at)))
    }
}

/// A success of the [`SendLoop`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Sent<T> {
    /// The response, read.
    pub output: T,
    /// When the successful attempt went (a token's lifetime counts from it).
    pub sent_at: SystemTime,
    /// The requests sent, the successful one included.
    pub attempts: u32,
}

/// The `tracing` target of the event sent when a request waits for Instagram's rate limit
/// (a `Retry-After`, or a spent budget), with the wait in `wait_ms`: an application can show
/// it ("Instagram asks us to wait 40 s"), as the CLI does, instead of looking stuck.
pub const RATE_LIMIT_WAIT: &str = "igdisplay::rate_limit";

/// Announces a wait for the rate limit under [`RATE_LIMIT_WAIT`].
pub fn announce_rate_limit_wait(wait: Duration) {
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(target: RATE_LIMIT_WAIT, wait_ms, "waiting for the rate limit");
}

/// Sends [`Exchange`]s through a backend, retrying what the classifier allows within a
/// policy and a shared budget, on an injected clock.
#[derive(Clone, Copy, Debug)]
pub struct SendLoop<'a> {
    backend: &'a dyn HttpBackend,
    clock: &'a dyn Clock,
    policy: &'a RetryPolicy,
    jitter: &'a Jitter,
    budget: &'a RetryBudget,
}

impl<'a> SendLoop<'a> {
    /// A loop over `backend`, waiting on `clock`, retrying within `policy` (its backoff drawn
    /// from `jitter`) and `budget`.
    pub fn new(
        backend: &'a dyn HttpBackend,
        clock: &'a dyn Clock,
        policy: &'a RetryPolicy,
        jitter: &'a Jitter,
        budget: &'a RetryBudget,
    ) -> Self {
        Self {
            backend,
            clock,
            policy,
            jitter,
            budget,
        }
    }

    /// Sends `exchange` through `gate` until it succeeds or the failure is final: the
    /// classifier stops it, the policy's attempts or time run out, or the budget is spent.
    ///
    /// # Errors
    ///
    /// The last attempt's failure, with the number of requests sent.
    pub async fn send<C, E, G, X>(&self, gate: &G, exchange: &X) -> Result<Sent<X::Output>, E>
    where
        G: Gate<E, Context = C>,
        X: Exchange<C, Error = E> + Sync,
        E: Failure + Send,
    {
        let started = self.clock.now();
        // When the attempt starts: the clock is read once per attempt on the way out.
        let mut at = started;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let failure = match self.attempt(gate, exchange, attempt, at).await {
                Ok((output, sent_at)) => {
                    self.budget.earn();
                    return Ok(Sent {
                        output,
                        sent_at,
                        attempts: attempt,
                    });
                }
                Err(failure) => failure,
            };
            let retry = failure.retry();
            let delay = match retry {
                Retry::Stop => None,
                Retry::Backoff => Some(self.policy.backoff(attempt, self.jitter)),
                Retry::AfterPause => failure.pause().filter(|pause| gate.waits_for(*pause)),
            };
            let elapsed = self.clock.now().duration_since(started).unwrap_or_default();
            let Some(delay) = delay.filter(|delay| self.policy.allows(attempt, elapsed, *delay)) else {
                return Err(failure.after_attempts(attempt));
            };
            if retry == Retry::AfterPause {
                announce_rate_limit_wait(delay);
            }
            if !self.budget.try_spend() {
                tracing::debug!(attempt, "the retry budget is spent: failing fast");
                return Err(failure.after_attempts(attempt));
            }
            tracing::debug!(
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
            self.clock.sleep(delay).await;
            at = self.clock.now();
        }
    }

    /// One try, due at `at`: through the gate, rendered, sent, observed and read. Returns the
    /// output and when the request went.
    async fn attempt<C, E, G, X>(
        &self,
        gate: &G,
        exchange: &X,
        attempt: u32,
        at: SystemTime,
    ) -> Result<(X::Output, SystemTime), E>
    where
        G: Gate<E, Context = C>,
        X: Exchange<C, Error = E> + Sync,
        E: Failure + Send,
    {
        let (context, sent_at) = gate.open(at).await?;
        // In a block, so that the request is not held (twice) while its response is awaited.
        let (sending, span) = {
            let request = exchange.render(&context)?;
            let span = gate.span(&request, attempt);
            (self.backend.send(request), span)
        };
        let outcome = sending.await;
        // Recording into a span nobody listens to still walks its fields.
        let traced = !span.is_disabled();
        if traced {
            let took = self.clock.now().duration_since(sent_at).unwrap_or_default();
            span.record("duration_ms", u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        }
        let response = match outcome {
            Ok(response) => response,
            Err(source) => {
                tracing::debug!(parent: &span, kind = ?source.kind(), "transport failure");
                return Err(E::transport(source, exchange.kind()));
            }
        };
        if traced {
            span.record("status", response.status().as_u16());
        }
        gate.observe(&response);
        match exchange.parse(&response, &context) {
            Ok(output) => Ok((output, sent_at)),
            Err(failure) => Err(gate.refused(failure, &response, self.clock.now())),
        }
    }
}
