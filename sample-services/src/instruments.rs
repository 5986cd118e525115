//! The services' metric instruments, named after the OpenTelemetry semantic conventions
//! where one exists: HTTP request duration and in-flight requests, messages sent, message
//! processing duration and in-flight handlers, and the per-consumer observed counters and
//! gauges (messages by outcome, lag, queue depth), and each service's process CPU figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    Counter, Histogram, Meter, ObservableCounter, ObservableGauge, UpDownCounter,
};

use crate::consumer_stats::ConsumerStats;
use crate::cpu::Core;

/// Latency buckets in seconds, 1 ms to 10 s.
const SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Instruments every service records to directly.
#[derive(Debug)]
pub struct Instruments {
    /// `http.server.request.duration` (s), by method, route and status.
    pub http_duration: Histogram<f64>,
    /// `http.server.active_requests`.
    pub http_active: UpDownCounter<i64>,
    /// `messaging.client.sent.messages`, by destination.
    pub sent: Counter<u64>,
    /// `messaging.process.duration` (s), by destination, consumer group and outcome.
    pub process_duration: Histogram<f64>,
    /// `messaging.process.in_flight`: handlers running now, by destination.
    pub in_flight: UpDownCounter<i64>,
}

impl Instruments {
    /// The instruments of `meter`.
    pub fn new(meter: &Meter) -> Instruments {
        Instruments {
            http_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests.")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            http_active: meter
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("HTTP server requests in flight.")
                .build(),
            sent: meter
                .u64_counter("messaging.client.sent.messages")
                .with_unit("{message}")
                .with_description("Messages published.")
                .build(),
            process_duration: meter
                .f64_histogram("messaging.process.duration")
                .with_unit("s")
                .with_description("Duration of processing one delivered message.")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            in_flight: meter
                .i64_up_down_counter("messaging.process.in_flight")
                .with_unit("{message}")
                .with_description("Messages being processed now.")
                .build(),
        }
    }
}

/// Instruments observed from one consumer's [`ConsumerStats`]; they report for as long as
/// this value lives.
#[derive(Debug)]
pub struct ConsumerInstruments {
    _consumed: ObservableCounter<u64>,
    _lag: ObservableGauge<u64>,
    _depth: ObservableGauge<u64>,
}

impl ConsumerInstruments {
    /// Observes `stats` of the consumer group `group` on `topic`.
    pub fn observe(meter: &Meter, topic: &str, group: &str, stats: &Arc<ConsumerStats>) -> Self {
        let labels = [
            KeyValue::new("messaging.destination.name", topic.to_string()),
            KeyValue::new("messaging.consumer.group.name", group.to_string()),
        ];
        let outcome = |o: &'static str| {
            let mut l = labels.to_vec();
            l.push(KeyValue::new("outcome", o));
            l
        };
        type Field = fn(&ConsumerStats) -> &AtomicU64;
        let by_outcome: [(Vec<KeyValue>, Field); 4] = [
            (outcome("processed"), |s| &s.processed),
            (outcome("duplicate"), |s| &s.duplicates),
            (outcome("retried"), |s| &s.retries),
            (outcome("dead_lettered"), |s| &s.dead_lettered),
        ];
        let s = stats.clone();
        let consumed = meter
            .u64_observable_counter("messaging.client.consumed.messages")
            .with_unit("{message}")
            .with_description(
                "Messages consumed, by outcome: processed, duplicate (ignored), retried, dead_lettered.",
            )
            .with_callback(move |o| {
                for (labels, field) in &by_outcome {
                    o.observe(field(&s).load(Ordering::Relaxed), labels);
                }
            })
            .build();
        let (s, l) = (stats.clone(), labels.to_vec());
        let lag = meter
            .u64_observable_gauge("messaging.consumer.lag")
            .with_unit("{message}")
            .with_description("Messages published but not yet acknowledged by the group.")
            .with_callback(move |o| o.observe(s.lag.load(Ordering::Relaxed), &l))
            .build();
        let (s, l) = (stats.clone(), labels.to_vec());
        let depth = meter
            .u64_observable_gauge("messaging.queue.depth")
            .with_unit("{message}")
            .with_description("Messages queued for the group and not yet delivered.")
            .with_callback(move |o| o.observe(s.queued.load(Ordering::Relaxed), &l))
            .build();
        ConsumerInstruments {
            _consumed: consumed,
            _lag: lag,
            _depth: depth,
        }
    }
}

/// A service's process CPU figures under the OpenTelemetry semantic-convention names,
/// observed from its [`Core`]: `process.cpu.time` (s, `cpu.mode` = `user`) and
/// `process.cpu.utilization` (busy share of its one core since the previous observation).
#[derive(Debug)]
pub struct ProcessInstruments {
    _time: ObservableCounter<f64>,
    _utilization: ObservableGauge<f64>,
}

impl ProcessInstruments {
    /// Observes `core`; reports for as long as this value lives.
    pub fn observe(meter: &Meter, core: &Arc<Core>) -> Self {
        let user = [KeyValue::new("cpu.mode", "user")];
        let c = core.clone();
        let time = meter
            .f64_observable_counter("process.cpu.time")
            .with_unit("s")
            .with_description("Total CPU seconds broken down by different CPU modes.")
            .with_callback(move |o| o.observe(c.busy().as_secs_f64(), &user))
            .build();
        let (c, last) = (core.clone(), Mutex::new((Instant::now(), core.busy())));
        let utilization = meter
            .f64_observable_gauge("process.cpu.utilization")
            .with_unit("1")
            .with_description(
                "CPU time since the last measurement divided by the elapsed time and the CPUs available to the process.",
            )
            .with_callback(move |o| {
                let (now, busy) = (Instant::now(), c.busy());
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let elapsed = now.duration_since(last.0);
                if elapsed > Duration::ZERO {
                    let spent = busy.saturating_sub(last.1);
                    o.observe((spent.as_secs_f64() / elapsed.as_secs_f64()).min(1.0), &[]);
                }
                *last = (now, busy);
            })
            .build();
        ProcessInstruments {
            _time: time,
            _utilization: utilization,
        }
    }
}
