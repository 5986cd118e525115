//! `vigil demo`: Vigil with the sample services exporting to it (the order saga or a
//! generated call graph), steady load, and a scripted scenario injecting one fault after
//! another; stops cleanly on Ctrl-C.

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
use vigil_sample_services::graph::Graph;
use vigil_sample_services::graph::topology::Topology;
use vigil_sample_services::load::{self, LoadConfig, Mix};
use vigil_sample_services::telemetry::Export;
use vigil_sample_services::{admin, gateway};

use crate::cli::{Broker, DemoArgs, Workload};
use crate::serve;

/// The rules `vigil demo` evaluates unless rule files are given: the saga's, the graph's.
const SAGA_RULES: (&str, &str) = (
    "config/rules/sample-services.yaml",
    include_str!("../config/rules/sample-services.yaml"),
);
const GRAPH_RULES: (&str, &str) = (
    "config/rules/shop-graph.yaml",
    include_str!("../config/rules/shop-graph.yaml"),
);

/// The query the banner suggests trying.
const EXAMPLE_QUERY: &str = "SELECT service_name, count(*) FROM spans GROUP BY 1";

/// The topology `vigil demo --workload graph` runs unless `--topology` names one.
const SHOP_TOPOLOGY: &str = include_str!("../config/topology/shop.yaml");

/// A scripted fault: service, operation, what it does.
type Scripted = (String, Option<String>, FaultKind);

/// The saga's scripted faults, in the order they are injected (then again from the top).
fn saga_scenario() -> Vec<Scripted> {
    let on =
        |service: &str, op: Option<&str>, kind| (service.to_string(), op.map(Into::into), kind);
    vec![
        on("payment", None, FaultKind::Latency { ms: 300 }),
        on("inventory", None, FaultKind::Errors { rate: 0.3 }),
        on("shipping", None, FaultKind::Stall {}),
        on("order", None, FaultKind::CpuBurn { ms: 5 }),
        on("inventory", None, FaultKind::Duplicate { rate: 0.5 }),
        on("payment", Some("card-processor"), FaultKind::Outage {}),
    ]
}

/// The call graph's scripted faults: one of each kind a synchronous service can have, each on
/// a service picked at random among those with callers.
fn graph_scenario(topology: &Topology) -> Vec<Scripted> {
    let services = topology.called_services();
    [
        FaultKind::Latency { ms: 300 },
        FaultKind::Errors { rate: 0.3 },
        FaultKind::Stall {},
        FaultKind::CpuContention { share: 0.6 },
        FaultKind::Exception { rate: 0.3 },
        FaultKind::NetworkDelay { ms: 100 },
        FaultKind::WrongResult { rate: 0.3 },
        FaultKind::CpuBurn { ms: 5 },
    ]
    .into_iter()
    .filter_map(|kind| {
        let service = fastrand::choice(&services)?;
        Some((service.to_string(), None, kind))
    })
    .collect()
}

/// Prints a line for the person running the demo; a closed stdout does not stop the demo.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn inject_faults(
    chaos: Arc<Chaos>,
    scenario: Vec<Scripted>,
    every: Duration,
    lasting: Duration,
) {
    for (service, operation, kind) in scenario.into_iter().cycle() {
        tokio::time::sleep(every).await;
        let spec = FaultSpec {
            service,
            operation,
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
        return workload(&args, target).await;
    }
    // The workload's rules are built in, unless rule files were given.
    let (name, text) = match args.workload {
        Workload::Saga => SAGA_RULES,
        Workload::Graph => GRAPH_RULES,
    };
    let rules = RuleSource {
        embedded: config
            .rules
            .files
            .is_empty()
            .then(|| (format!("{name} (built in)"), text.to_string())),
        paths: config.rules.files.clone(),
    };
    let running = serve::start(&config, rules).await?;
    let target = Target {
        endpoint: format!("http://{}", running.grpc_addr),
        banner: running.banner(&config),
        api: Some(running.api_addr),
    };
    let result = workload(&args, target).await;
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

/// Runs the workload `args` choose: the saga on its broker, or the call graph.
async fn workload(args: &DemoArgs, target: Target) -> anyhow::Result<()> {
    match (args.workload, args.broker) {
        (Workload::Graph, _) => graph(args, &target).await,
        (Workload::Saga, Broker::Memory) => {
            let bus = MemoryBus::new(MemoryBusConfig::default());
            let close = bus.clone();
            saga(args, &target, bus, move || close.close()).await
        }
        (Workload::Saga, Broker::Nats) => {
            let bus = NatsBus::connect(NatsBusConfig::new(&args.nats_url))
                .await
                .context("the NATS broker")?;
            let close = bus.clone();
            saga(args, &target, bus, move || close.close()).await
        }
    }
}

/// The sample services' HTTP listener (the saga's gateway, the admin API), serving until
/// closed.
struct Front {
    url: String,
    stop: Arc<tokio::sync::Notify>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Front {
    /// Binds `args.gateway_addr` and serves `app` with the admin API on it.
    async fn open(args: &DemoArgs, app: axum::Router, chaos: &Arc<Chaos>) -> anyhow::Result<Front> {
        let listener = TcpListener::bind(args.gateway_addr)
            .await
            .with_context(|| format!("binding the gateway on {}", args.gateway_addr))?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = app.merge(admin::router(chaos.clone()));
        let stop = Arc::new(tokio::sync::Notify::new());
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.notified().await })
                    .await
            })
        };
        Ok(Front { url, stop, task })
    }

    /// Prints the banner and what to try.
    fn announce(&self, target: &Target, load_hint: bool) {
        let gateway = &self.url;
        say(format!("{} gateway={gateway}", target.banner));
        if let Some(api) = target.api {
            say(format!(
                "  query:   vigil query --url http://{api} \"{EXAMPLE_QUERY}\""
            ));
        }
        if load_hint {
            say(format!(
                "  orders:  vigil load --target {gateway} --rate 50 --duration 30s"
            ));
        }
        say(format!("  faults:  vigil chaos --url {gateway} list"));
    }

    /// Runs `tasks` and the scripted faults until interrupted; then stops them, every fault
    /// and the listener.
    async fn until_interrupted(
        self,
        args: &DemoArgs,
        chaos: &Arc<Chaos>,
        scenario: Vec<Scripted>,
        mut tasks: Vec<JoinHandle<()>>,
    ) {
        if !args.fault_every.0.is_zero() {
            tasks.push(tokio::spawn(inject_faults(
                chaos.clone(),
                scenario,
                args.fault_every.0,
                args.fault_for.0,
            )));
        }
        serve::terminated().await;
        tracing::info!("shutting down the demo");
        for t in &tasks {
            t.abort();
        }
        chaos.stop_all();
        self.stop.notify_waiters();
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(3), self.task).await {
            tracing::warn!(error = %e, "gateway stopped with an error");
        }
    }
}

/// Runs the saga on `bus` with load and faults until interrupted, then stops it and exports
/// its last telemetry; `close` shuts the bus.
async fn saga<B: Bus>(
    args: &DemoArgs,
    target: &Target,
    bus: B,
    close: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut saga = Saga::start(
        &bus,
        RetryPolicy::default(),
        load::stock(),
        &export(args, target),
    )
    .await
    .context("starting the sample services")?;
    let front = Front::open(args, gateway::router(saga.gateway.clone()), &saga.chaos).await?;
    front.announce(target, true);
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    if args.rate > 0.0 {
        tasks.push(tokio::spawn(steady_load(LoadConfig {
            target: front.url.clone(),
            rate: args.rate,
            duration: Duration::from_secs(60),
            concurrency: 256,
            mix: Mix::default(),
        })));
    }
    let chaos = saga.chaos.clone();
    front
        .until_interrupted(args, &chaos, saga_scenario(), tasks)
        .await;
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

/// Runs the call graph with load and faults until interrupted, then exports its last
/// telemetry.
async fn graph(args: &DemoArgs, target: &Target) -> anyhow::Result<()> {
    let topology = match &args.topology {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Topology::parse(&text).with_context(|| path.display().to_string())?
        }
        None => Topology::parse(SHOP_TOPOLOGY)?,
    };
    let scenario = graph_scenario(&topology);
    let graph =
        Graph::start(topology, &export(args, target)).context("starting the sample services")?;
    let front = Front::open(args, axum::Router::new(), &graph.chaos).await?;
    front.announce(target, false);
    let mut tasks = Vec::new();
    if args.rate > 0.0 {
        tasks.push(tokio::spawn(graph.clone().drive(args.rate)));
    }
    front
        .until_interrupted(args, &graph.chaos, scenario, tasks)
        .await;
    tokio::task::block_in_place(move || graph.flush());
    Ok(())
}

/// How the services export their telemetry.
fn export(args: &DemoArgs, target: &Target) -> Export {
    Export {
        endpoint: Some(target.endpoint.clone()),
        metric_interval: args.metric_interval.0,
        sparse: args.sparse,
    }
}
