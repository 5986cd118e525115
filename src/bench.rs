//! `vigil bench`: performance figures printed side by side with a baseline measured in the same run.
//!
//! `bench ingest` starts a real `vigil serve` child pinned to one core (with `taskset` when the
//! machine has it), drives it with concurrent OTLP/gRPC clients, and prints spans/s next to
//! prost decode-only throughput of the same payload on one core. A second phase sends unique
//! spans to a fresh server and compares Parquet bytes per span with OTLP bytes per span; a
//! third drives a fresh server again while heavy SQL queries run (see `reads.rs`), beside
//! the first phase's figures.
//! `bench orders` drives `vigil demo` with the load generator (see `orders.rs`); `bench rules`
//! times a rule evaluation interval over a large store (see `rules.rs`); `bench queries` times
//! the investigation API over one (see `queries.rs`); `bench anomalies`
//! times scoring a window of many series (see `anomalies.rs`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

use crate::cli::{BenchArgs, BenchWhat, IngestBenchArgs};

mod anomalies;
mod fill;
mod orders;
mod payload;
mod queries;
mod reads;
mod rules;

/// Runs the chosen benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Ingest(a) => ingest(a).await,
        BenchWhat::Orders(a) => orders::run(a).await,
        BenchWhat::Rules(a) => rules::run(a).await,
        BenchWhat::Queries(a) => queries::run(a).await,
        BenchWhat::Anomalies(a) => anomalies::run(a),
    }
}

/// Reads `name=value` from the line `vigil serve` or `vigil demo` prints once listening.
fn banner_field(line: &str, name: &str) -> anyhow::Result<String> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
        .with_context(|| format!("no {name} in {line:?}"))
}

struct Server {
    child: Child,
    grpc: String,
    /// The query API's address, `http://host:port`.
    api: String,
}

impl Server {
    /// An ingest server: pinned to one core, with the WAL policy asked for.
    fn start(data_dir: &Path, args: &IngestBenchArgs) -> anyhow::Result<Server> {
        let exe = std::env::current_exe()?;
        let pinned = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(exe);
            c
        } else {
            eprintln!("note: taskset not found; the server is not pinned to one core");
            Command::new(exe)
        };
        let mut cmd = Server::serve(cmd, data_dir);
        cmd.args(["--memory-limit", "2GiB", "--fsync", &fsync_arg(args)])
            .env("TOKIO_WORKER_THREADS", args.server_threads.to_string());
        Server::spawn(cmd)
    }

    /// `cmd serve` on ephemeral loopback ports over `data_dir`.
    fn serve(mut cmd: Command, data_dir: &Path) -> Command {
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--otlp-grpc-addr",
                "127.0.0.1:0",
                "--otlp-http-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .env("VIGIL_LOG", "warn")
            .stdout(Stdio::piped());
        cmd
    }

    /// Starts `cmd` and reads its addresses from the line it prints once listening.
    fn spawn(mut cmd: Command) -> anyhow::Result<Server> {
        let mut child = cmd.spawn().context("starting vigil serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        Ok(Server {
            grpc: format!("http://{}", banner_field(&line, "otlp_grpc")?),
            api: banner_field(&line, "api")?,
            child,
        })
    }

    /// SIGTERM: the server flushes its tail to Parquet and exits.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("server exited with {status}");
        }
        Ok(())
    }
}

fn fsync_arg(args: &IngestBenchArgs) -> String {
    match args.fsync {
        vigil_store::FsyncPolicy::Always => "always".into(),
        vigil_store::FsyncPolicy::Never => "never".into(),
        vigil_store::FsyncPolicy::Interval(d) => format!("{}ms", d.as_millis()),
    }
}

/// Spans per second prost needs just to decode `bytes`, on this thread.
fn decode_only(bytes: &[u8], spans: usize, seconds: f64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let req = ExportTraceServiceRequest::decode(bytes)?;
        std::hint::black_box(&req);
        n += 1;
    }
    Ok(n as f64 * spans as f64 / start.elapsed().as_secs_f64())
}

/// What a run of [`drive`] measured.
struct Driven {
    /// Acknowledged spans per second.
    rate: f64,
    /// Requests refused (retryably).
    refused: u64,
    /// 99th percentile of the time from sending a request to its acknowledgement.
    p99: Duration,
}

/// Sends `requests` round-robin from `clients` connections for `seconds`.
async fn drive(
    grpc: &str,
    requests: Arc<Vec<ExportTraceServiceRequest>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Driven> {
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients.max(1) {
        let mut client = TraceServiceClient::connect(grpc.to_string())
            .await?
            .max_decoding_message_size(64 << 20);
        let (requests, acked, refused) = (requests.clone(), acked.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            let mut waits = Vec::new();
            while Instant::now() < deadline {
                let req = requests[i % requests.len()].clone();
                let spans = payload::span_count(&req) as u64;
                let sent = Instant::now();
                match client.export(req).await {
                    Ok(_) => {
                        waits.push(sent.elapsed());
                        acked.fetch_add(spans, Ordering::Relaxed)
                    }
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
                i += clients;
            }
            waits
        }));
    }
    let mut waits = Vec::new();
    for t in tasks {
        waits.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    waits.sort_unstable();
    let p99 = waits
        .get((waits.len() * 99 / 100).min(waits.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Ok(Driven {
        rate: acked.load(Ordering::Relaxed) as f64 / elapsed,
        refused: refused.load(Ordering::Relaxed),
        p99,
    })
}

fn dir_bytes(dir: &Path, ext: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

async fn ingest(args: IngestBenchArgs) -> anyhow::Result<()> {
    let pool: Vec<ExportTraceServiceRequest> = (0..64)
        .map(|i| payload::request(i, args.batch, args.attributes))
        .collect();
    let wire = pool[0].encoded_len();
    let bytes_per_span = wire as f64 / args.batch as f64;
    println!(
        "payload: {} spans/request, {} attributes + 1 event per span, {:.0} OTLP bytes/span",
        args.batch, args.attributes, bytes_per_span
    );

    let encoded = pool[0].encode_to_vec();
    let decode =
        tokio::task::spawn_blocking(move || decode_only(&encoded, args.batch, 3.0)).await??;

    let dir = tempfile_dir("vigil-bench-ingest")?;
    let server = Server::start(&dir, &args)?;
    let pool = Arc::new(pool);
    let alone = drive(&server.grpc, pool.clone(), args.clients, args.seconds).await?;
    server.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    let (rate, refused) = (alone.rate, alone.refused);

    let dir = tempfile_dir("vigil-bench-reads")?;
    let server = Server::start(&dir, &args)?;
    let beside = reads::beside_heavy_queries(&server, pool, &args).await?;
    server.stop()?;
    let _ = std::fs::remove_dir_all(&dir);

    // Storage: unique spans only, so compression is not flattered by repetition.
    let dir = data_dir(args.keep_data.as_deref(), "vigil-bench-storage")?;
    let server = Server::start(&dir, &args)?;
    let unique: Vec<ExportTraceServiceRequest> = (1000..1200)
        .map(|i| payload::request(i, args.batch, args.attributes))
        .collect();
    let otlp_bytes: usize = unique.iter().map(Message::encoded_len).sum();
    let spans = (unique.len() * args.batch) as f64;
    let mut client = TraceServiceClient::connect(server.grpc.clone()).await?;
    for req in unique {
        client.export(req).await?;
    }
    server.stop()?;
    let parquet = dir_bytes(&dir.join("parquet"), "parquet");
    discard(&dir, args.keep_data.as_deref());

    println!();
    println!("{:<44} {:>14}", "measure", "value");
    println!(
        "{:<44} {:>14.0}",
        "prost decode-only, 1 core (spans/s)", decode
    );
    println!(
        "{:<44} {:>14.0}",
        format!(
            "vigil OTLP/gRPC ingest, fsync={} (spans/s)",
            fsync_arg(&args)
        ),
        rate
    );
    println!(
        "{:<44} {:>13.1}%",
        "ingest / decode-only",
        100.0 * rate / decode
    );
    println!("{:<44} {:>14}", "refused requests", refused);
    println!(
        "{:<44} {:>14.1}",
        "OTLP bytes/span",
        otlp_bytes as f64 / spans
    );
    println!(
        "{:<44} {:>14.1}",
        "Parquet bytes/span",
        parquet as f64 / spans
    );
    println!(
        "{:<44} {:>14.1}x",
        "OTLP / Parquet",
        otlp_bytes as f64 / parquet.max(1) as f64
    );
    println!("targets: >= 250000 spans/s, >= 40% of decode-only, Parquet <= 1/8 of OTLP bytes");
    reads::print(&alone, &beside);
    Ok(())
}

/// Where a benchmark writes its store: `keep` if given, else a fresh temporary directory.
fn data_dir(keep: Option<&std::path::Path>, prefix: &str) -> anyhow::Result<std::path::PathBuf> {
    match keep {
        Some(keep) => {
            std::fs::create_dir_all(keep)?;
            Ok(keep.to_path_buf())
        }
        None => tempfile_dir(prefix),
    }
}

/// Removes a benchmark's store unless it was asked to be kept.
fn discard(dir: &std::path::Path, keep: Option<&std::path::Path>) {
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn tempfile_dir(prefix: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
