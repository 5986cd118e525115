//! Fault injection: the faults that can be switched on at runtime (latency, errors, consumer
//! stall, duplicate delivery, dependency outage, CPU burn), where each takes effect, and the
//! `chaos.*` log records that mark each fault's start and stop as ground truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::logs::Severity;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::telemetry::Telemetry;

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
    /// The service's consumers stop taking messages; their lag grows.
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
        }
    }

    fn check(&self) -> Result<(), ChaosError> {
        match self {
            FaultKind::Errors { rate } | FaultKind::Duplicate { rate }
                if !(*rate > 0.0 && *rate <= 1.0) =>
            {
                Err(ChaosError::Invalid(format!(
                    "{} rate must be in (0, 1], got {rate}",
                    self.name()
                )))
            }
            FaultKind::Latency { ms } | FaultKind::CpuBurn { ms } if *ms == 0 || *ms > 60_000 => {
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
}

impl Effects {
    /// Burns the CPU on `core` (waiting for it while another call of the service holds it),
    /// applies the delay, then fails if a fault says so.
    async fn apply(self, core: Arc<Semaphore>) -> Result<(), String> {
        if !self.cpu.is_zero() {
            // Closed never: the semaphore is the service's own. Holding the permit until the
            // burn ends keeps one burn per core even if this call is cancelled.
            if let Ok(permit) = core.acquire_owned().await {
                let cpu = self.cpu;
                // A burn that panicked has nothing to report.
                let _ = tokio::task::spawn_blocking(move || {
                    burn(cpu);
                    drop(permit);
                })
                .await;
            }
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Spins the current thread for `how_long`, as a CPU-bound handler would.
fn burn(how_long: Duration) {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while start.elapsed() < how_long {
        for _ in 0..1_000 {
            x = std::hint::black_box(x.rotate_left(7) ^ x.wrapping_mul(31));
        }
    }
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
    /// Each service's CPU core: its CPU-bound work runs one call at a time, off the async
    /// workers, as in a service limited to one core.
    cores: BTreeMap<&'static str, Arc<Semaphore>>,
}

impl Chaos {
    /// Fault injection over the services whose telemetry is given.
    pub fn new(services: impl IntoIterator<Item = Arc<Telemetry>>) -> Arc<Chaos> {
        let services: BTreeMap<_, _> = services.into_iter().map(|t| (t.service, t)).collect();
        Arc::new(Chaos {
            faults: Mutex::new(Faults::default()),
            cores: services
                .keys()
                .map(|s| (*s, Arc::new(Semaphore::new(1))))
                .collect(),
            services,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a fault and records it; it stops after its duration, if it has one.
    pub fn start(self: &Arc<Self>, spec: FaultSpec) -> Result<Fault, ChaosError> {
        spec.kind.check()?;
        if spec.partition.is_some()
            && !matches!(
                spec.kind,
                FaultKind::Latency { .. } | FaultKind::Errors { .. } | FaultKind::CpuBurn { .. }
            )
        {
            return Err(ChaosError::Invalid(format!(
                "a {} fault cannot be limited to a partition (latency, errors and cpu_burn can)",
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
            let handler_kind = matches!(
                spec.kind,
                FaultKind::Latency { .. } | FaultKind::Errors { .. } | FaultKind::CpuBurn { .. }
            );
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

    /// Applies the faults on `service` at `point` to one call there. CPU burns run on the
    /// service's own core, so a CPU-bound service slows itself (its calls queue for the core)
    /// and not every service sharing the process's async workers.
    pub async fn apply(&self, service: &str, point: Point<'_>) -> Result<(), String> {
        let effects = self.effects(service, point);
        match self.cores.get(service) {
            Some(core) => effects.apply(core.clone()).await,
            // Not a service of this set: nothing can be injected into it.
            None => Ok(()),
        }
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
        FaultKind::Errors { rate } | FaultKind::Duplicate { rate } => {
            attributes.push(("chaos.rate", rate.to_string()));
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

    #[test]
    fn cpu_burn_takes_the_time_asked() {
        let start = Instant::now();
        burn(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
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
