//! Traces analysed recently, so walking a large trace page by page reads and analyses it
//! once: a page after the first is cut from the snapshot the first page took (for up to
//! [`TTL`]), which also keeps the pages of a trace still receiving spans consistent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::span::Span;
use super::tree::Shape;

/// How long an analysed trace serves later pages.
const TTL: Duration = Duration::from_secs(60);
/// Most spans held across all cached traces.
const MAX_SPANS: usize = 400_000;

/// One trace as read and analysed for its view.
#[derive(Debug)]
pub struct Analysed {
    /// Its spans (at most the view's limit).
    pub spans: Vec<Span>,
    /// Whether spans were left out.
    pub truncated: bool,
    /// Tree order, self times, critical path.
    pub shape: Shape,
    /// Its logs, by time.
    pub logs: Vec<Map<String, Value>>,
    /// Spans of other traces linking into it.
    pub linked_from: Vec<Value>,
}

#[derive(Debug)]
struct Entry {
    id: String,
    at: Instant,
    trace: Arc<Analysed>,
}

/// The cache. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct TraceCache {
    entries: Arc<Mutex<VecDeque<Entry>>>,
}

impl TraceCache {
    /// Trace `id` if it was analysed less than [`TTL`] ago.
    pub fn get(&self, id: &str) -> Option<Arc<Analysed>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|e| e.at.elapsed() < TTL);
        entries.iter().find(|e| e.id == id).map(|e| e.trace.clone())
    }

    /// Keeps `trace` as trace `id`'s snapshot, dropping the oldest while over [`MAX_SPANS`].
    pub fn put(&self, id: &str, trace: Arc<Analysed>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|e| e.id != id);
        entries.push_back(Entry {
            id: id.to_string(),
            at: Instant::now(),
            trace,
        });
        let mut held: usize = entries.iter().map(|e| e.trace.spans.len()).sum();
        while held > MAX_SPANS && entries.len() > 1 {
            if let Some(old) = entries.pop_front() {
                held -= old.trace.spans.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(spans: usize) -> Arc<Analysed> {
        let span = Span {
            service_name: "s".into(),
            span_name: "op".into(),
            end_ns: 1,
            ..Span::default()
        };
        Arc::new(Analysed {
            spans: vec![span; spans],
            truncated: false,
            shape: Shape {
                order: vec![],
                self_ns: vec![],
                critical_ns: vec![],
                critical_path: vec![],
            },
            logs: vec![],
            linked_from: vec![],
        })
    }

    #[test]
    fn the_newest_snapshot_wins_and_the_oldest_go_when_over_the_span_budget() {
        let cache = TraceCache::default();
        cache.put("a", trace(10));
        cache.put("a", trace(20));
        assert_eq!(cache.get("a").unwrap().spans.len(), 20);
        cache.put("b", trace(MAX_SPANS - 20));
        assert!(cache.get("a").is_some(), "exactly at the budget");
        cache.put("c", trace(1));
        assert!(cache.get("a").is_none(), "the oldest is dropped first");
        assert!(cache.get("b").is_some() && cache.get("c").is_some());
        assert!(cache.get("d").is_none());
    }
}
