//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vigil_store::FsyncPolicy;
use vigil_store::units::{ByteSize, HumanDuration};

/// Vigil: an OpenTelemetry-native observability pipeline. OTLP in, SQL out.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP (gRPC 4317, HTTP 4318), store it, and answer queries (HTTP 8080).
    Serve(ServeArgs),
    /// Run a read-only SQL query against a running Vigil and print the result as a table.
    Query(QueryArgs),
    /// Measure performance and print figures.
    Bench(BenchArgs),
    /// Run Vigil with the sample services under steady load, injecting a fault every few
    /// minutes; prints where to look.
    Demo(DemoArgs),
    /// Send open-loop order traffic to a sample-services gateway and report rate and latency.
    Load(LoadArgs),
    /// Start, list and stop faults in running sample services.
    Chaos(ChaosArgs),
    /// Create, list and expire silences in a running Vigil.
    Silence(SilenceArgs),
    /// Work with SLA rule files.
    Rules(RulesArgs),
    /// Score the anomaly detector on the Numenta Anomaly Benchmark.
    Nab(NabArgs),
}

/// `vigil silence`.
#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// Base URL of the Vigil API.
    #[arg(
        long,
        env = "VIGIL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// What to do.
    #[command(subcommand)]
    pub what: SilenceWhat,
}

/// `vigil silence` commands.
#[derive(Debug, Subcommand)]
pub enum SilenceWhat {
    /// Mute notifications of alerts matching every matcher, from now on for a while.
    Add {
        /// Label matchers such as `service="payment"` or `alertname=~"Slow.*"`.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h or 1h30m.
        #[arg(long, default_value = "1h")]
        duration: HumanDuration,
        /// Who is silencing.
        #[arg(long, env = "USER", default_value = "vigil-cli")]
        author: String,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// Every silence, newest first, with its state.
    List,
    /// End a silence now.
    Expire {
        /// The silence's id.
        id: String,
    },
}

/// `vigil nab`.
#[derive(Debug, Args)]
pub struct NabArgs {
    /// NAB's directory: the one holding `data/` and `labels/`.
    #[arg(long)]
    pub data: PathBuf,
    /// Also write NAB's results layout here
    /// (`DIR/vigil/<category>/vigil_<file>.csv`: timestamp,value,anomaly_score,label).
    #[arg(long)]
    pub write_results: Option<PathBuf>,
    /// Only files of these categories (repeatable), e.g. realKnownCause.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Which detector scores the points.
    #[arg(long, value_enum, default_value_t = NabDetector::Vigil)]
    pub detector: NabDetector,
    /// Score another detector's results instead of running one: a folder in NAB's results
    /// layout for one detector (`DIR/<category>/<DIR's name>_<file>.csv` with an
    /// `anomaly_score` column).
    #[arg(long, conflicts_with_all = ["detector", "write_results"])]
    pub score_results: Option<PathBuf>,
}

/// Detectors `vigil nab` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NabDetector {
    /// Vigil's univariate detector (level and change surprise, new-maximum reporting).
    Vigil,
    /// The plain streaming isolation forest over shingles of 8 values, refit every 100
    /// points on the last 2,000 (the textbook baseline).
    Iforest,
}

impl NabDetector {
    /// The name used in NAB's results layout.
    pub fn name(self) -> &'static str {
        match self {
            NabDetector::Vigil => "vigil",
            NabDetector::Iforest => "vigil_iforest",
        }
    }
}

/// `vigil rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: RulesWhat,
}

/// Rule file commands.
#[derive(Debug, Subcommand)]
pub enum RulesWhat {
    /// Validate rule files; exits non-zero if any has an error.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `vigil demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Vigil's own settings, as for `vigil serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The sample workload: the event-driven order saga, or a generated call graph of
    /// synchronous services (`--topology`).
    #[arg(long, value_enum, default_value_t = Workload::Saga)]
    pub workload: Workload,
    /// The call graph's topology file, for `--workload graph` (default: the built-in web shop,
    /// `config/topology/shop.yaml`).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// The broker the saga's services talk over.
    #[arg(long, env = "VIGIL_BROKER", value_enum, default_value_t = Broker::Memory)]
    pub broker: Broker,
    /// NATS server URL, for `--broker nats`.
    #[arg(long, env = "VIGIL_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Listen address of the sample services' gateway and admin API.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub gateway_addr: SocketAddr,
    /// Requests (orders, for the saga) per second of steady load (0 for none).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Start a fault this often (the scripted scenario); `0s` for no faults.
    #[arg(long, default_value = "3m")]
    pub fault_every: HumanDuration,
    /// How long each scripted fault lasts.
    #[arg(long, default_value = "1m")]
    pub fault_for: HumanDuration,
    /// How often the services export their metrics.
    #[arg(long, default_value = "10s")]
    pub metric_interval: HumanDuration,
    /// Sparse instrumentation, as on many real systems: the services' spans carry no status
    /// codes and no attributes, so faults show only in their logs, metrics and timings.
    #[arg(long, env = "VIGIL_SPARSE_INSTRUMENTATION")]
    pub sparse: bool,
    /// Run only the sample services, gateway, load and faults, exporting to this OTLP/gRPC
    /// endpoint (a `vigil serve` elsewhere, or any OpenTelemetry collector) instead of
    /// starting Vigil in this process; Vigil's own settings are then unused.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
}

/// The sample workloads `vigil demo` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// The order saga: services exchanging events over a broker, behind an HTTP gateway.
    Saga,
    /// A generated call graph of synchronous services, from a topology file.
    Graph,
}

/// Message brokers the sample services can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Broker {
    /// The in-process broker: nothing else to run.
    Memory,
    /// NATS JetStream at `--nats-url`.
    Nats,
}

/// `vigil load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Base URL of the gateway.
    #[arg(
        long,
        env = "VIGIL_GATEWAY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub target: String,
    /// Orders per second.
    #[arg(long)]
    pub rate: f64,
    /// How long to send for, e.g. 60s.
    #[arg(long)]
    pub duration: HumanDuration,
    /// Most requests in flight; requests due beyond it are skipped and counted.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Share of orders for an item that is out of stock.
    #[arg(long, default_value_t = 0.05)]
    pub out_of_stock: f64,
    /// Share of orders paid with a card that is declined.
    #[arg(long, default_value_t = 0.05)]
    pub declined: f64,
}

/// `vigil chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Base URL of the services' admin API (the gateway).
    #[arg(
        long,
        env = "VIGIL_GATEWAY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub url: String,
    /// What to do.
    #[command(subcommand)]
    pub what: ChaosWhat,
}

/// Which service and operation a fault hits, and for how long.
#[derive(Debug, Args)]
pub struct FaultTarget {
    /// Service: gateway, order, inventory, payment, shipping or notification.
    #[arg(long)]
    pub service: String,
    /// Operation: a handler's span name (e.g. "process inventory") or a dependency (e.g.
    /// card-processor); every handler of the service when left out.
    #[arg(long)]
    pub operation: Option<String>,
    /// Only deliveries from this partition of the consumed topic (latency, errors and
    /// cpu-burn on consumer handlers).
    #[arg(long)]
    pub partition: Option<usize>,
    /// Stop by itself after this long, e.g. 60s; runs until stopped when left out.
    #[arg(long = "for")]
    pub for_: Option<HumanDuration>,
}

/// Fault commands.
#[derive(Debug, Subcommand)]
pub enum ChaosWhat {
    /// List running faults.
    List,
    /// Stop one fault by id, or all of them.
    Stop {
        /// The fault's id.
        #[arg(required_unless_present = "all")]
        id: Option<u64>,
        /// Stop every running fault.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Add latency to calls.
    Latency {
        #[command(flatten)]
        target: FaultTarget,
        /// Milliseconds added to each call.
        #[arg(long)]
        ms: u64,
    },
    /// Fail a share of calls.
    Errors {
        #[command(flatten)]
        target: FaultTarget,
        /// Share of calls that fail, in (0, 1].
        #[arg(long)]
        rate: f64,
    },
    /// Stop the service's consumers from taking messages (lag grows); on the call graph,
    /// hang its handlers until their callers give up.
    Stall {
        #[command(flatten)]
        target: FaultTarget,
    },
    /// Publish a share of the service's events twice.
    Duplicate {
        #[command(flatten)]
        target: FaultTarget,
        /// Share of events published twice, in (0, 1].
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
    },
    /// Make the service's dependencies refuse every call.
    Outage {
        #[command(flatten)]
        target: FaultTarget,
    },
    /// Burn CPU in each call.
    CpuBurn {
        #[command(flatten)]
        target: FaultTarget,
        /// Milliseconds of CPU burnt per call.
        #[arg(long)]
        ms: u64,
    },
    /// Make a share of calls hit an exception that is logged and recovered from.
    Exception {
        #[command(flatten)]
        target: FaultTarget,
        /// Share of calls that throw, in (0, 1].
        #[arg(long, default_value_t = 0.3)]
        rate: f64,
    },
    /// Make a share of the service's results wrong, without error: the events it publishes
    /// (a wrong amount), the answers it returns on the call graph.
    WrongResult {
        #[command(flatten)]
        target: FaultTarget,
        /// Share of events that are wrong, in (0, 1].
        #[arg(long, default_value_t = 0.3)]
        rate: f64,
    },
    /// Delay the service's inbound network: messages and calls reach its handlers later.
    NetworkDelay {
        #[command(flatten)]
        target: FaultTarget,
        /// Milliseconds added on the way in.
        #[arg(long)]
        ms: u64,
    },
    /// Run a noisy neighbour on the service's core.
    CpuContention {
        #[command(flatten)]
        target: FaultTarget,
        /// Share of the core the neighbour takes, in (0, 0.95].
        #[arg(long, default_value_t = 0.6)]
        share: f64,
    },
}

/// `vigil serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see config/vigil.example.toml).
    #[arg(long, env = "VIGIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the WAL and Parquet files [default: ./vigil-data].
    #[arg(long, env = "VIGIL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long, env = "VIGIL_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// OTLP/HTTP listen address [default: 127.0.0.1:4318].
    #[arg(long, env = "VIGIL_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Query API listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "VIGIL_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Memory budget for data in flight and in memory, e.g. 512MiB.
    #[arg(long, env = "VIGIL_MEMORY_LIMIT")]
    pub memory_limit: Option<ByteSize>,
    /// WAL fsync policy: always, never, or an interval such as 100ms.
    #[arg(long, env = "VIGIL_FSYNC")]
    pub fsync: Option<FsyncPolicy>,
    /// Flush the in-memory tail to Parquet at least this often, e.g. 60s.
    #[arg(long, env = "VIGIL_FLUSH_INTERVAL")]
    pub flush_interval: Option<HumanDuration>,
    /// Rule file or directory of rule files (repeatable); replaces `[rules] files`.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

/// `vigil query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement (SELECT, WITH or EXPLAIN) over spans, logs and metrics.
    pub sql: String,
    /// Base URL of the Vigil query API.
    #[arg(long, env = "VIGIL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Most rows to print.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `vigil bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// OTLP/gRPC ingest into a real server with the WAL on, against prost decode-only on the same payload.
    Ingest(IngestBenchArgs),
    /// Orders per second through `vigil demo` (Vigil plus the sample services) under
    /// open-loop load: achieved rate, latency, finished sagas, telemetry stored, CPU used.
    Orders(OrdersBenchArgs),
    /// One rule evaluation interval (SLI, SQL and SLO rules) over a store of synthetic spans,
    /// against a full scan of the same spans.
    Rules(RulesBenchArgs),
    /// The investigation API (trace view, trace search, RED, service map) over a store of
    /// synthetic spans and one large trace, against a full scan of the same spans.
    Queries(QueryBenchArgs),
    /// Scoring one anomaly-detection window of many series (baselines and forests), and
    /// the training that follows it.
    Anomalies(AnomalyBenchArgs),
}

/// `vigil bench anomalies`.
#[derive(Debug, Args)]
pub struct AnomalyBenchArgs {
    /// Series scored per window.
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Windows of history each series has (filled before measuring).
    #[arg(long, default_value_t = 360)]
    pub history: usize,
    /// Windows measured.
    #[arg(long, default_value_t = 60)]
    pub windows: usize,
}

/// The store of synthetic spans a query benchmark fills.
#[derive(Debug, Args)]
pub struct SyntheticSpans {
    /// Spans in the store.
    #[arg(long, default_value_t = 10_000_000)]
    pub spans: u64,
    /// Hours the spans are spread over, ending now.
    #[arg(long, default_value_t = 6)]
    pub hours: u64,
    /// Attributes per span.
    #[arg(long, default_value_t = 8)]
    pub attributes: usize,
}

/// `vigil bench rules`.
#[derive(Debug, Args)]
pub struct RulesBenchArgs {
    /// What the store holds.
    #[command(flatten)]
    pub store: SyntheticSpans,
    /// Rules (in groups of 20; one in ten is an SQL rule), plus one SLO per sample service.
    #[arg(long, default_value_t = 200)]
    pub rules: usize,
    /// Steady-state intervals measured after the first.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// `vigil bench queries`.
#[derive(Debug, Args)]
pub struct QueryBenchArgs {
    /// What the store holds besides the large trace.
    #[command(flatten)]
    pub store: SyntheticSpans,
    /// Spans of the large trace the trace view is timed on.
    #[arg(long, default_value_t = 20_000)]
    pub trace_spans: usize,
    /// Times each query is repeated after its first run (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Keep the store here (for inspecting it, or serving it with `vigil serve`) instead
    /// of a temporary directory that is deleted.
    #[arg(long)]
    pub keep_data: Option<std::path::PathBuf>,
}

/// `vigil bench orders`.
#[derive(Debug, Args)]
pub struct OrdersBenchArgs {
    /// Orders per second.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// How long to send for.
    #[arg(long, default_value = "60s")]
    pub duration: HumanDuration,
    /// The broker the services use.
    #[arg(long, value_enum, default_value_t = Broker::Memory)]
    pub broker: Broker,
    /// NATS server URL, for `--broker nats`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

/// `vigil bench ingest`.
#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Spans per export request.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Attributes per span.
    #[arg(long, default_value_t = 20)]
    pub attributes: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent client streams.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Server worker threads (1 = one core for the server).
    #[arg(long, default_value_t = 1)]
    pub server_threads: usize,
    /// WAL fsync policy for the run.
    #[arg(long, default_value = "always")]
    pub fsync: FsyncPolicy,
    /// Keep the storage phase's data directory here (for inspecting the Parquet files)
    /// instead of a temporary one that is deleted.
    #[arg(long)]
    pub keep_data: Option<std::path::PathBuf>,
}
