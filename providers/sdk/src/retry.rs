//! Bounded retries with exponential backoff and jitter, and bounded waits: the one helper
//! every provider uses. Only retryable errors (`Transient`, `Pending`) are tried again; a
//! `Pending` error's own `retry_after` is honoured. Every loop ends: at its attempt bound,
//! at its deadline, or when the run is interrupted.

use crate::{ErrorKind, ProviderError};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The longest delay before retry number `n` (0-based): doubling, capped.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay actually slept: between half and all of [`Backoff::delay`], at random, so
    /// that many clients that failed together do not retry together.
    pub fn jittered(&self, n: u32) -> Duration {
        self.delay(n).mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    /// How long to wait after `e` before attempt `n + 1`.
    fn after(&self, e: &ProviderError, n: u32) -> Duration {
        match e.kind {
            ErrorKind::Pending {
                retry_after: Some(d),
            } => d.min(self.max),
            _ => self.jittered(n),
        }
    }
}

fn gave_up(e: ProviderError, attempts: u32) -> ProviderError {
    ProviderError::with_kind(
        e.kind,
        format!("{} (gave up after {attempts} attempts)", e.message),
    )
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or the attempts
/// run out.
pub async fn retry<T, F, Fut>(backoff: Backoff, op: F) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    retry_within(backoff, &CancellationToken::new(), None, op).await
}

/// [`retry`], also bounded by a deadline and stopped when `cancel` fires.
pub async fn retry_within<T, F, Fut>(
    backoff: Backoff,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
    op: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    retry_when(ProviderError::is_retryable, backoff, cancel, deadline, op).await
}

/// [`retry_within`] for a call that is not idempotent (a create): only a busy answer
/// (`Pending`: the server did nothing) is retried. A `Transient` failure may have done the
/// work with its answer lost; it is returned, for the caller to look before it leaps.
pub async fn retry_busy_within<T, F, Fut>(
    backoff: Backoff,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
    op: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let busy = |e: &ProviderError| matches!(e.kind, ErrorKind::Pending { .. });
    retry_when(busy, backoff, cancel, deadline, op).await
}

async fn retry_when<T, F, Fut>(
    retryable: impl Fn(&ProviderError) -> bool,
    backoff: Backoff,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
    mut op: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let attempts = backoff.attempts.max(1);
    let mut n = 0;
    loop {
        let e = match op(n).await {
            Ok(v) => return Ok(v),
            Err(e) if !retryable(&e) => return Err(e),
            Err(e) if n + 1 >= attempts => return Err(gave_up(e, attempts)),
            Err(e) => e,
        };
        let pause = backoff.after(&e, n);
        if deadline.is_some_and(|d| Instant::now() + pause >= d) {
            return Err(ProviderError::timeout(format!(
                "{} (the deadline came before attempt {})",
                e.message,
                n + 2
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => {
                return Err(ProviderError::interrupted(format!("{} (interrupted while waiting to retry)", e.message)))
            }
        }
        n += 1;
    }
}

/// [`retry`] for blocking code (calls that run on a blocking thread).
pub fn retry_blocking<T>(
    backoff: Backoff,
    mut op: impl FnMut(u32) -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    let attempts = backoff.attempts.max(1);
    let mut n = 0;
    loop {
        match op(n) {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) if n + 1 >= attempts => return Err(gave_up(e, attempts)),
            Err(e) => std::thread::sleep(backoff.after(&e, n)),
        }
        n += 1;
    }
}

/// Polls `check` until it returns `Some`, the deadline passes (a `Timeout` error naming
/// `what`), or `cancel` fires (an `Interrupted` error). `tick` hears the elapsed time after
/// each unsuccessful check, for progress.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    deadline: Instant,
    interval: Duration,
    cancel: &CancellationToken,
    mut tick: impl FnMut(Duration),
    mut check: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ProviderError::timeout(format!(
                "timed out after {}s waiting for {what}",
                now.duration_since(start).as_secs()
            )));
        }
        tick(now.duration_since(start));
        let pause = interval.min(deadline - now);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => {
                return Err(ProviderError::interrupted(format!("interrupted while waiting for {what}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_the_bound() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(Backoff::default(), |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ProviderError::transient("busy"))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(r.unwrap_err().message, "busy (gave up after 5 attempts)");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_does_not_repeat_a_permanent_error() {
        for e in [
            ProviderError::new("no such pool"),
            ProviderError::not_implemented("HTTP 501"),
            ProviderError::auth("401"),
        ] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = retry(Backoff::default(), |_| {
                let e = e.clone();
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Err(e) }
            })
            .await;
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{e:?}");
            assert!(r.is_err());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_error_is_retried_after_the_time_it_names() {
        let started = tokio::time::Instant::now();
        let calls = AtomicU32::new(0);
        let r = retry(Backoff::default(), |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(ProviderError::pending(
                        "PENDING_UPDATE",
                        Some(Duration::from_secs(3)),
                    ))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(1));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_ends_at_the_deadline_and_on_cancel() {
        let deadline = Instant::now() + Duration::from_millis(50);
        let r: Result<(), _> = retry_within(
            Backoff::default(),
            &CancellationToken::new(),
            Some(deadline),
            |_| async { Err(ProviderError::transient("busy")) },
        )
        .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Timeout);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r: Result<(), _> = retry_within(Backoff::default(), &cancel, None, |_| async {
            Err(ProviderError::transient("busy"))
        })
        .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Interrupted);
    }

    #[test]
    fn backoff_grows_caps_and_jitters_below_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(1600));
        assert_eq!(b.delay(30), Duration::from_secs(10));
        for n in 0..10 {
            let j = b.jittered(n);
            assert!(j <= b.delay(n) && j >= b.delay(n) / 2, "{j:?}");
        }
    }
}
