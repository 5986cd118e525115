//! `vigil load`: runs the load generator against a gateway with a progress line, then prints
//! the achieved rate and latency percentiles.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::bail;
use vigil_sample_services::load::{self, LoadConfig, Mix, Progress, Report};

use crate::cli::LoadArgs;

fn line(p: &Progress, total: Duration) -> String {
    let width = 30;
    let done = (p.elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)).min(1.0);
    let filled = (done * f64::from(width)).round() as usize;
    format!(
        "[{}{}] {:>4.0}s/{:.0}s sent {} accepted {} rejected {} failed {} unreachable {} skipped {}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled),
        p.elapsed.as_secs_f64(),
        total.as_secs_f64(),
        p.sent,
        p.accepted,
        p.rejected,
        p.failed,
        p.unreachable,
        p.skipped
    )
}

/// The summary printed after a run.
pub fn summary(report: &Report, asked: f64) -> String {
    let p = &report.progress;
    let latency: Vec<String> = report
        .latency
        .iter()
        .map(|(q, d)| {
            let name = if *q >= 100.0 {
                "max".to_string()
            } else {
                format!("p{q}")
            };
            format!("{name} {:.1}ms", d.as_secs_f64() * 1e3)
        })
        .collect();
    format!(
        "sent {} orders in {:.1}s: achieved {:.1}/s of {asked}/s asked\n\
         accepted {}, rejected {}, failed {}, unreachable {}, skipped (concurrency full) {}\n\
         latency from when each order was due: {}",
        p.sent,
        p.elapsed.as_secs_f64(),
        report.achieved_rate,
        p.accepted,
        p.rejected,
        p.failed,
        p.unreachable,
        p.skipped,
        latency.join(", ")
    )
}

/// Runs the load and prints progress and the summary.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let config = LoadConfig {
        target: args.target,
        rate: args.rate,
        duration: args.duration.0,
        concurrency: args.concurrency,
        mix: Mix {
            out_of_stock: args.out_of_stock,
            declined: args.declined,
        },
    };
    let tty = std::io::stderr().is_terminal();
    let total = config.duration;
    let report = load::run(&config, |p| {
        let mut err = std::io::stderr();
        // Progress is best effort: a closed stderr must not stop the load.
        if tty {
            let _ = write!(err, "\r{}", line(p, total));
        } else if p.elapsed.as_secs() % 5 == 0 || p.elapsed >= total {
            let _ = writeln!(err, "{}", line(p, total));
        }
    })
    .await?;
    if tty {
        eprintln!();
    }
    println!("{}", summary(&report, config.rate));
    if report.progress.sent > 0 && report.progress.accepted == 0 {
        bail!("no order was accepted by {}", config.target);
    }
    Ok(())
}
