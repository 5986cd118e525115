//! Drives `vigil demo`'s sample services: fault injection through `vigil chaos`, when a
//! fault really started (its `chaos.*` log record as Vigil stored it), and the query API's
//! Prometheus-style envelope.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::web::get_json;
use super::{Vigil, eventually, vigil_cli};

/// Makes the services' OTel SDKs export every 200 ms, so tests see telemetry quickly.
pub const FAST_EXPORT: [(&str, &str); 2] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
];

/// `data` of a successful `GET path` on the query API.
pub fn api(vigil: &Vigil, path: &str) -> Value {
    let (status, body) = get_json(&format!("http://{}{path}", vigil.api));
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["status"], "success", "{path}: {body}");
    body["data"].clone()
}

/// Runs `vigil load` against `gateway` at `rate` orders/s for `duration` (e.g. `75s`) on its
/// own thread; joining it returns the command's output.
pub fn steady_load(gateway: &str, rate: u32, duration: &str) -> std::thread::JoinHandle<String> {
    let (gateway, rate, duration) = (gateway.to_string(), rate.to_string(), duration.to_string());
    std::thread::spawn(move || {
        vigil_cli(&[
            "load",
            "--target",
            &gateway,
            "--rate",
            &rate,
            "--duration",
            &duration,
        ])
    })
}

/// Injects a fault with `vigil chaos ARGS…` against `gateway`; returns its id.
pub fn chaos(gateway: &str, args: &[&str]) -> u64 {
    let mut all = vec!["chaos", "--url", gateway];
    all.extend(args);
    let v: Value = serde_json::from_str(&vigil_cli(&all)).unwrap();
    v["id"].as_u64().unwrap()
}

/// When fault `id` logged `action` (`start` or `stop`), as Vigil stored it.
pub fn fault_time(vigil: &Vigil, id: u64, action: &str) -> DateTime<Utc> {
    let sql = format!(
        "SELECT CAST(time AS VARCHAR) FROM logs WHERE attributes['chaos.fault_id'] = '{id}' \
         AND attributes['chaos.action'] = '{action}'"
    );
    assert!(
        eventually(Duration::from_secs(20), || !vigil.sql(&sql)["rows"]
            .as_array()
            .unwrap()
            .is_empty()),
        "fault {id} {action} was logged"
    );
    let text = vigil.scalar(&sql).as_str().unwrap().to_string();
    format!("{}Z", text.trim_end_matches('Z')).parse().unwrap()
}
