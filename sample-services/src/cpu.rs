//! A service's one CPU core: its CPU-bound work (each handler's own computation, an injected
//! burn, a noisy neighbour) runs on it one piece at a time, off the async workers, and the
//! time the core spends busy is the service's process CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// One core of one service.
#[derive(Debug)]
pub struct Core {
    slot: Arc<Semaphore>,
    busy_ns: AtomicU64,
}

impl Core {
    /// An idle core.
    pub fn new() -> Arc<Core> {
        Arc::new(Core {
            slot: Arc::new(Semaphore::new(1)),
            busy_ns: AtomicU64::new(0),
        })
    }

    /// Runs `work` worth of CPU on the core: waits while other work holds it (as a thread
    /// waits to be scheduled), then spins on a blocking thread. Holding the core until the
    /// spin ends keeps one piece of work on it even if the caller is cancelled.
    pub async fn run(self: &Arc<Self>, work: Duration) {
        if work.is_zero() {
            return;
        }
        // Closed never: the semaphore is the core's own.
        let Ok(permit) = self.slot.clone().acquire_owned().await else {
            return;
        };
        let core = Arc::clone(self);
        // A spin that panicked has nothing to report.
        let _ = tokio::task::spawn_blocking(move || {
            let spent = spin(work);
            core.busy_ns.fetch_add(
                u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            drop(permit);
        })
        .await;
    }

    /// CPU time spent so far.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }
}

/// Spins the current thread for `how_long`, as CPU-bound code would; returns the time spent.
fn spin(how_long: Duration) -> Duration {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while start.elapsed() < how_long {
        for _ in 0..1_000 {
            x = std::hint::black_box(x.rotate_left(7) ^ x.wrapping_mul(31));
        }
    }
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spin_takes_the_time_asked() {
        assert!(spin(Duration::from_millis(20)) >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn work_queues_for_the_core_and_is_counted() {
        let core = Core::new();
        let start = Instant::now();
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let core = core.clone();
                tokio::spawn(async move { core.run(Duration::from_millis(30)).await })
            })
            .collect();
        // This runtime has one thread: a spin on it would hold this timer up.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            start.elapsed() < Duration::from_millis(25),
            "{:?}",
            start.elapsed()
        );
        for r in runs {
            r.await.unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "one after another"
        );
        assert!(
            core.busy() >= Duration::from_millis(90),
            "{:?}",
            core.busy()
        );
    }
}
