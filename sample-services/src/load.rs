//! The load generator: open-loop order traffic against the gateway at a fixed rate, with a
//! realistic mix of valid, out-of-stock and declined orders, reporting achieved rate and
//! latency percentiles. Latency is measured from when each request was due, not when it was
//! sent, so a slow server cannot hide its queueing (no coordinated omission).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::saga::{Item, OrderRequest};

/// Stock keeping units the demo inventory carries, with unit prices in cents.
pub const CATALOG: [(&str, u64); 5] = [
    ("widget", 1_250),
    ("gadget", 4_999),
    ("gizmo", 899),
    ("sprocket", 2_400),
    ("doohickey", 7_500),
];

/// A sku the inventory lists but never has: orders for it fail for lack of stock.
pub const SOLD_OUT: &str = "limited-edition";

/// The inventory the demo starts with: plenty of every catalog item, none of [`SOLD_OUT`].
pub fn stock() -> Vec<(String, u64)> {
    CATALOG
        .iter()
        .map(|(sku, _)| (sku.to_string(), 1_000_000_000))
        .chain([(SOLD_OUT.to_string(), 0)])
        .collect()
}

/// The share of each kind of order; the rest are valid.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Orders including the sold-out item.
    pub out_of_stock: f64,
    /// Orders paid with a card that is declined.
    pub declined: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            out_of_stock: 0.05,
            declined: 0.05,
        }
    }
}

impl Mix {
    /// A random order drawn from this mix.
    pub fn order(&self) -> OrderRequest {
        let mut items: Vec<Item> = (0..fastrand::usize(1..=3))
            .map(|_| {
                let (sku, price) = CATALOG[fastrand::usize(..CATALOG.len())];
                Item {
                    sku: sku.to_string(),
                    qty: fastrand::u32(1..=3),
                    unit_price_cents: price,
                }
            })
            .collect();
        let draw = fastrand::f64();
        let mut card = format!("tok_{:016x}", fastrand::u64(..));
        if draw < self.out_of_stock {
            items.push(Item {
                sku: SOLD_OUT.to_string(),
                qty: 1,
                unit_price_cents: 19_900,
            });
        } else if draw < self.out_of_stock + self.declined {
            card = "declined".into();
        }
        OrderRequest {
            customer_id: format!("cust-{}", fastrand::u32(1..=5_000)),
            items,
            card,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL of the gateway, e.g. `http://127.0.0.1:8081`.
    pub target: String,
    /// Orders per second.
    pub rate: f64,
    /// How long to send for.
    pub duration: Duration,
    /// Most requests in flight; a request due while all are busy is skipped and counted.
    pub concurrency: usize,
    /// The order mix.
    pub mix: Mix,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Rejected,
    Failed,
    Unreachable,
}

/// Counts so far, for a progress display and the final report.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Time since the start.
    pub elapsed: Duration,
    /// Requests sent.
    pub sent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx.
    pub rejected: u64,
    /// Answered 5xx.
    pub failed: u64,
    /// No answer (connection refused, reset, timeout).
    pub unreachable: u64,
    /// Due while `concurrency` requests were already in flight, so not sent.
    pub skipped: u64,
}

impl Progress {
    /// Requests answered or given up on.
    pub fn done(&self) -> u64 {
        self.accepted + self.rejected + self.failed + self.unreachable
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Final counts; `elapsed` is the time to the last answer.
    pub progress: Progress,
    /// Requests sent per second over the sending period.
    pub achieved_rate: f64,
    /// Latency percentiles (50, 90, 95, 99, 99.9, max) of answered requests.
    pub latency: Vec<(f64, Duration)>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting is out of range.
    #[error("invalid load settings: {0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The `p`-th percentile (0–100) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends orders as `config` says, calling `progress` about once a second; returns when every
/// request sent has been answered or timed out.
pub async fn run(
    config: &LoadConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, LoadError> {
    if !(config.rate > 0.0 && config.rate.is_finite()) {
        return Err(LoadError::Invalid(format!(
            "rate must be above 0, got {}",
            config.rate
        )));
    }
    if config.concurrency == 0 {
        return Err(LoadError::Invalid("concurrency must be at least 1".into()));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(config.concurrency)
        .build()?;
    let url = format!("{}/orders", config.target.trim_end_matches('/'));
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let (tx, mut rx) = mpsc::unbounded_channel::<(Answer, Duration)>();
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let mut counts = Progress::default();
    let mut latencies = Vec::new();
    let mut tally = |counts: &mut Progress, (result, latency): (Answer, Duration)| {
        match result {
            Answer::Accepted => counts.accepted += 1,
            Answer::Rejected => counts.rejected += 1,
            Answer::Failed => counts.failed += 1,
            Answer::Unreachable => counts.unreachable += 1,
        }
        if result != Answer::Unreachable {
            latencies.push(latency);
        }
    };
    let mut next_report = start + Duration::from_secs(1);
    let mut n: u32 = 0;
    loop {
        let due = start + interval * n;
        if due >= start + config.duration {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(due) => {
                n += 1;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    counts.skipped += 1;
                    continue;
                };
                counts.sent += 1;
                let request = client.post(&url).json(&config.mix.order());
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = match request.send().await {
                        Ok(r) if r.status().is_success() => Answer::Accepted,
                        Ok(r) if r.status().is_client_error() => Answer::Rejected,
                        Ok(_) => Answer::Failed,
                        Err(_) => Answer::Unreachable,
                    };
                    drop(permit);
                    // The receiver lives until every sender is gone.
                    let _ = tx.send((result, due.elapsed()));
                });
            }
            Some(done) = rx.recv() => tally(&mut counts, done),
        }
        if Instant::now() >= next_report {
            counts.elapsed = start.elapsed();
            progress(&counts);
            next_report += Duration::from_secs(1);
        }
    }
    let sending = start.elapsed();
    drop(tx);
    while let Some(done) = rx.recv().await {
        tally(&mut counts, done);
    }
    counts.elapsed = start.elapsed();
    progress(&counts);
    latencies.sort_unstable();
    let latency = [50.0, 90.0, 95.0, 99.0, 99.9, 100.0]
        .into_iter()
        .map(|p| (p, percentile(&latencies, p)))
        .collect();
    Ok(Report {
        achieved_rate: counts.sent as f64 / sending.as_secs_f64().max(1e-9),
        progress: counts,
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 99.9), ms(100));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 50.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn the_mix_has_the_shares_asked_for() {
        let mix = Mix {
            out_of_stock: 0.2,
            declined: 0.1,
        };
        let orders: Vec<OrderRequest> = (0..5_000).map(|_| mix.order()).collect();
        let short = orders
            .iter()
            .filter(|o| o.items.iter().any(|i| i.sku == SOLD_OUT))
            .count();
        let declined = orders.iter().filter(|o| o.card == "declined").count();
        assert!((850..1_150).contains(&short), "{short} out of stock");
        assert!((380..620).contains(&declined), "{declined} declined");
        assert!(
            orders
                .iter()
                .all(|o| !o.items.is_empty() && o.items.len() <= 4)
        );
    }

    #[tokio::test]
    async fn bad_settings_are_refused() {
        let mut config = LoadConfig {
            target: "http://127.0.0.1:9".into(),
            rate: 0.0,
            duration: Duration::from_secs(1),
            concurrency: 4,
            mix: Mix::default(),
        };
        assert!(matches!(
            run(&config, |_| {}).await,
            Err(LoadError::Invalid(_))
        ));
        config.rate = 10.0;
        config.concurrency = 0;
        assert!(matches!(
            run(&config, |_| {}).await,
            Err(LoadError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_target_is_counted_not_fatal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let config = LoadConfig {
            target,
            rate: 50.0,
            duration: Duration::from_millis(200),
            concurrency: 8,
            mix: Mix::default(),
        };
        let report = run(&config, |_| {}).await.unwrap();
        assert_eq!(report.progress.sent, 10);
        assert_eq!(report.progress.unreachable, 10);
    }
}
