//! A transport wrapper that injects faults into the streams of any backend:
//! connections cut after a random number of bytes, writes split into small
//! pieces, delays and stalls. For tests of what runs on top (feature
//! `fault-injection`).
//!
//! ```
//! use std::time::Duration;
//! use ricochet_transport::fault::{FaultPlan, FaultyTransport};
//! use ricochet_transport::tcp::{Directory, TcpTransport};
//!
//! let plan = FaultPlan::new(7)
//!     .cut_after(10_000..200_000)
//!     .max_write(100)
//!     .delay(Duration::ZERO..Duration::from_millis(2));
//! let transport = FaultyTransport::new(TcpTransport::new(Directory::new()), plan);
//! # let _ = transport;
//! ```

use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, IdentityKey, ServiceId};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::{BootstrapStatus, Listener, ServiceStatus, Transport, TransportError};

/// Which faults to inject. Each stream draws its own numbers from a
/// generator seeded from `seed`, so a run can be repeated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FaultPlan {
    /// The seed of the random choices.
    pub seed: u64,
    /// Cut each connection after a number of bytes (read and written
    /// together) drawn from this range; `None`: never.
    pub cut_after: Option<Range<u64>>,
    /// Write at most this many bytes per write call.
    pub max_write: Option<usize>,
    /// Wait a duration drawn from this range before each write.
    pub delay: Option<Range<Duration>>,
    /// With this probability per write, stall for the given duration.
    pub stall: Option<(f64, Duration)>,
}

impl FaultPlan {
    /// No faults yet.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            cut_after: None,
            max_write: None,
            delay: None,
            stall: None,
        }
    }

    /// Cut connections after a random number of bytes in `bytes`.
    pub fn cut_after(mut self, bytes: Range<u64>) -> Self {
        self.cut_after = Some(bytes);
        self
    }

    /// Split writes into pieces of at most `bytes` (at least 1).
    pub fn max_write(mut self, bytes: usize) -> Self {
        self.max_write = Some(bytes.max(1));
        self
    }

    /// Delay each write by a random duration in `delay`.
    pub fn delay(mut self, delay: Range<Duration>) -> Self {
        self.delay = Some(delay);
        self
    }

    /// With `probability` per write, stall for `duration`.
    pub fn stall(mut self, probability: f64, duration: Duration) -> Self {
        self.stall = Some((probability.clamp(0.0, 1.0), duration));
        self
    }
}

/// What the wrapper did, for the figures of a test.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Streams opened (dialled or accepted).
    pub streams: AtomicU64,
    /// Streams cut.
    pub cuts: AtomicU64,
    /// Stalls injected.
    pub stalls: AtomicU64,
}

/// Wraps a [`Transport`] and injects the faults of a [`FaultPlan`] into
/// every stream it dials or accepts.
#[derive(Debug)]
pub struct FaultyTransport<T> {
    inner: T,
    plan: FaultPlan,
    rng: Arc<Mutex<StdRng>>,
    stats: Arc<FaultStats>,
}

impl<T> FaultyTransport<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, plan: FaultPlan) -> Self {
        Self {
            inner,
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(plan.seed))),
            plan,
            stats: Arc::default(),
        }
    }

    /// What was injected so far.
    pub fn stats(&self) -> Arc<FaultStats> {
        self.stats.clone()
    }

    fn wrap_listener<L>(&self, inner: L) -> FaultyListener<L> {
        FaultyListener {
            inner,
            plan: self.plan.clone(),
            rng: self.rng.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Makes a faulty stream around `inner`, drawing its seed and budget.
fn wrap<S>(
    inner: S,
    plan: &FaultPlan,
    rng: &Mutex<StdRng>,
    stats: &Arc<FaultStats>,
) -> FaultyStream<S> {
    let mut shared = rng
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = shared.random::<u64>();
    let budget = plan
        .cut_after
        .as_ref()
        .filter(|range| !range.is_empty())
        .map(|range| shared.random_range(range.clone()));
    drop(shared);
    stats.streams.fetch_add(1, Ordering::Relaxed);
    FaultyStream {
        inner,
        plan: plan.clone(),
        rng: StdRng::seed_from_u64(seed),
        budget,
        cut: false,
        pause: None,
        paused_for_write: false,
        stats: stats.clone(),
    }
}

impl<T: Transport> Transport for FaultyTransport<T> {
    type Stream = FaultyStream<T::Stream>;
    type Listener = FaultyListener<T::Listener>;

    fn bootstrap(&self) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.inner.bootstrap()
    }

    fn bootstrap_status(&self) -> watch::Receiver<BootstrapStatus> {
        self.inner.bootstrap_status()
    }

    async fn connect(&self, id: &ServiceId, port: u16) -> Result<Self::Stream, TransportError> {
        let stream = self.inner.connect(id, port).await?;
        Ok(wrap(stream, &self.plan, &self.rng, &self.stats))
    }

    async fn listen(&self, key: &IdentityKey, port: u16) -> Result<Self::Listener, TransportError> {
        let inner = self.inner.listen(key, port).await?;
        Ok(self.wrap_listener(inner))
    }

    async fn listen_private(
        &self,
        key: &IdentityKey,
        port: u16,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<Self::Listener, TransportError> {
        let inner = self.inner.listen_private(key, port, authorized).await?;
        Ok(self.wrap_listener(inner))
    }

    async fn set_client_auth(
        &self,
        id: &ServiceId,
        key: Option<&ClientAuthSecretKey>,
    ) -> Result<(), TransportError> {
        self.inner.set_client_auth(id, key).await
    }
}

/// The listener of a [`FaultyTransport`].
#[derive(Debug)]
pub struct FaultyListener<L> {
    inner: L,
    plan: FaultPlan,
    rng: Arc<Mutex<StdRng>>,
    stats: Arc<FaultStats>,
}

impl<L: Listener> Listener for FaultyListener<L> {
    type Stream = FaultyStream<L::Stream>;

    async fn accept(&mut self) -> Result<Self::Stream, TransportError> {
        let stream = self.inner.accept().await?;
        Ok(wrap(stream, &self.plan, &self.rng, &self.stats))
    }

    fn service_id(&self) -> ServiceId {
        self.inner.service_id()
    }

    fn status(&self) -> watch::Receiver<ServiceStatus> {
        self.inner.status()
    }

    async fn set_authorized(
        &mut self,
        authorized: &[ClientAuthPublicKey],
    ) -> Result<(), TransportError> {
        self.inner.set_authorized(authorized).await
    }
}

/// A stream with injected faults. Once cut, every read and write fails with
/// `ConnectionReset`; dropping it closes the real stream, so the peer sees
/// the connection end.
#[derive(Debug)]
pub struct FaultyStream<S> {
    inner: S,
    plan: FaultPlan,
    rng: StdRng,
    /// Bytes left before the cut.
    budget: Option<u64>,
    cut: bool,
    /// A delay or stall before the next write.
    pause: Option<Pin<Box<Sleep>>>,
    /// Whether `pause` was already drawn for the pending write.
    paused_for_write: bool,
    stats: Arc<FaultStats>,
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection cut by fault injection",
    )
}

impl<S> FaultyStream<S> {
    /// Charges `n` bytes to the budget; true if the stream is now cut.
    fn spend(&mut self, n: usize) -> bool {
        if let Some(budget) = self.budget.as_mut() {
            *budget = budget.saturating_sub(n as u64);
            if *budget == 0 && !self.cut {
                self.cut = true;
                self.stats.cuts.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.cut
    }

    /// How much of `len` may be written now.
    fn allowed(&self, len: usize) -> usize {
        let mut allowed = len;
        if let Some(max) = self.plan.max_write {
            allowed = allowed.min(max);
        }
        if let Some(budget) = self.budget {
            allowed = allowed.min(usize::try_from(budget).unwrap_or(usize::MAX).max(1));
        }
        allowed
    }

    /// Draws the pause before a write, if any.
    fn draw_pause(&mut self) -> Option<Duration> {
        let mut pause = Duration::ZERO;
        if let Some(range) = self.plan.delay.clone()
            && !range.is_empty()
        {
            pause += self.rng.random_range(range);
        }
        if let Some((probability, duration)) = self.plan.stall
            && self.rng.random_bool(probability)
        {
            self.stats.stalls.fetch_add(1, Ordering::Relaxed);
            pause += duration;
        }
        (!pause.is_zero()).then_some(pause)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FaultyStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.cut {
            return Poll::Ready(Err(reset()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                // The bytes that crossed the budget still arrive; the cut
                // shows on the next call.
                this.spend(read);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FaultyStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cut {
            return Poll::Ready(Err(reset()));
        }
        if !self.paused_for_write {
            self.paused_for_write = true;
            if let Some(pause) = self.draw_pause() {
                self.pause = Some(Box::pin(tokio::time::sleep(pause)));
            }
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let allowed = self.allowed(buf.len());
        let this = &mut *self;
        let piece = buf.get(..allowed).unwrap_or(buf);
        match Pin::new(&mut this.inner).poll_write(cx, piece) {
            Poll::Ready(Ok(written)) => {
                this.paused_for_write = false;
                this.spend(written);
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cut {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn writes_are_split_and_the_stream_is_cut_after_its_budget() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let plan = FaultPlan::new(1).cut_after(1000..1001).max_write(7);
        let stats = Arc::new(FaultStats::default());
        let rng = Mutex::new(StdRng::seed_from_u64(1));
        let mut faulty = wrap(a, &plan, &rng, &stats);
        let written = faulty.write(&[1; 100]).await.unwrap();
        assert_eq!(written, 7);
        let mut sent = 7;
        while sent < 1000 {
            match faulty.write(&[1; 100]).await {
                Ok(n) => sent += n,
                Err(error) => panic!("cut early at {sent}: {error}"),
            }
        }
        assert_eq!(sent, 1000);
        let error = faulty.write(&[1]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(stats.cuts.load(Ordering::Relaxed), 1);
        drop(faulty);
        let mut received = Vec::new();
        b.read_to_end(&mut received).await.unwrap();
        assert_eq!(received.len(), 1000);
    }

    #[tokio::test]
    async fn delays_and_stalls_hold_writes_back() {
        let (a, _b) = tokio::io::duplex(1 << 16);
        let plan = FaultPlan::new(2)
            .delay(Duration::from_millis(5)..Duration::from_millis(6))
            .stall(1.0, Duration::from_millis(20));
        let stats = Arc::new(FaultStats::default());
        let rng = Mutex::new(StdRng::seed_from_u64(2));
        let mut faulty = wrap(a, &plan, &rng, &stats);
        let started = tokio::time::Instant::now();
        faulty.write_all(b"hello").await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert_eq!(stats.stalls.load(Ordering::Relaxed), 1);
    }
}
