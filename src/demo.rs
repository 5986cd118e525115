//! `vigil demo`: Vigil with the sample services exporting to it, steady order load, and a
//! scripted scenario injecting one fault after another; stops cleanly on Ctrl-C.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vigil_detectors::eval::RuleSource;
use vigil_sample_services::bus::Bus;
use vigil_sample_services::bus::memory::{MemoryBus, MemoryBusConfig};
use vigil_sample_services::bus::nats::{NatsBus, NatsBusConfig};
use vigil_sample_services::chaos::{Chaos, FaultKind, FaultSpec};
use vigil_sample_services::consumer::RetryPolicy;
use vigil_sample_services::deployment::Saga;
use vigil_sample_services::load::{self, LoadConfig, Mix};
use vigil_sample_services::telemetry::Export;
use vigil_sample_services::{admin, gateway};

use crate::cli::{Broker, DemoArgs};
use crate::serve;

/// The rules `vigil demo` evaluates unless rule files are given.
const SAMPLE_RULES: &str = include_str!("../config/rules/sample-services.yaml");

/// The query the banner suggests trying.
const EXAMPLE_QUERY: &str = "SELECT service_name, count(*) FROM spans GROUP BY 1";

/// The scripted faults, in the order they are injected (then again from the top).
fn scenario() -> Vec<(&'static str, Option<&'static str>, FaultKind)> {
    vec![
        ("payment", None, FaultKind::Latency { ms: 300 }),
        ("inventory", None, FaultKind::Errors { rate: 0.3 }),
        ("shipping", None, FaultKind::Stall {}),
        ("order", None, FaultKind::CpuBurn { ms: 5 }),
        ("inventory", None, FaultKind::Duplicate { rate: 0.5 }),
        ("payment", Some("card-processor"), FaultKind::Outage {}),
    ]
}

/// Prints a line for the person running the demo; a closed stdout does not stop the demo.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn inject_faults(chaos: Arc<Chaos>, every: Duration, lasting: Duration) {
    for (service, operation, kind) in scenario().into_iter().cycle() {
        tokio::time::sleep(every).await;
        let spec = FaultSpec {
            service: service.into(),
            operation: operation.map(Into::into),
            partition: None,
            kind,
            duration_secs: Some(lasting.as_secs().max(1)),
        };
        match chaos.start(spec) {
            Ok(f) => say(format!(
                "fault {}: {} on {}{} for {}s",
                f.id,
                f.spec.kind.name(),
                f.spec.service,
                f.spec
                    .operation
                    .as_deref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default(),
                lasting.as_secs()
            )),
            Err(e) => tracing::warn!(error = %e, "scripted fault refused"),
        }
    }
}

async fn steady_load(config: LoadConfig) {
    loop {
        match load::run(&config, |_| {}).await {
            Ok(report) => tracing::info!(
                "load: {}",
                crate::load::summary(&report, config.rate).replace('\n', "; ")
            ),
            Err(e) => {
                tracing::warn!(error = %e, "load generator stopped");
                return;
            }
        }
    }
}

/// Runs the demo until interrupted.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = serve::resolve_config(&args.serve)?;
    serve::init_logging(&config)?;
    if let Some(endpoint) = &args.otlp_endpoint {
        let target = Target {
            endpoint: endpoint.clone(),
            banner: format!("vigil demo services: otlp_endpoint={endpoint}"),
            api: None,
        };
        return on_broker(&args, target).await;
    }
    // The sample services' rules are built in, unless rule files were given.
    let rules = RuleSource {
        embedded: config.rules.files.is_empty().then(|| {
            (
                "config/rules/sample-services.yaml (built in)".to_string(),
                SAMPLE_RULES.to_string(),
            )
        }),
        paths: config.rules.files.clone(),
    };
    let running = serve::start(&config, rules).await?;
    let target = Target {
        endpoint: format!("http://{}", running.grpc_addr),
        banner: running.banner(&config),
        api: Some(running.api_addr),
    };
    let result = on_broker(&args, target).await;
    let stopped = running.stop().await;
    result.and(stopped)
}

/// Where the services send their telemetry and what the demo says about it.
struct Target {
    /// OTLP/gRPC endpoint.
    endpoint: String,
    /// The first line printed, to which the gateway's address is added.
    banner: String,
    /// Vigil's query API, when it runs in this process.
    api: Option<std::net::SocketAddr>,
}

/// Runs the services on the broker `args` choose.
async fn on_broker(args: &DemoArgs, target: Target) -> anyhow::Result<()> {
    match args.broker {
        Broker::Memory => {
            let bus = MemoryBus::new(MemoryBusConfig::default());
            let close = bus.clone();
            services(args, &target, bus, move || close.close()).await
        }
        Broker::Nats => {
            let bus = NatsBus::connect(NatsBusConfig::new(&args.nats_url))
                .await
                .context("the NATS broker")?;
            let close = bus.clone();
            services(args, &target, bus, move || close.close()).await
        }
    }
}

/// Runs the services on `bus` with load and faults until interrupted, then stops them and
/// exports their last telemetry; `close` shuts the bus.
async fn services<B: Bus>(
    args: &DemoArgs,
    target: &Target,
    bus: B,
    close: impl FnOnce(),
) -> anyhow::Result<()> {
    let export = Export {
        endpoint: Some(target.endpoint.clone()),
        metric_interval: args.metric_interval.0,
        sparse: args.sparse,
    };
    let mut saga = Saga::start(&bus, RetryPolicy::default(), load::stock(), &export)
        .await
        .context("starting the sample services")?;
    let listener = TcpListener::bind(args.gateway_addr)
        .await
        .with_context(|| format!("binding the gateway on {}", args.gateway_addr))?;
    let gateway_addr = listener.local_addr()?;
    let app = gateway::router(saga.gateway.clone()).merge(admin::router(saga.chaos.clone()));
    let stop_gateway = Arc::new(tokio::sync::Notify::new());
    let gateway_task = {
        let stop = stop_gateway.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.notified().await })
                .await
        })
    };
    let gateway = format!("http://{gateway_addr}");
    say(format!("{} gateway={gateway}", target.banner));
    if let Some(api) = target.api {
        say(format!(
            "  query:   vigil query --url http://{api} \"{EXAMPLE_QUERY}\""
        ));
    }
    say(format!(
        "  orders:  vigil load --target {gateway} --rate 50 --duration 30s"
    ));
    say(format!("  faults:  vigil chaos --url {gateway} list"));

    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    if args.rate > 0.0 {
        tasks.push(tokio::spawn(steady_load(LoadConfig {
            target: gateway.clone(),
            rate: args.rate,
            duration: Duration::from_secs(60),
            concurrency: 256,
            mix: Mix::default(),
        })));
    }
    if !args.fault_every.0.is_zero() {
        tasks.push(tokio::spawn(inject_faults(
            saga.chaos.clone(),
            args.fault_every.0,
            args.fault_for.0,
        )));
    }

    serve::terminated().await;
    tracing::info!("shutting down the demo");
    for t in &tasks {
        t.abort();
    }
    saga.chaos.stop_all();
    stop_gateway.notify_waiters();
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(3), gateway_task).await {
        tracing::warn!(error = %e, "gateway stopped with an error");
    }
    close();
    for c in saga.consumers.drain(..) {
        let service = c.service;
        if let Err(e) = c.stopped().await {
            tracing::warn!(error = %e, service, "consumer ended abnormally");
        }
    }
    // Exporting the last telemetry blocks on the exporters' threads.
    tokio::task::block_in_place(move || {
        saga.flush();
        drop(saga);
    });
    Ok(())
}
