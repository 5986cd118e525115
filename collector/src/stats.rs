//! Ingest counters per signal and transport, rendered in Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil_store::Signal;
use vigil_store::exposition::{Exposition, FAST_SECONDS, Histogram};

/// The wire an export request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Transport {
    const ALL: [Transport; 2] = [Transport::Grpc, Transport::Http];

    fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

const REASONS: [&str; 6] = [
    "invalid",
    "too_large",
    "unsupported_media_type",
    "memory_budget",
    "unavailable",
    "internal",
];

#[derive(Debug)]
struct Cell {
    received: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    refused_requests: [AtomicU64; REASONS.len()],
    ack_seconds: Histogram,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            received: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            refused_requests: Default::default(),
            ack_seconds: Histogram::new(FAST_SECONDS),
        }
    }
}

/// Counters of what the receivers saw and did.
#[derive(Debug, Default)]
pub struct IngestStats {
    cells: [[Cell; 2]; Signal::TELEMETRY.len()],
}

impl IngestStats {
    fn cell(&self, signal: Signal, transport: Transport) -> &Cell {
        &self.cells[signal.index()][transport as usize]
    }

    /// Records a stored request: `received` items, of which `rejected` broke the rules,
    /// acknowledged `latency` after it was admitted.
    pub fn record_export(
        &self,
        signal: Signal,
        transport: Transport,
        (received, rejected): (u64, u64),
        latency: Duration,
    ) {
        let c = self.cell(signal, transport);
        c.ack_seconds.observe(latency.as_secs_f64());
        c.received.fetch_add(received, Ordering::Relaxed);
        c.rejected.fetch_add(rejected, Ordering::Relaxed);
        c.accepted
            .fetch_add(received - rejected.min(received), Ordering::Relaxed);
    }

    /// Records the items of a request that was decoded and then refused as a whole.
    pub fn record_received(&self, signal: Signal, transport: Transport, items: u64) {
        self.cell(signal, transport)
            .received
            .fetch_add(items, Ordering::Relaxed);
    }

    /// Records a refused request, once per request whatever stage refused it.
    pub fn record_refusal(&self, signal: Signal, transport: Transport, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.cell(signal, transport).refused_requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every cell with its `signal` and `transport` labels.
    fn cells(&self) -> impl Iterator<Item = ([(&'static str, &'static str); 2], &Cell)> {
        Signal::TELEMETRY.into_iter().flat_map(move |signal| {
            Transport::ALL.into_iter().map(move |t| {
                let labels = [("signal", signal.table_name()), ("transport", t.label())];
                (labels, self.cell(signal, t))
            })
        })
    }

    /// Writes these counters and the acknowledgement latencies to `page`.
    pub fn render(&self, page: &mut Exposition) {
        let series = [
            (
                "vigil_ingest_items_received_total",
                "Items (spans, log records, metric points) in export requests.",
                0,
            ),
            (
                "vigil_ingest_items_accepted_total",
                "Items stored durably.",
                1,
            ),
            (
                "vigil_ingest_items_rejected_total",
                "Items refused inside a partially successful request (invalid ids and the like).",
                2,
            ),
        ];
        for (name, help, which) in series {
            let mut family = page.counter(name, help);
            for (labels, c) in self.cells() {
                let v = [&c.received, &c.accepted, &c.rejected][which].load(Ordering::Relaxed);
                family.sample(&labels, v as f64);
            }
        }
        let mut family = page.counter(
            "vigil_ingest_requests_refused_total",
            "Export requests refused as a whole, by reason.",
        );
        for ([signal, transport], c) in self.cells() {
            for (reason, n) in REASONS.iter().zip(&c.refused_requests) {
                let labels = [signal, transport, ("reason", reason)];
                family.sample(&labels, n.load(Ordering::Relaxed) as f64);
            }
        }
        let mut family = page.histogram(
            "vigil_ingest_ack_duration_seconds",
            "Time from an export request's arrival to its answer, for requests stored durably.",
        );
        for (labels, c) in self.cells() {
            family.observed(&labels, &c.ack_seconds);
        }
    }
}
