//! What a service's code works with: its bus, its telemetry and the fault injector, and the
//! traced calls it makes to its downstream dependencies.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::chaos::{Chaos, Point};
use crate::telemetry::Telemetry;

/// A downstream dependency of a service (a database, a card processor…), reached over the
/// network in a real deployment: each call takes a round trip of `min`–`max`.
#[derive(Debug, Clone, Copy)]
pub struct Dependency {
    /// Its name, as `peer.service` and as the span name.
    pub name: &'static str,
    /// Fastest round trip.
    pub min: Duration,
    /// Slowest round trip.
    pub max: Duration,
}

/// One service's bus, telemetry and faults.
#[derive(Debug)]
pub struct Ctx<B> {
    /// The bus.
    pub bus: B,
    /// The service's tracer, logger and meter.
    pub telemetry: Arc<Telemetry>,
    /// The faults that may hit the service.
    pub chaos: Arc<Chaos>,
}

impl<B: Clone> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Ctx {
            bus: self.bus.clone(),
            telemetry: self.telemetry.clone(),
            chaos: self.chaos.clone(),
        }
    }
}

impl<B> Ctx<B> {
    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.telemetry.service
    }

    /// Applies the faults on this service's `handler` (delay, CPU burn, injected error).
    pub async fn faults(&self, handler: &str) -> Result<(), String> {
        self.at(Point::Handler(handler)).await
    }

    /// Applies the faults on this service's consumer `handler` for a delivery from
    /// `partition`.
    pub async fn delivery_faults(&self, handler: &str, partition: usize) -> Result<(), String> {
        self.at(Point::Delivery(handler, partition)).await
    }

    /// Waits out the time a message or call to `handler` spends in the network on its way
    /// in: before the handler's span starts, so only its callers see it.
    pub async fn arrive(&self, handler: &str) {
        let delay = self.chaos.inbound_delay(self.service(), handler);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    async fn at(&self, point: Point<'_>) -> Result<(), String> {
        self.chaos.apply(self.service(), point).await
    }

    /// Calls `dep` in a CLIENT span (child of the current context): one round trip, the
    /// faults on the dependency, then `work` if the dependency answered.
    pub async fn call<T>(
        &self,
        dep: &Dependency,
        work: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let tracer = self.telemetry.tracer();
        let span = tracer
            .span_builder(dep.name)
            .with_kind(SpanKind::Client)
            .with_attributes(
                self.telemetry
                    .span_attributes(vec![KeyValue::new("peer.service", dep.name)]),
            )
            .start_with_context(tracer, &Context::current());
        let cx = Context::current().with_span(span);
        let result = async {
            let spread = dep.max.saturating_sub(dep.min);
            tokio::time::sleep(dep.min + spread.mul_f64(fastrand::f64())).await;
            self.chaos
                .apply(self.service(), Point::Dependency(dep.name))
                .await?;
            work()
        }
        .with_context(cx.clone())
        .await;
        if let Err(e) = &result {
            self.telemetry.fail(&cx.span(), e.clone());
        }
        cx.span().end();
        result
    }
}
