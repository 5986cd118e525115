//! `vigil bench orders`: starts `vigil demo` (Vigil and the sample services, no load of its
//! own) as a child process, sends open-loop orders through its gateway, then reports the
//! achieved rate and latency, how many sagas finished, how much telemetry Vigil stored, and
//! the CPU the demo process used.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use vigil_sample_services::load::{self, LoadConfig, Mix};

use super::{banner_field, tempfile_dir};
use crate::cli::{Broker, OrdersBenchArgs};

/// CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    // USER_HZ is 100 on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

async fn sql(client: &reqwest::Client, api: &str, query: &str) -> anyhow::Result<f64> {
    let answer: Value = client
        .post(format!("{api}/api/v1/sql"))
        .json(&json!({ "sql": query }))
        .send()
        .await?
        .json()
        .await?;
    answer["rows"][0][0]
        .as_f64()
        .with_context(|| format!("no number from {query}: {answer}"))
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: OrdersBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir("vigil-bench-orders")?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("demo")
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--gateway-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--rate",
            "0",
            "--fault-every",
            "0s",
            "--metric-interval",
            "5s",
        ])
        .args(["--fsync", "100ms"])
        .env("VIGIL_LOG", "warn")
        .stdout(Stdio::piped());
    if args.broker == Broker::Nats {
        cmd.args(["--broker", "nats", "--nats-url", &args.nats_url]);
    }
    let mut child = cmd.spawn().context("starting vigil demo")?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(drop));
    let (api, gateway) = (banner_field(&line, "api")?, banner_field(&line, "gateway")?);
    let pid = child.id();

    let config = LoadConfig {
        target: gateway,
        rate: args.rate,
        duration: args.duration.0,
        concurrency: 1024,
        mix: Mix::default(),
    };
    println!(
        "bench orders: {} orders/s for {:.0}s through vigil demo ({:?} broker)",
        args.rate,
        config.duration.as_secs_f64(),
        args.broker
    );
    let cpu_before = cpu_seconds(pid)?;
    let report = load::run(&config, |_| {}).await?;
    let cpu_load = cpu_seconds(pid)? - cpu_before;
    let load_secs = report.progress.elapsed.as_secs_f64();
    println!("{}", crate::load::summary(&report, args.rate));

    // Wait until the sagas of accepted orders have finished and their telemetry is stored.
    let client = reqwest::Client::new();
    let finished_sql = "SELECT count(*) FROM spans WHERE span_kind = 'PRODUCER' \
                        AND attributes['event.type'] IN ('OrderCompleted', 'OrderCancelled')";
    let accepted = report.progress.accepted as f64;
    let settle = Instant::now();
    let mut finished = 0.0;
    while settle.elapsed() < Duration::from_secs(60) {
        finished = sql(&client, &api, finished_sql).await?;
        if finished >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu_total = cpu_seconds(pid)? - cpu_before;
    let spans = sql(&client, &api, "SELECT count(*) FROM spans").await?;
    let logs = sql(&client, &api, "SELECT count(*) FROM logs").await?;
    let points = sql(&client, &api, "SELECT count(*) FROM metrics").await?;
    let retried = sql(
        &client,
        &api,
        "SELECT count(*) FROM logs WHERE body LIKE 'attempt % failed%'",
    )
    .await?;
    let dead = sql(
        &client,
        &api,
        "SELECT count(*) FROM logs WHERE body LIKE 'dead-lettered%'",
    )
    .await?;
    println!(
        "sagas finished: {finished:.0} of {accepted:.0} accepted orders ({:.2}%), {:.1}s after the load ended",
        100.0 * finished / accepted.max(1.0),
        settle.elapsed().as_secs_f64()
    );
    println!(
        "stored by vigil: {spans:.0} spans ({:.1} per order, {:.0}/s over the load), {logs:.0} logs, {points:.0} metric points",
        spans / accepted.max(1.0),
        spans / load_secs
    );
    println!("consumer retries: {retried:.0}, dead-lettered: {dead:.0}");
    println!(
        "vigil demo process CPU: {:.2} cores during the load, {cpu_total:.1} CPU-seconds in all",
        cpu_load / load_secs
    );
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = child.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        bail!("vigil demo exited with {status}");
    }
    if finished < accepted {
        bail!("{:.0} accepted orders did not finish", accepted - finished);
    }
    Ok(())
}
