//! Bounded retries with exponential backoff.

use crate::ProviderError;
use std::future::Future;
use std::time::Duration;

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
    /// The delay before retry number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or the attempts run out.
pub async fn retry<T, F, Fut>(backoff: Backoff, mut op: F) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let attempts = backoff.attempts.max(1);
    let mut n = 0;
    loop {
        match op(n).await {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable && n + 1 < attempts => {
                tokio::time::sleep(backoff.delay(n)).await;
                n += 1;
            }
            Err(e) if e.retryable => {
                return Err(ProviderError::new(format!(
                    "{} (gave up after {attempts} attempts)",
                    e.message
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Polls `check` until it returns `Some`, or fails once `timeout` has passed.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::new(format!(
                "timed out after {}s waiting for {what}",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(interval).await;
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
            Err(ProviderError::retryable("busy"))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(r.unwrap_err().message, "busy (gave up after 5 attempts)");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_does_not_repeat_a_permanent_error() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(Backoff::default(), |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ProviderError::new("no such pool"))
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(r.is_err());
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(1600));
        assert_eq!(b.delay(30), Duration::from_secs(10));
    }
}
