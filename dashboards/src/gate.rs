//! How many query API requests may read the store at once (`[api] max_concurrent_queries`),
//! how many do and how many wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_store::exposition::{Exposition, Single};

/// How many requests read now and how many wait. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    limit: usize,
    waiting: Arc<AtomicUsize>,
}

impl Gate {
    /// A gate admitting `limit` requests at once (at least one).
    pub fn new(limit: usize) -> Gate {
        let limit = limit.max(1);
        Gate {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests that may read at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits up to `wait` for a slot; `None` when none came free. The slot is the request's
    /// until the permit is dropped.
    pub async fn enter(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit.ok()?.ok()
    }

    /// Writes the gate's figures to `page`.
    pub fn render(&self, page: &mut Exposition) {
        let running = self.limit - self.permits.available_permits();
        for (name, help, value) in [
            (
                "vigil_api_queries_running",
                "Query API requests reading the store now.",
                running,
            ),
            (
                "vigil_api_queries_queued",
                "Query API requests waiting for one of the running ones to finish.",
                self.waiting.load(Ordering::Relaxed),
            ),
            (
                "vigil_api_queries_limit",
                "Query API requests that may read at once ([api] max_concurrent_queries).",
                self.limit,
            ),
        ] {
            page.single(Single::Gauge, name, help, value as f64);
        }
    }
}
