//! `vigil serve`: opens the store, binds the three listeners and runs until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;
use vigil_collector::Ingest;
use vigil_dashboards::{ApiState, MetricsSource};
use vigil_detectors::alert_rca::{AttachOptions, attaching};
use vigil_detectors::anomaly::runner::Detector;
use vigil_detectors::eval::{AlertSink, Engine, RuleSource};
use vigil_store::Store;
use vigil_store::exposition::Exposition;

use crate::cli::ServeArgs;
use crate::config::VigilConfig;
use crate::reload::Reload;

/// The configuration `args` select: file, then environment and flags, then derived limits.
pub fn resolve_config(args: &ServeArgs) -> anyhow::Result<VigilConfig> {
    let mut config = match &args.config {
        Some(path) => VigilConfig::load(path)?,
        None => VigilConfig::default(),
    };
    if let Some(d) = &args.data_dir {
        config.store.data_dir = d.clone();
    }
    if let Some(a) = args.otlp_grpc_addr {
        config.otlp.grpc_addr = a;
    }
    if let Some(a) = args.otlp_http_addr {
        config.otlp.http_addr = a;
    }
    if let Some(a) = args.http_addr {
        config.api.http_addr = a;
    }
    if let Some(m) = args.memory_limit {
        config.limits.memory_limit = m;
    }
    if let Some(f) = args.fsync {
        config.store.fsync = f;
    }
    if let Some(f) = args.flush_interval {
        config.store.flush_interval = f;
    }
    if !args.rules.is_empty() {
        config.rules.files = args.rules.clone();
    }
    config.derive_limits();
    Ok(config)
}

/// How long a stopping server waits for open connections to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// A running server.
pub struct Running {
    /// Bound OTLP/gRPC address.
    pub grpc_addr: SocketAddr,
    /// Bound OTLP/HTTP address.
    pub http_addr: SocketAddr,
    /// Bound query API address.
    pub api_addr: SocketAddr,
    shutdown: Arc<Notify>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    store: Store,
    reads: ReadRuntime,
}

/// Threads of the runtime that reads: the query API, the rule engine and the anomaly
/// detector. Ingest keeps the process's main runtime to itself, so a heavy query slows
/// other queries, never the acknowledgement of writes.
const READ_THREADS: usize = 2;

/// Stack of each reading thread: planning recurses once per level of a query's expressions
/// (capped at `vigil_store::query::statement::MAX_EXPRESSION_DEPTH`).
const READ_STACK: usize = 8 << 20;

/// Where the reading threads' priority sits on thread-priority's 0–99 scale: 22 is nice 10,
/// so when ingest (nice 0) and reads compete for a core, the kernel gives ingest about nine
/// times the reads' share; when ingest is idle, reads have the machine.
const READ_PRIORITY: u8 = 22;

/// Lowers the calling thread's priority to [`READ_PRIORITY`]; where that is refused, reads
/// compete with ingest as equals.
fn lower_priority() {
    let lowered = thread_priority::ThreadPriorityValue::try_from(READ_PRIORITY)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(p),
            )
            .map_err(|e| e.to_string())
        });
    if let Err(e) = lowered {
        tracing::debug!(error = %e, "could not lower a reading thread's priority");
    }
}

/// The reading runtime; dropping it (also on an error path inside async code) stops its
/// threads without waiting for them.
struct ReadRuntime(Option<tokio::runtime::Runtime>);

impl ReadRuntime {
    /// Starts the reading runtime; the handle spawns onto it.
    fn start() -> anyhow::Result<(ReadRuntime, tokio::runtime::Handle)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(READ_THREADS)
            .thread_name("vigil-read")
            .thread_stack_size(READ_STACK)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .context("starting the query runtime")?;
        let handle = runtime.handle().clone();
        Ok((ReadRuntime(Some(runtime)), handle))
    }
}

impl Drop for ReadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} on {addr}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

fn until(shutdown: &Arc<Notify>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let s = shutdown.clone();
    async move { s.notified().await }
}

/// Opens the store, starts the rule engine over `rules` and starts every listener.
pub async fn start(config: &VigilConfig, rules: RuleSource) -> anyhow::Result<Running> {
    let store_config = config.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(store_config))
        .await?
        .with_context(|| format!("opening the store in {}", config.store.data_dir.display()))?;
    let ingest = Ingest::new(store.clone(), config.limits.in_flight_budget());
    let (grpc_listener, grpc_addr) = bind(config.otlp.grpc_addr, "OTLP/gRPC").await?;
    let (http_listener, http_addr) = bind(config.otlp.http_addr, "OTLP/HTTP").await?;
    let (api_listener, api_addr) = bind(config.api.http_addr, "query API").await?;

    let shutdown = Arc::new(Notify::new());
    let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    let (read_runtime, reads) = ReadRuntime::start()?;
    let external_url = config
        .alerting
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{api_addr}"));
    let (notifier, routing_reload) = crate::notify::start(
        &config.alerting,
        &config.store.data_dir,
        external_url.clone(),
    )?;
    let mut reloads: Vec<Reload> = routing_reload.into_iter().collect();
    let engine = if rules.is_empty() {
        Engine::idle()
    } else {
        let to_notifier = notifier.clone();
        let sink: AlertSink = Arc::new(move |alerts| to_notifier.submit(alerts));
        // The engine and the analyses spawn their tasks on the runtime they are started in.
        let (engine, task) = {
            let _reads = reads.enter();
            let sink = attaching(
                store.clone(),
                sink,
                AttachOptions {
                    budget: config.alerting.rca_timeout.0,
                    external_url,
                },
            );
            Engine::start(store.clone(), rules, shutdown.clone(), Some(sink))
                .context("loading the rule files")?
        };
        tasks.push(reads.spawn(async move { task.await.context("rule engine") }));
        let rules = engine.clone();
        reloads.push(Box::new(move |forced| rules.reload(forced)));
        engine
    };
    let reload_stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        crate::reload::run(reloads, reload_stop).await;
        Ok(())
    }));
    let detector = if config.anomaly.enabled {
        let (detector, task) = {
            let _reads = reads.enter();
            Detector::start(store.clone(), config.anomaly.clone(), shutdown.clone())
        };
        tasks.push(reads.spawn(async move { task.await.context("anomaly detector") }));
        detector
    } else {
        Detector::idle()
    };
    let ready = Arc::new(AtomicBool::new(false));
    let ingest_stats = ingest.stats().clone();
    let rule_status = engine.clone();
    let detector_status = detector.clone();
    let delivery_status = notifier.clone();
    let metrics: Vec<MetricsSource> = vec![
        Arc::new(move |page: &mut Exposition| ingest_stats.render(page)),
        Arc::new(move |page: &mut Exposition| rule_status.status().render(page)),
        Arc::new(move |page: &mut Exposition| detector_status.status().render(page)),
        Arc::new(move |page: &mut Exposition| delivery_status.delivery().render(page)),
        Arc::new(crate::allocator::render_metrics),
        Arc::new(crate::process::render_metrics),
    ];
    let api = vigil_dashboards::router(ApiState {
        store: store.clone(),
        config: config.api.clone(),
        metrics,
        ready: ready.clone(),
        rules: engine,
        anomalies: detector,
        posted_alerts: {
            let notifier = notifier.clone();
            Arc::new(move || notifier.posted())
        },
        traces: Default::default(),
        gate: vigil_dashboards::gate::Gate::new(config.api.max_concurrent_queries),
    })
    .merge(vigil_alerting::api::router(notifier));

    let otlp = config.otlp.clone();
    let (g_ingest, g_stop) = (ingest.clone(), until(&shutdown));
    tasks.push(tokio::spawn(async move {
        vigil_collector::serve_grpc(grpc_listener, g_ingest, &otlp, g_stop)
            .await
            .context("OTLP/gRPC server")
    }));
    let otlp = config.otlp.clone();
    let h_stop = until(&shutdown);
    tasks.push(tokio::spawn(async move {
        vigil_collector::serve_http(http_listener, ingest, &otlp, h_stop)
            .await
            .context("OTLP/HTTP server")
    }));
    let a_stop = until(&shutdown);
    tasks.push(reads.spawn(async move {
        axum::serve(api_listener, api)
            .with_graceful_shutdown(a_stop)
            .await
            .context("query API server")
    }));
    let bg_store = store.clone();
    let bg_stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        bg_store.run_background(bg_stop).await;
        Ok(())
    }));
    ready.store(true, Ordering::Relaxed);
    Ok(Running {
        grpc_addr,
        http_addr,
        api_addr,
        shutdown,
        tasks,
        store,
        reads: read_runtime,
    })
}

impl Running {
    /// Stops the listeners, flushes the tail to Parquet and closes the WAL.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.notify_waiters();
        // Exporters keep their connections open; in-flight requests get a grace period, then
        // the listeners are dropped. Everything acknowledged is already in the WAL.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut task in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(result) => result??,
                Err(_) => {
                    tracing::info!("connections still open after the grace period; closing them");
                    task.abort();
                }
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::warn!(error = %e, "final flush failed; the WAL keeps the data for the next start");
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close()).await?;
        drop(self.reads);
        Ok(())
    }
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs to stderr at `VIGIL_LOG`, else the configured level.
pub fn init_logging(config: &VigilConfig) -> anyhow::Result<()> {
    let filter = std::env::var("VIGIL_LOG").unwrap_or_else(|_| config.log.level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&filter)
                .with_context(|| format!("invalid log filter {filter:?}"))?,
        )
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

impl Running {
    /// The one line printed on stdout once listening, for people and for scripts that start
    /// Vigil on ephemeral ports: `vigil listening: otlp_grpc=… otlp_http=… api=… data_dir=…`.
    pub fn banner(&self, config: &VigilConfig) -> String {
        format!(
            "vigil listening: otlp_grpc={} otlp_http={} api=http://{} data_dir={}",
            self.grpc_addr,
            self.http_addr,
            self.api_addr,
            config.store.data_dir.display()
        )
    }
}

/// Runs `vigil serve` until interrupted.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve_config(&args)?;
    init_logging(&config)?;
    let rules = RuleSource {
        paths: config.rules.files.clone(),
        embedded: None,
    };
    let running = start(&config, rules).await?;
    println!("{}", running.banner(&config));
    tracing::info!(otlp_grpc = %running.grpc_addr, otlp_http = %running.http_addr, api = %running.api_addr, "vigil is up");
    terminated().await;
    tracing::info!("shutting down");
    running.stop().await
}
