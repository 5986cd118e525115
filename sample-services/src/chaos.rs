//! Fault injection: the faults that can be switched on at runtime (latency, errors, consumer
//! stall, duplicate delivery, dependency outage, CPU burn, and the kinds spans do not show:
//! a recovered exception, a wrong result, inbound network delay, CPU contention), where each
//! takes effect, and the `chaos.*` log records that mark each fault's start and stop as
//! ground truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::logs::Severity;
use serde::{Deserialize, Serialize};

use crate::bus::CORRELATION_ID;
use crate::cpu::Core;
use crate::instruments::ProcessInstruments;
use crate::telemetry::Telemetry;

/// CPU each handler call needs of its service's core (decoding, business logic).
const HANDLER_WORK: Duration = Duration::from_micros(50);
/// How long a noisy neighbour holds the core at a time.
const NEIGHBOUR_SLICE: Duration = Duration::from_millis(20);

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Every matching call takes `ms` milliseconds longer.
    Latency {
        /// Added delay.
        ms: u64,
    },
    /// A fraction `rate` (0–1] of matching calls fail.
    Errors {
        /// Share of calls that fail.
        rate: f64,
    },
    /// The service's consumers stop taking messages; their lag grows. A synchronous service's
    /// handlers hang until their callers give up.
    Stall {},
    /// A fraction `rate` of the events the service publishes are published twice, as a
    /// producer retrying after a lost acknowledgement would.
    Duplicate {
        /// Share of events published twice.
        rate: f64,
    },
    /// The service's downstream dependency (database, card processor…) refuses every call.
    Outage {},
    /// Every matching call burns `ms` milliseconds of CPU on its service's core (see
    /// [`Chaos::apply`]).
    CpuBurn {
        /// CPU time burnt per call.
        ms: u64,
    },
    /// A fraction `rate` of matching handler calls hit an exception, log it at ERROR with
    /// `exception.*` attributes and a stack trace, and recover with a fallback: the call
    /// succeeds and its span ends OK.
    Exception {
        /// Share of calls that throw.
        rate: f64,
    },
    /// A fraction `rate` of the events the service publishes (or answers it returns) carry a
    /// wrong value (an amount its items do not add up to), with no error; the consumers (or
    /// callers) notice and log it.
    WrongResult {
        /// Share of events that are wrong.
        rate: f64,
    },
    /// Every message delivered to the service and every call it serves spends `ms`
    /// milliseconds more in the network before its handler starts: its callers' CLIENT spans
    /// and the delivery lag to it grow; its own SERVER and CONSUMER spans do not.
    NetworkDelay {
        /// Added one-way delay.
        ms: u64,
    },
    /// A noisy neighbour in the service's process holds its core `share` of the time: every
    /// handler of the service waits a little for the CPU, and its process CPU rises.
    CpuContention {
        /// Share of the core the neighbour takes, (0, 0.95].
        share: f64,
    },
}

impl FaultKind {
    /// The kind's name as in `chaos.kind`.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::Errors { .. } => "errors",
            FaultKind::Stall {} => "stall",
            FaultKind::Duplicate { .. } => "duplicate",
            FaultKind::Outage {} => "outage",
            FaultKind::CpuBurn { .. } => "cpu_burn",
            FaultKind::Exception { .. } => "exception",
            FaultKind::WrongResult { .. } => "wrong_result",
            FaultKind::NetworkDelay { .. } => "network_delay",
            FaultKind::CpuContention { .. } => "cpu_contention",
        }
    }

    /// Whether the kind acts on handler calls (and so can be limited to a partition).
    fn on_handlers(&self) -> bool {
        matches!(
            self,
            FaultKind::Latency { .. }
                | FaultKind::Errors { .. }
                | FaultKind::CpuBurn { .. }
                | FaultKind::Exception { .. }
        )
    }

    fn check(&self) -> Result<(), ChaosError> {
        match self {
            FaultKind::Errors { rate }
            | FaultKind::Duplicate { rate }
            | FaultKind::Exception { rate }
            | FaultKind::WrongResult { rate }
                if !(*rate > 0.0 && *rate <= 1.0) =>
            {
                Err(ChaosError::Invalid(format!(
                    "{} rate must be in (0, 1], got {rate}",
                    self.name()
                )))
            }
            FaultKind::CpuContention { share } if !(*share > 0.0 && *share <= 0.95) => {
                Err(ChaosError::Invalid(format!(
                    "cpu_contention share must be in (0, 0.95], got {share}"
                )))
            }
            FaultKind::Latency { ms }
            | FaultKind::CpuBurn { ms }
            | FaultKind::NetworkDelay { ms }
                if *ms == 0 || *ms > 60_000 =>
            {
                Err(ChaosError::Invalid(format!(
                    "{} ms must be 1–60000, got {ms}",
                    self.name()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A fault to start. Unknown fields are refused by [`FaultKind`], which sees every field
/// this struct does not name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// The service it hits (`gateway`, `order`, `inventory`, `payment`, `shipping`,
    /// `notification`).
    pub service: String,
    /// The operation it hits: a span name such as `process inventory`, or a dependency such
    /// as `card-processor`; none means every handler of the service (every dependency, for
    /// an outage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Only deliveries from this partition of the consumed topic (latency, errors and CPU
    /// burn on consumer handlers): one partition misbehaving while its peers do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<usize>,
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Stops by itself after this many seconds; none means until stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// A running fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// Its id, for stopping it.
    pub id: u64,
    /// What was asked for.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// When it started, RFC 3339.
    pub started_at: String,
}

/// Why a fault could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// No such service.
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// A parameter is out of range.
    #[error("invalid fault: {0}")]
    Invalid(String),
    /// No running fault has this id.
    #[error("no running fault {0}")]
    NotFound(u64),
}

/// Where in a service a fault can take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point<'a> {
    /// A handler: an HTTP route, an RPC, a consumer; named by its span name.
    Handler(&'a str),
    /// A call to the named downstream dependency.
    Dependency(&'a str),
    /// A consumer handler (its span name) processing a delivery from `partition`.
    Delivery(&'a str, usize),
}

/// What the faults active at one point do to one call there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Sleep this long.
    pub latency: Duration,
    /// Burn this much CPU.
    pub cpu: Duration,
    /// Fail, with this message.
    pub error: Option<String>,
    /// Hit an exception and recover from it.
    pub exception: bool,
}

#[derive(Debug)]
struct Running {
    fault: Fault,
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Faults {
    next_id: u64,
    running: BTreeMap<u64, Running>,
}

/// The faults of one set of services, and each service's telemetry to record them with.
#[derive(Debug)]
pub struct Chaos {
    faults: Mutex<Faults>,
    services: BTreeMap<&'static str, Arc<Telemetry>>,
    /// Each service's CPU core: its CPU-bound work runs one piece at a time, off the async
    /// workers, as in a service limited to one core.
    cores: BTreeMap<&'static str, Arc<Core>>,
    /// Each service's process CPU metrics, observed from its core.
    _process: Vec<ProcessInstruments>,
}

impl Chaos {
    /// Fault injection over the services whose telemetry is given.
    pub fn new(services: impl IntoIterator<Item = Arc<Telemetry>>) -> Arc<Chaos> {
        let services: BTreeMap<_, _> = services.into_iter().map(|t| (t.service, t)).collect();
        let cores: BTreeMap<_, _> = services.keys().map(|s| (*s, Core::new())).collect();
        Arc::new(Chaos {
            faults: Mutex::new(Faults::default()),
            _process: services
                .iter()
                .filter_map(|(s, t)| Some(ProcessInstruments::observe(t.meter(), cores.get(s)?)))
                .collect(),
            cores,
            services,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a fault and records it; it stops after its duration, if it has one.
    pub fn start(self: &Arc<Self>, spec: FaultSpec) -> Result<Fault, ChaosError> {
        spec.kind.check()?;
        if spec.partition.is_some() && !spec.kind.on_handlers() {
            return Err(ChaosError::Invalid(format!(
                "a {} fault cannot be limited to a partition (latency, errors, cpu_burn and exception can)",
                spec.kind.name()
            )));
        }
        if spec.operation.is_some()
            && matches!(
                spec.kind,
                FaultKind::WrongResult { .. } | FaultKind::CpuContention { .. }
            )
        {
            return Err(ChaosError::Invalid(format!(
                "a {} fault acts on the whole service; leave out the operation",
                spec.kind.name()
            )));
        }
        let telemetry = self
            .services
            .get(spec.service.as_str())
            .ok_or_else(|| ChaosError::UnknownService(spec.service.clone()))?;
        let duration = spec.duration_secs.map(Duration::from_secs);
        let fault = {
            let mut faults = self.lock();
            faults.next_id += 1;
            let fault = Fault {
                id: faults.next_id,
                spec,
                started_at: chrono::Utc::now().to_rfc3339(),
            };
            faults.running.insert(
                fault.id,
                Running {
                    fault: fault.clone(),
                    until: duration.map(|d| Instant::now() + d),
                },
            );
            fault
        };
        record(telemetry, &fault, "start");
        if let (FaultKind::CpuContention { share }, Some(core)) = (
            &fault.spec.kind,
            self.cores.get(fault.spec.service.as_str()),
        ) {
            let (chaos, id, core) = (Arc::clone(self), fault.id, core.clone());
            let rest = NEIGHBOUR_SLICE.mul_f64((1.0 - share) / share);
            tokio::spawn(async move {
                while chaos.running(id) {
                    core.run(NEIGHBOUR_SLICE).await;
                    tokio::time::sleep(rest).await;
                }
            });
        }
        if let Some(d) = duration {
            let (chaos, id) = (Arc::clone(self), fault.id);
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                // Already stopped by hand: nothing to do.
                let _ = chaos.stop(id);
            });
        }
        Ok(fault)
    }

    /// Stops a running fault and records it.
    pub fn stop(&self, id: u64) -> Result<Fault, ChaosError> {
        let running = self
            .lock()
            .running
            .remove(&id)
            .ok_or(ChaosError::NotFound(id))?;
        if let Some(t) = self.services.get(running.fault.spec.service.as_str()) {
            record(t, &running.fault, "stop");
        }
        Ok(running.fault)
    }

    /// Stops every running fault; returns how many there were.
    pub fn stop_all(&self) -> usize {
        let ids: Vec<u64> = self.lock().running.keys().copied().collect();
        ids.into_iter().filter(|id| self.stop(*id).is_ok()).count()
    }

    /// The running faults.
    pub fn list(&self) -> Vec<Fault> {
        self.lock()
            .running
            .values()
            .map(|r| r.fault.clone())
            .collect()
    }

    /// Whether fault `id` is still on.
    fn running(&self, id: u64) -> bool {
        let now = Instant::now();
        self.lock()
            .running
            .get(&id)
            .is_some_and(|r| r.until.is_none_or(|u| now < u))
    }

    fn active<T>(&self, service: &str, mut f: impl FnMut(&FaultSpec) -> Option<T>) -> Vec<T> {
        let now = Instant::now();
        let faults = self.lock();
        faults
            .running
            .values()
            .filter(|r| r.fault.spec.service == service && r.until.is_none_or(|u| now < u))
            .filter_map(|r| f(&r.fault.spec))
            .collect()
    }

    /// What the faults on `service` do to one call at `point`.
    pub fn effects(&self, service: &str, point: Point<'_>) -> Effects {
        let hits = |op: &Option<String>, name: &str| op.as_deref().is_none_or(|o| o == name);
        let mut effects = Effects::default();
        for kind in self.active(service, |spec| {
            let handler_kind = spec.kind.on_handlers();
            let applies = match (&spec.kind, point) {
                (FaultKind::Outage {}, Point::Dependency(d)) => hits(&spec.operation, d),
                (_, Point::Handler(h)) if handler_kind => {
                    spec.partition.is_none() && hits(&spec.operation, h)
                }
                (_, Point::Delivery(h, p)) if handler_kind => {
                    spec.partition.is_none_or(|want| want == p) && hits(&spec.operation, h)
                }
                (
                    FaultKind::Latency { .. }
                    | FaultKind::Errors { .. }
                    | FaultKind::CpuBurn { .. },
                    Point::Dependency(d),
                ) => spec.operation.as_deref() == Some(d),
                _ => false,
            };
            applies.then(|| spec.kind.clone())
        }) {
            match kind {
                FaultKind::Latency { ms } => effects.latency += Duration::from_millis(ms),
                FaultKind::CpuBurn { ms } => effects.cpu += Duration::from_millis(ms),
                FaultKind::Errors { rate } if fastrand::f64() < rate => {
                    effects.error = Some("injected error".into());
                }
                FaultKind::Exception { rate } if fastrand::f64() < rate => {
                    effects.exception = true;
                }
                FaultKind::Outage {} => {
                    if let Point::Dependency(d) = point {
                        effects.error = Some(format!("{d} unavailable: connection refused"));
                    }
                }
                _ => {}
            }
        }
        effects
    }

    /// Runs one call at `point` of `service`: a handler's own CPU work and any injected
    /// burn on the service's core (so a CPU-bound service slows itself, its calls queueing
    /// for the core, and not every service sharing the process's async workers), then the
    /// injected delay; an injected exception is logged and recovered from, an injected
    /// error returned.
    pub async fn apply(&self, service: &str, point: Point<'_>) -> Result<(), String> {
        let effects = self.effects(service, point);
        // Not a service of this set: nothing can be injected into it.
        let (Some(core), Some(telemetry)) = (self.cores.get(service), self.services.get(service))
        else {
            return Ok(());
        };
        let own = match point {
            Point::Handler(_) | Point::Delivery(..) => HANDLER_WORK,
            Point::Dependency(_) => Duration::ZERO,
        };
        core.run(own + effects.cpu).await;
        if !effects.latency.is_zero() {
            tokio::time::sleep(effects.latency).await;
        }
        if effects.exception {
            let (Point::Handler(h) | Point::Delivery(h, _) | Point::Dependency(h)) = point;
            throw(telemetry, h);
        }
        match effects.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// How long a message delivered to `handler` of `service`, or a call it serves, spends
    /// in the network on its way in.
    pub fn inbound_delay(&self, service: &str, handler: &str) -> Duration {
        self.active(service, |spec| match spec.kind {
            FaultKind::NetworkDelay { ms }
                if spec.operation.as_deref().is_none_or(|o| o == handler) =>
            {
                Some(Duration::from_millis(ms))
            }
            _ => None,
        })
        .into_iter()
        .sum()
    }

    /// Whether the next event `service` publishes should carry a wrong value.
    pub fn wrong_result(&self, service: &str) -> bool {
        self.active(service, |spec| match spec.kind {
            FaultKind::WrongResult { rate } => Some(rate),
            _ => None,
        })
        .iter()
        .any(|rate| fastrand::f64() < *rate)
    }

    /// True while a stall fault holds the consumer `handler` of `service`.
    pub fn stalled(&self, service: &str, handler: &str) -> bool {
        !self
            .active(service, |spec| {
                (spec.kind == FaultKind::Stall {}
                    && spec.operation.as_deref().is_none_or(|o| o == handler))
                .then_some(())
            })
            .is_empty()
    }

    /// How many times `service` should publish its next event: 2 when a duplicate fault
    /// picks it, else 1.
    pub fn copies(&self, service: &str) -> usize {
        let dup = self.active(service, |spec| match spec.kind {
            FaultKind::Duplicate { rate } => Some(rate),
            _ => None,
        });
        if dup.iter().any(|rate| fastrand::f64() < *rate) {
            2
        } else {
            1
        }
    }
}

/// Exceptions a handler may hit: type and message.
const EXCEPTIONS: [(&str, &str); 4] = [
    (
        "NullPointerException",
        "cached value for the request was null",
    ),
    (
        "IllegalStateException",
        "connection pool returned a closed connection",
    ),
    (
        "SerializationException",
        "cannot decode cached record: unexpected end of input",
    ),
    (
        "IndexOutOfBoundsException",
        "index 3 out of bounds for length 3",
    ),
];

/// Logs an exception `handler` of the service hit and recovered from, at ERROR, in the
/// current span, with the OpenTelemetry `exception.*` attributes and a stack trace.
fn throw(telemetry: &Telemetry, handler: &str) {
    let (kind, message) = EXCEPTIONS[handler.len() % EXCEPTIONS.len()];
    let frame = handler
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>();
    let service = telemetry.service;
    let stack = format!(
        "{kind}: {message}\n\tat {service}.{frame}.load_cached({service}/{frame}.rs:118)\n\
         \tat {service}.{frame}.handle({service}/{frame}.rs:64)\n\
         \tat runtime.worker.poll(runtime/worker.rs:412)"
    );
    let cx = Context::current();
    let correlation_id = cx
        .baggage()
        .get(CORRELATION_ID)
        .map(|v| v.to_string())
        .unwrap_or_default();
    telemetry.log(
        &cx,
        Severity::Error,
        format!("unexpected exception in {handler}, serving the fallback\n{stack}"),
        &correlation_id,
        &[
            ("exception.type", kind.to_string()),
            ("exception.message", message.to_string()),
            ("exception.stacktrace", stack.clone()),
        ],
    );
}

/// Logs a fault's start or stop from the service it hits, with `chaos.*` attributes.
fn record(telemetry: &Telemetry, fault: &Fault, action: &'static str) {
    let spec = &fault.spec;
    let mut attributes = vec![
        ("chaos.action", action.to_string()),
        ("chaos.fault_id", fault.id.to_string()),
        ("chaos.kind", spec.kind.name().to_string()),
        ("chaos.service", spec.service.clone()),
        (
            "chaos.operation",
            spec.operation.clone().unwrap_or_default(),
        ),
    ];
    if let Some(p) = spec.partition {
        attributes.push(("chaos.partition", p.to_string()));
    }
    match spec.kind {
        FaultKind::Latency { ms } => attributes.push(("chaos.latency_ms", ms.to_string())),
        FaultKind::CpuBurn { ms } => attributes.push(("chaos.cpu_ms", ms.to_string())),
        FaultKind::NetworkDelay { ms } => attributes.push(("chaos.latency_ms", ms.to_string())),
        FaultKind::Errors { rate }
        | FaultKind::Duplicate { rate }
        | FaultKind::Exception { rate }
        | FaultKind::WrongResult { rate } => {
            attributes.push(("chaos.rate", rate.to_string()));
        }
        FaultKind::CpuContention { share } => {
            attributes.push(("chaos.share", share.to_string()));
        }
        FaultKind::Stall {} | FaultKind::Outage {} => {}
    }
    telemetry.record(
        Severity::Warn,
        format!(
            "chaos: {} fault {} {} on {}{}",
            spec.kind.name(),
            fault.id,
            if action == "start" {
                "started"
            } else {
                "stopped"
            },
            spec.service,
            spec.operation
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        ),
        &attributes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Export;

    fn chaos() -> Arc<Chaos> {
        Chaos::new(
            ["payment", "order"].map(|s| Arc::new(Telemetry::new(s, &Export::none()).unwrap())),
        )
    }

    fn spec(service: &str, operation: Option<&str>, kind: FaultKind) -> FaultSpec {
        FaultSpec {
            service: service.into(),
            operation: operation.map(Into::into),
            partition: None,
            kind,
            duration_secs: None,
        }
    }

    #[tokio::test]
    async fn faults_hit_only_their_service_and_operation() {
        let c = chaos();
        let lat = c
            .start(spec("payment", None, FaultKind::Latency { ms: 200 }))
            .unwrap();
        let out = c
            .start(spec(
                "payment",
                Some("card-processor"),
                FaultKind::Outage {},
            ))
            .unwrap();
        let pay = c.effects("payment", Point::Handler("process inventory"));
        assert_eq!(pay.latency, Duration::from_millis(200));
        assert_eq!(pay.error, None);
        assert_eq!(
            c.effects("order", Point::Handler("order.place")),
            Effects::default()
        );
        let dep = c.effects("payment", Point::Dependency("card-processor"));
        assert_eq!(
            dep.latency,
            Duration::ZERO,
            "handler latency stays at the handler"
        );
        assert!(dep.error.unwrap().contains("card-processor unavailable"));
        assert_eq!(
            c.effects("payment", Point::Dependency("fraud-check")).error,
            None
        );
        assert_eq!(c.list().len(), 2);
        c.stop(lat.id).unwrap();
        c.stop(out.id).unwrap();
        assert!(matches!(c.stop(out.id), Err(ChaosError::NotFound(_))));
        assert_eq!(
            c.effects("payment", Point::Dependency("card-processor")),
            Effects::default()
        );
    }

    #[tokio::test]
    async fn a_partition_fault_hits_only_that_partitions_deliveries() {
        let c = chaos();
        let mut slow = spec(
            "payment",
            Some("process inventory"),
            FaultKind::Latency { ms: 150 },
        );
        slow.partition = Some(3);
        c.start(slow).unwrap();
        let at = |p| c.effects("payment", Point::Delivery("process inventory", p));
        assert_eq!(at(3).latency, Duration::from_millis(150));
        assert_eq!(at(2), Effects::default());
        assert_eq!(
            c.effects("payment", Point::Handler("process inventory")),
            Effects::default()
        );
        // A fault without a partition still hits every delivery.
        c.start(spec("payment", None, FaultKind::CpuBurn { ms: 1 }))
            .unwrap();
        assert_eq!(at(2).cpu, Duration::from_millis(1));
        let mut stall = spec("payment", None, FaultKind::Stall {});
        stall.partition = Some(1);
        let refused = c.start(stall).unwrap_err().to_string();
        assert!(
            refused.contains("cannot be limited to a partition"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn stall_duplicate_and_error_rates() {
        let c = chaos();
        c.start(spec(
            "order",
            Some("process shipments"),
            FaultKind::Stall {},
        ))
        .unwrap();
        assert!(c.stalled("order", "process shipments"));
        assert!(!c.stalled("order", "process inventory"));
        c.start(spec("order", None, FaultKind::Duplicate { rate: 1.0 }))
            .unwrap();
        assert_eq!(c.copies("order"), 2);
        assert_eq!(c.copies("payment"), 1);
        c.start(spec("payment", None, FaultKind::Errors { rate: 0.5 }))
            .unwrap();
        let failed = (0..2_000)
            .filter(|_| {
                c.effects("payment", Point::Handler("process inventory"))
                    .error
                    .is_some()
            })
            .count();
        assert!(
            (800..1_200).contains(&failed),
            "{failed} of 2000 failed at rate 0.5"
        );
        assert_eq!(c.stop_all(), 3);
        assert!(!c.stalled("order", "process shipments"));
    }

    #[tokio::test]
    async fn bad_faults_are_refused_and_timed_ones_stop() {
        let c = chaos();
        assert!(matches!(
            c.start(spec("billing", None, FaultKind::Stall {})),
            Err(ChaosError::UnknownService(_))
        ));
        assert!(matches!(
            c.start(spec("order", None, FaultKind::Errors { rate: 1.5 })),
            Err(ChaosError::Invalid(_))
        ));
        assert!(matches!(
            c.start(spec("order", None, FaultKind::Latency { ms: 0 })),
            Err(ChaosError::Invalid(_))
        ));
        let mut timed = spec("order", None, FaultKind::Stall {});
        timed.duration_secs = Some(0);
        c.start(timed).unwrap();
        assert!(!c.stalled("order", "process inventory"), "expired at once");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(c.list().is_empty(), "the timer stopped it");
    }

    #[tokio::test]
    async fn faults_spans_do_not_show() {
        let c = chaos();
        c.start(spec("payment", None, FaultKind::Exception { rate: 1.0 }))
            .unwrap();
        let hit = c.effects("payment", Point::Handler("process inventory"));
        assert!(hit.exception && hit.error.is_none(), "{hit:?}");
        // Recovered: the call succeeds.
        c.apply("payment", Point::Handler("process inventory"))
            .await
            .unwrap();
        assert!(!c.effects("order", Point::Handler("order.place")).exception);

        c.start(spec("order", None, FaultKind::WrongResult { rate: 1.0 }))
            .unwrap();
        assert!(c.wrong_result("order"));
        assert!(!c.wrong_result("payment"));

        c.start(spec(
            "payment",
            Some("process inventory"),
            FaultKind::NetworkDelay { ms: 80 },
        ))
        .unwrap();
        assert_eq!(
            c.inbound_delay("payment", "process inventory"),
            Duration::from_millis(80)
        );
        assert_eq!(c.inbound_delay("payment", "process orders"), Duration::ZERO);
        assert_eq!(
            c.effects("payment", Point::Handler("process inventory"))
                .latency,
            Duration::ZERO,
            "the handler itself is not slower"
        );
        let whole = spec(
            "order",
            Some("order.place"),
            FaultKind::CpuContention { share: 0.5 },
        );
        assert!(
            c.start(whole)
                .unwrap_err()
                .to_string()
                .contains("whole service")
        );
        assert!(matches!(
            c.start(spec("order", None, FaultKind::CpuContention { share: 1.0 })),
            Err(ChaosError::Invalid(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_noisy_neighbour_takes_its_share_of_the_core() {
        let c = chaos();
        let core = c.cores["order"].clone();
        let f = c
            .start(spec("order", None, FaultKind::CpuContention { share: 0.5 }))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.stop(f.id).unwrap();
        let busy = core.busy();
        assert!(
            busy >= Duration::from_millis(120) && busy <= Duration::from_millis(300),
            "{busy:?} of 400ms at half"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(core.busy() <= busy + NEIGHBOUR_SLICE, "the neighbour left");
        assert_eq!(c.cores["payment"].busy(), Duration::ZERO);
    }

    #[test]
    fn specs_read_from_json() {
        let s: FaultSpec = serde_json::from_str(
            r#"{"service":"payment","kind":"latency","ms":300,"duration_secs":60}"#,
        )
        .unwrap();
        assert_eq!(s.kind, FaultKind::Latency { ms: 300 });
        for bad in [
            r#"{"service":"x","kind":"stall","bogus":1}"#,
            r#"{"service":"x","kind":"latency","ms":5,"bogus":1}"#,
            r#"{"service":"x","kind":"latency"}"#,
            r#"{"service":"x","kind":"flood"}"#,
        ] {
            assert!(serde_json::from_str::<FaultSpec>(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_service_burns_on_its_own_core_without_blocking_the_async_workers() {
        let c = chaos();
        c.start(spec("order", None, FaultKind::CpuBurn { ms: 100 }))
            .unwrap();
        let start = Instant::now();
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.apply("order", Point::Handler("place order")).await })
            })
            .collect();
        // This runtime has one thread: a burn on it would hold this timer up.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            start.elapsed() < Duration::from_millis(80),
            "{:?}",
            start.elapsed()
        );
        // Another service's calls are not held up by order's core.
        let other = Instant::now();
        c.apply("payment", Point::Handler("process inventory"))
            .await
            .unwrap();
        assert!(other.elapsed() < Duration::from_millis(20));
        for call in calls {
            call.await.unwrap().unwrap();
        }
        // One core: the three burns ran one after another.
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
    }
}
