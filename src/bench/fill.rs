//! Stores filled with synthetic spans for the query benchmarks, written as the collector
//! writes them: OTLP requests converted to Arrow and appended.

use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use vigil_collector::convert::{CorrelationIndex, convert_traces};
use vigil_store::{Signal, Store};

use super::payload::request_at;
use crate::cli::SyntheticSpans;

const SPANS_PER_REQUEST: u64 = 10_000;

/// Converts `req` and appends its spans, flushing to make room when the tail is full.
pub async fn append(
    store: &Store,
    req: &ExportTraceServiceRequest,
    index: &mut CorrelationIndex,
) -> anyhow::Result<()> {
    if let Some(batch) = convert_traces(req, index)?.batch {
        while let Err(e) = store.append(Signal::Spans, batch.clone()).await {
            if !e.is_retryable() {
                return Err(e.into());
            }
            store.flush().await?;
        }
    }
    Ok(())
}

/// Writes the spans `what` asks for, spread evenly over the hours before now, in time order.
pub async fn fill(store: &Store, what: &SyntheticSpans) -> anyhow::Result<()> {
    let (spans, hours, attributes) = (what.spans, what.hours, what.attributes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let range = hours * 3_600_000_000_000;
    let requests = spans.div_ceil(SPANS_PER_REQUEST);
    let slice = range / requests.max(1);
    let mut index = CorrelationIndex::new(1024);
    let started = Instant::now();
    for k in 0..requests {
        let n = SPANS_PER_REQUEST.min(spans - k * SPANS_PER_REQUEST) as usize;
        let req = request_at(k, n, attributes, now - range + k * slice, slice);
        append(store, &req, &mut index).await?;
        if (k + 1) % 100 == 0 {
            eprint!(
                "\rwrote {} spans ({:.0}/s)",
                (k + 1) * SPANS_PER_REQUEST,
                ((k + 1) * SPANS_PER_REQUEST) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    store.flush().await?;
    eprintln!(
        "\rwrote {spans} spans in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
