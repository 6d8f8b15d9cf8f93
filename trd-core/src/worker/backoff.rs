//! Waiting between attempts to reach a dependency, cut short by shutdown.

use std::time::Duration;

use super::context::WorkerContext;

/// Doubling back-off between reconnection attempts and in-place retries, capped.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self(Self::FIRST)
    }

    /// The delay to wait now; the next one is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Sleeps unless shutdown comes first; `false` on shutdown.
pub async fn pause(ctx: &WorkerContext, delay: Duration) -> bool {
    tokio::select! {
        () = ctx.shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..7).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Backoff::FIRST);
        assert_eq!(delays[1], Backoff::FIRST * 2);
        assert_eq!(delays[6], Backoff::MAX);
    }
}
