//! A generated call graph: synchronous services built from a [`topology`] file, each with
//! its own telemetry, calling one another through traced RPCs (CLIENT span in the caller,
//! trace context carried in request headers, SERVER span in the callee), with the same
//! faults as the saga; and the front door's load.
//!
//! A call the callee does not answer within [`CALL_TIMEOUT`] fails in the caller, which logs
//! it; a response that does not add up is noticed and logged by the caller, which recomputes
//! it; a callee's error fails its callers up to the front door.

pub mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use opentelemetry::context::FutureExt as _;
use opentelemetry::logs::Severity;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use tokio::sync::Semaphore;

use crate::chaos::Chaos;
use crate::ctx::{Ctx, Dependency};
use crate::telemetry::{self, Export, Telemetry, TelemetryError};
use topology::{Operation, Step, Topology};

/// How long a caller waits for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Most front-door requests in flight; requests due beyond it are skipped.
const MAX_IN_FLIGHT: usize = 512;

/// What a callee answered.
#[derive(Debug, Clone, Copy, Default)]
struct Reply {
    /// For a cache lookup: whether it hit.
    hit: Option<bool>,
    /// The answer is wrong (an injected fault).
    wrong: bool,
}

/// Every service of a call graph, running in this process.
#[derive(Debug)]
pub struct Graph {
    topology: Topology,
    contexts: BTreeMap<String, Ctx<()>>,
    databases: BTreeMap<String, Dependency>,
    /// Every service's telemetry.
    pub telemetry: Vec<Arc<Telemetry>>,
    /// The faults that can be injected into the services.
    pub chaos: Arc<Chaos>,
}

/// A name that lives as long as the process: service and dependency names of the one graph a
/// process runs, as its telemetry wants them.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

/// The RPC semantic-convention attributes of a call to `operation` of `service`, on both
/// its CLIENT and SERVER spans.
fn rpc_attributes(service: &str, operation: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service.to_string()),
        KeyValue::new("rpc.method", operation.to_string()),
    ]
}

impl Graph {
    /// Starts every service of `topology`, telemetry exported as `export` says.
    pub fn start(topology: Topology, export: &Export) -> Result<Arc<Graph>, TelemetryError> {
        let telemetry = topology
            .services
            .keys()
            .map(|s| Telemetry::new(leak(s), export).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let chaos = Chaos::new(telemetry.iter().cloned());
        let contexts = telemetry
            .iter()
            .map(|t| {
                let ctx = Ctx {
                    bus: (),
                    telemetry: t.clone(),
                    chaos: chaos.clone(),
                };
                (t.service.to_string(), ctx)
            })
            .collect();
        let databases = topology
            .databases
            .iter()
            .map(|(name, [min, max])| {
                let dep = Dependency {
                    name: leak(name),
                    min: Duration::from_millis(*min),
                    max: Duration::from_millis(*max),
                };
                (name.clone(), dep)
            })
            .collect();
        Ok(Arc::new(Graph {
            topology,
            contexts,
            databases,
            telemetry,
            chaos,
        }))
    }

    /// The graph's topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Sends `rate` requests per second to the front door, spread over its entry requests
    /// by weight, until the returned future is dropped.
    pub async fn drive(self: Arc<Self>, rate: f64) {
        let total: u32 = self.topology.entry.iter().map(|e| e.weight).sum();
        let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1e-3)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let mut pick = fastrand::u32(0..total.max(1));
            let Some(entry) = self.topology.entry.iter().find(|e| {
                let here = pick < e.weight;
                pick = pick.saturating_sub(e.weight);
                here
            }) else {
                continue;
            };
            let (graph, operation) = (self.clone(), entry.operation.clone());
            tokio::spawn(async move {
                let front = graph.topology.front_door.clone();
                // A failed request is in its spans and logs; the load goes on.
                let _ = graph.serve(&front, &operation, BTreeMap::new()).await;
                drop(permit);
            });
        }
    }

    /// Exports all buffered telemetry of every service.
    pub fn flush(&self) {
        for t in &self.telemetry {
            t.flush();
        }
    }

    /// Serves `operation` of `service` for a request carrying `headers`: the network on the
    /// way in, then the handler in a SERVER span.
    fn serve<'a>(
        self: &'a Arc<Self>,
        service: &'a str,
        operation: &'a str,
        headers: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<Reply, String>> {
        Box::pin(async move {
            let (Some(ctx), Some(op)) = (
                self.contexts.get(service),
                self.topology.operation(service, operation),
            ) else {
                return Err(format!("{service} has no operation {operation}"));
            };
            ctx.arrive(operation).await;
            let parent = telemetry::extract(&headers);
            let t = &ctx.telemetry;
            let span = t
                .tracer()
                .span_builder(operation.to_string())
                .with_kind(SpanKind::Server)
                .with_attributes(t.span_attributes(rpc_attributes(service, operation)))
                .start_with_context(t.tracer(), &parent);
            let cx = parent.with_span(span);
            let result = self
                .handle(ctx, operation, op)
                .with_context(cx.clone())
                .await;
            if let Err(e) = &result {
                t.fail(&cx.span(), e.clone());
                t.log(
                    &cx,
                    Severity::Error,
                    format!("{operation} failed: {e}"),
                    "",
                    &[],
                );
            }
            cx.span().end();
            result
        })
    }

    /// The handler: its faults, its own work, then its calls, step by step (parallel steps
    /// together).
    async fn handle(
        self: &Arc<Self>,
        ctx: &Ctx<()>,
        name: &str,
        op: &Operation,
    ) -> Result<Reply, String> {
        if ctx.chaos.stalled(ctx.service(), name) {
            // A stuck handler: it holds the request until the caller gives up.
            std::future::pending::<()>().await;
        }
        ctx.faults(name).await?;
        let [min, max] = op.work_ms;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(min..=max))).await;
        let mut missed = false;
        let mut steps = op.calls.iter().peekable();
        while let Some(first) = steps.next() {
            let mut group = vec![first];
            while first.parallel && steps.peek().is_some_and(|s| s.parallel) {
                group.extend(steps.next());
            }
            let runs = group.into_iter().filter(|s| !s.on_miss || missed);
            for reply in join_all(runs.map(|s| self.step(ctx, s))).await {
                if let Some(hit) = reply?.hit {
                    missed = !hit;
                }
            }
        }
        Ok(Reply {
            hit: op.hit_rate.map(|h| fastrand::f64() < h),
            wrong: ctx.chaos.wrong_result(ctx.service()),
        })
    }

    async fn step(self: &Arc<Self>, ctx: &Ctx<()>, step: &Step) -> Result<Reply, String> {
        match (&step.operation, self.databases.get(&step.to)) {
            (Some(operation), _) => self.call(ctx, &step.to, operation).await,
            (None, Some(db)) => ctx.call(db, || Ok(Reply::default())).await,
            (None, None) => Err(format!("{} is neither a service nor a database", step.to)),
        }
    }

    /// Calls `operation` of `service` from `ctx`'s service in a CLIENT span, within
    /// [`CALL_TIMEOUT`]; checks the answer.
    async fn call(
        self: &Arc<Self>,
        ctx: &Ctx<()>,
        service: &str,
        operation: &str,
    ) -> Result<Reply, String> {
        let t = &ctx.telemetry;
        let span = t
            .tracer()
            .span_builder(format!("{service}/{operation}"))
            .with_kind(SpanKind::Client)
            .with_attributes(t.span_attributes({
                let mut attributes = rpc_attributes(service, operation);
                attributes.push(KeyValue::new("server.address", service.to_string()));
                attributes
            }))
            .start_with_context(t.tracer(), &Context::current());
        let cx = Context::current().with_span(span);
        let mut headers = BTreeMap::new();
        telemetry::inject(&cx, &mut headers);
        let result =
            match tokio::time::timeout(CALL_TIMEOUT, self.serve(service, operation, headers)).await
            {
                Ok(result) => result,
                Err(_) => {
                    let ms = CALL_TIMEOUT.as_millis();
                    t.log(
                        &cx,
                        Severity::Warn,
                        format!("call to {service} {operation} timed out after {ms} ms"),
                        "",
                        &[],
                    );
                    Err(format!("deadline exceeded calling {service} {operation}"))
                }
            };
        match &result {
            Ok(reply) if reply.wrong => t.log(
                &cx,
                Severity::Warn,
                format!(
                    "invalid response from {service} {operation}: the total does not match \
                     its items, recomputed it"
                ),
                "",
                &[],
            ),
            Ok(_) => {}
            Err(e) => t.fail(&cx.span(), e.clone()),
        }
        cx.span().end();
        result.map(|r| Reply { wrong: false, ..r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{FaultKind, FaultSpec};

    const SHOP: &str = include_str!("../../../config/topology/shop.yaml");

    fn fault(service: &str, kind: FaultKind) -> FaultSpec {
        FaultSpec {
            service: service.into(),
            operation: None,
            partition: None,
            kind,
            duration_secs: None,
        }
    }

    #[tokio::test]
    async fn requests_cross_the_graph_and_faults_reach_the_front_door() {
        let graph = Graph::start(Topology::parse(SHOP).unwrap(), &Export::none()).unwrap();
        let checkout = || graph.serve("frontend", "POST /checkout", BTreeMap::new());
        checkout().await.unwrap();
        graph
            .chaos
            .start(fault("currency", FaultKind::Errors { rate: 1.0 }))
            .unwrap();
        let e = checkout().await.unwrap_err();
        assert!(e.contains("injected error"), "{e}");
        graph.chaos.stop_all();
        checkout().await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_service_times_its_callers_out() {
        let graph = Graph::start(Topology::parse(SHOP).unwrap(), &Export::none()).unwrap();
        graph
            .chaos
            .start(fault("ads", FaultKind::Stall {}))
            .unwrap();
        let e = graph
            .serve("frontend", "GET /product", BTreeMap::new())
            .await
            .unwrap_err();
        assert!(e.contains("deadline exceeded calling ads GetAds"), "{e}");
    }
}
