//! Polling with a deadline: the only way the scenarios wait for eventual consistency. Every
//! wait has a bound, and a timeout says what was awaited and what the last probe saw.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Pause between probes.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Calls `probe` until it returns `Ok(Some(value))` or `timeout` passes. `Ok(None)` means
/// "not yet" and `Err` is remembered (a hub still starting refuses connections) — both are
/// retried. The timeout error names `what` and the last error or the last "not yet" note.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = Instant::now();
    let mut probes = 0u32;
    loop {
        probes += 1;
        let last_error = match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => None,
            Err(error) => Some(error),
        };
        if started.elapsed() >= timeout {
            match last_error {
                Some(error) => bail!(
                    "timed out after {timeout:?} ({probes} probes) waiting for {what}; \
                     last error: {error:#}"
                ),
                None => bail!("timed out after {timeout:?} ({probes} probes) waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_success_and_retries_errors() {
        let calls = AtomicU32::new(0);
        let value = wait_until("the third call", Duration::from_secs(5), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => anyhow::bail!("refused"),
                    1 => Ok(None),
                    _ => Ok(Some(n)),
                }
            }
        })
        .await
        .expect("succeeds");
        assert_eq!(value, 2);
    }

    #[tokio::test]
    async fn times_out_naming_the_wait_and_the_last_error() {
        let error = wait_until::<(), _, _>("a miracle", Duration::from_millis(250), || async {
            anyhow::bail!("connection refused")
        })
        .await
        .expect_err("times out");
        let text = format!("{error:#}");
        assert!(text.contains("a miracle"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
    }
}
