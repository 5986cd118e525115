//! Realistic synthetic spans for benchmarks: unique ids, 20 attributes of mixed types, one event.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event};

use vigil_collector::convert::ids::push_hex;
use vigil_sample_services::saga::SERVICES;

const ROUTES: [&str; 6] = [
    "/orders",
    "/orders/{id}",
    "/stock/{sku}",
    "/payments",
    "/shipments",
    "/notify",
];
const SPAN_NAMES: [&str; 6] = [
    "POST /orders",
    "GET /orders/{id}",
    "SELECT stock",
    "charge card",
    "publish shipment.created",
    "send email",
];

/// splitmix64: deterministic, fast, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn i(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn attributes(rng: &mut Rng, n: usize) -> Vec<KeyValue> {
    let mut all = vec![
        s("http.method", rng.pick(&["GET", "POST", "PUT"])),
        s("http.route", rng.pick(&ROUTES)),
        i(
            "http.status_code",
            [200, 200, 200, 201, 404, 500][(rng.next() % 6) as usize],
        ),
        s(
            "net.peer.name",
            format!("10.0.{}.{}", rng.next() % 8, rng.next() % 250),
        ),
        i("net.peer.port", 30000 + (rng.next() % 20000) as i64),
        s("user.id", format!("user-{}", rng.next() % 100_000)),
        s("order.id", format!("ord-{:016x}", rng.next())),
        s("db.system", "postgresql"),
        s(
            "db.statement",
            format!(
                "SELECT id, sku, qty FROM stock WHERE sku = $1 AND warehouse = {}",
                rng.next() % 12
            ),
        ),
        s("messaging.system", "nats"),
        s(
            "messaging.destination",
            rng.pick(&["orders", "payments", "shipments"]),
        ),
        i("thread.id", (rng.next() % 64) as i64),
        s(
            "thread.name",
            format!("tokio-runtime-worker-{}", rng.next() % 8),
        ),
        s(
            "code.function",
            rng.pick(&["handle_order", "reserve_stock", "charge", "ship"]),
        ),
        s("code.namespace", "sample_services::handlers"),
        i("code.lineno", (rng.next() % 900) as i64),
        s("customer.tier", rng.pick(&["free", "pro", "enterprise"])),
        s("cloud.region", rng.pick(&["eu-west-1", "us-east-1"])),
        i("retry.count", (rng.next() % 3) as i64),
        KeyValue {
            key: "cache.hit".into(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(rng.next().is_multiple_of(2))),
            }),
            ..Default::default()
        },
    ];
    all.truncate(n);
    while all.len() < n {
        let k = all.len();
        all.push(s(&format!("extra.{k}"), format!("{:x}", rng.next())));
    }
    all
}

/// Request number `seed`: `spans` spans in traces of 8, `attrs` attributes each, unique ids,
/// starting within the last second.
pub fn request(seed: u64, spans: usize, attrs: usize) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    request_at(seed, spans, attrs, now - 1_000_000_000, 900_000_000)
}

/// Like [`request`], with spans starting in `[from, from + spread)` (ns since the epoch).
pub fn request_at(
    seed: u64,
    spans: usize,
    attrs: usize,
    from: u64,
    spread: u64,
) -> ExportTraceServiceRequest {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF);
    let service = SERVICES[(seed % SERVICES.len() as u64) as usize];
    let mut out = Vec::with_capacity(spans);
    let mut trace_id = Vec::new();
    let mut parent = Vec::new();
    for n in 0..spans {
        if n % 8 == 0 {
            trace_id = [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat();
            parent = Vec::new();
        }
        let span_id = rng.next().to_be_bytes().to_vec();
        let start = from + rng.next() % spread.max(1);
        let duration = 50_000 + rng.next() % 50_000_000;
        out.push(Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            parent_span_id: parent.clone(),
            name: rng.pick(&SPAN_NAMES).into(),
            kind: 1 + (rng.next() % 5) as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            attributes: attributes(&mut rng, attrs),
            events: vec![Event {
                time_unix_nano: start + duration / 2,
                name: "cache.lookup".into(),
                attributes: vec![
                    s("cache.key", format!("sku:{}", rng.next() % 5000)),
                    i("cache.size", (rng.next() % 4096) as i64),
                ],
                ..Default::default()
            }],
            status: Some(Status {
                code: if rng.next().is_multiple_of(50) { 2 } else { 0 },
                ..Default::default()
            }),
            ..Default::default()
        });
        parent = span_id;
    }
    ExportTraceServiceRequest {
        resource_spans: vec![resource_spans(service, seed % 4, out)],
    }
}

/// `spans` of `service`, as reported from host `node-<host>`.
fn resource_spans(service: &str, host: u64, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                s("service.name", service),
                s("service.version", "1.4.2"),
                s("host.name", format!("node-{host}")),
                s("deployment.environment", "bench"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "bench".into(),
                version: "1".into(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Children per span of [`large_trace`].
const FAN_OUT: usize = 8;

/// One trace of `spans` spans starting at `from` (ns since the epoch) and lasting 10 s: a
/// root and a tree of calls, [`FAN_OUT`] children per span, each within its parent's time,
/// across the sample services. Returns its trace id (hex) and the request carrying it.
pub fn large_trace(spans: usize, from: u64, attrs: usize) -> (String, ExportTraceServiceRequest) {
    let mut rng = Rng(from);
    let trace_id = [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat();
    // (start, duration, span id) of every span so far, by index; span i's parent is
    // (i - 1) / FAN_OUT and it is that parent's ((i - 1) % FAN_OUT)-th child.
    let mut placed: Vec<(u64, u64, Vec<u8>)> = Vec::with_capacity(spans);
    let mut by_service: Vec<Vec<Span>> = SERVICES.iter().map(|_| Vec::new()).collect();
    for i in 0..spans {
        let (start, duration, parent) = match i.checked_sub(1) {
            None => (from, 10_000_000_000, Vec::new()),
            Some(k) => {
                let (p_start, p_duration, p_id) = &placed[k / FAN_OUT];
                let slot = (k % FAN_OUT) as u64 + 1;
                let step = p_duration / (FAN_OUT as u64 + 2);
                (p_start + slot * step, step, p_id.clone())
            }
        };
        let span_id = rng.next().to_be_bytes().to_vec();
        by_service[i % SERVICES.len()].push(Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            parent_span_id: parent,
            name: rng.pick(&SPAN_NAMES).into(),
            kind: if i == 0 { 2 } else { 3 },
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration,
            attributes: attributes(&mut rng, attrs),
            ..Default::default()
        });
        placed.push((start, duration, span_id));
    }
    let mut hex = String::with_capacity(32);
    push_hex(&mut hex, &trace_id);
    let resource_spans = SERVICES
        .iter()
        .zip(by_service)
        .enumerate()
        .map(|(host, (service, spans))| resource_spans(service, host as u64, spans))
        .collect();
    (hex, ExportTraceServiceRequest { resource_spans })
}

/// Spans in a request.
pub fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}
