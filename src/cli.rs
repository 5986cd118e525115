//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vigil_store::FsyncPolicy;
use vigil_store::units::ByteSize;

/// Vigil: an OpenTelemetry-native observability pipeline. OTLP in, SQL out.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
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
    pub flush_interval: Option<vigil_store::units::HumanDuration>,
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
