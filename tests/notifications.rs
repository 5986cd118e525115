//! Notifications end to end: the real binary routes alerts posted to its API to a real local
//! HTTP receiver: grouping, repeat, resolution, silences (through the CLI), inhibition, the
//! webhook's auth headers, a malformed routing file at start and on reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use common::hook::receiver;
use common::{Vigil, eventually, vigil_cli, vigil_cli_fails, web};
use serde_json::{Value, json};

fn routing(addr: SocketAddr) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 8s
receivers:
  - name: hook
    webhook_configs:
      - url: http://{addr}/hook
        bearer_token: ${{HOOK_TOKEN:-tok}}
        hmac_secret: topsecret
inhibit_rules:
  - source_matchers: ['severity="page"']
    target_matchers: ['severity="warning"']
    equal: [service]
"#
    )
}

fn alert(name: &str, labels: &[(&str, &str)], ended: bool) -> Value {
    let mut l = json!({"alertname": name});
    for (k, v) in labels {
        l[k] = json!(v);
    }
    let mut a = json!({"labels": l, "annotations": {"summary": format!("{name} is happening")}});
    if ended {
        a["endsAt"] = json!(Utc::now() - chrono::Duration::seconds(1));
    }
    a
}

fn post_alerts(vigil: &Vigil, alerts: Value) {
    let (status, body) = web::post_json(&format!("http://{}/api/v1/alerts", vigil.api), &alerts);
    assert_eq!(status, 200, "{body}");
}

const PATIENCE: Duration = Duration::from_secs(10);

/// Writes `routing` as the routing file and a `vigil.toml` pointing at it (plus `extra`
/// lines of `[alerting]`) in `dir`; returns both paths.
fn write_config(
    dir: &std::path::Path,
    routing: &str,
    extra: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let routing_file = dir.join("alerting.yml");
    std::fs::write(&routing_file, routing).unwrap();
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nfile = {:?}\n{extra}",
            routing_file.to_str().unwrap()
        ),
    )
    .unwrap();
    (routing_file, config)
}

#[test]
fn alerts_are_grouped_repeated_resolved_silenced_and_inhibited() {
    let (inbox, addr) = receiver(false);
    let dir = tempfile::tempdir().unwrap();
    let (routing_file, config) = write_config(dir.path(), &routing(addr), "");
    let data = dir.path().join("data");
    let vigil = Vigil::start(&data, &["--config", config.to_str().unwrap()]);

    // Three alerts of one group: one notification after group_wait, with all three.
    let three = json!([
        alert("Grouped", &[("service", "a")], false),
        alert("Grouped", &[("service", "b")], false),
        alert("Grouped", &[("service", "c")], false),
    ]);
    post_alerts(&vigil, three.clone());
    assert!(eventually(PATIENCE, || !inbox.about("Grouped").is_empty()));
    std::thread::sleep(Duration::from_secs(3));
    let first = inbox.about("Grouped");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["status"], "firing");
    assert_eq!(first[0]["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(first[0]["groupKey"], "{}:{alertname=\"Grouped\"}");
    {
        let got = inbox.got.lock().unwrap();
        assert_eq!(got[0].1, "Bearer tok", "signature and bearer token checked");
    }
    // The notification's alerts are found where it links: GET /api/v1/alerts?fingerprint=.
    let listed = |fingerprint: &Value| {
        let url = format!(
            "http://{}/api/v1/alerts?fingerprint={}",
            vigil.api,
            fingerprint.as_str().unwrap()
        );
        let (status, body) = web::get_json(&url);
        assert_eq!(status, 200, "{body}");
        body["data"]["alerts"].as_array().unwrap().clone()
    };
    let fingerprint = first[0]["alerts"][0]["fingerprint"].clone();
    let found = listed(&fingerprint);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["state"], "firing");

    // Unchanged and still firing: again after repeat_interval, not before.
    post_alerts(&vigil, three);
    assert!(eventually(PATIENCE, || inbox.about("Grouped").len() == 2));
    assert_eq!(
        inbox.about("Grouped")[1]["alerts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Resolved: one resolution.
    post_alerts(
        &vigil,
        json!([
            alert("Grouped", &[("service", "a")], true),
            alert("Grouped", &[("service", "b")], true),
            alert("Grouped", &[("service", "c")], true),
        ]),
    );
    assert!(eventually(PATIENCE, || inbox.about("Grouped").len() == 3));
    let resolved = &inbox.about("Grouped")[2];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(listed(&fingerprint)[0]["state"], "resolved");
    assert!(
        resolved["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved")
    );

    // A silence made with the CLI mutes its alerts.
    let url = format!("http://{}", vigil.api);
    let created = vigil_cli(&[
        "silence",
        "add",
        "alertname=\"Quiet\"",
        "--duration",
        "1h",
        "--comment",
        "maintenance",
        "--url",
        &url,
    ]);
    assert!(created.contains("silenceID"), "{created}");
    post_alerts(&vigil, json!([alert("Quiet", &[("service", "a")], false)]));
    let listed = vigil_cli(&["silence", "list", "--url", &url]);
    assert!(
        listed.contains("\"active\"") && listed.contains("maintenance"),
        "{listed}"
    );

    // Inhibition: the warning is held back while the page for its service fires.
    post_alerts(
        &vigil,
        json!([
            alert("Down", &[("service", "x"), ("severity", "page")], false),
            alert("Slow", &[("service", "x"), ("severity", "warning")], false),
        ]),
    );
    assert!(eventually(PATIENCE, || !inbox.about("Down").is_empty()));
    std::thread::sleep(Duration::from_secs(4));
    assert!(inbox.about("Slow").is_empty());
    assert!(
        inbox.about("Quiet").is_empty(),
        "silenced alert was notified"
    );
    post_alerts(
        &vigil,
        json!([alert(
            "Down",
            &[("service", "x"), ("severity", "page")],
            true
        )]),
    );
    assert!(eventually(PATIENCE, || !inbox.about("Slow").is_empty()));

    // Delivery status and metrics.
    let (_, n) = web::get_json(&format!("{url}/api/v1/notifications"));
    let c = &n["data"]["counters"]["hook/webhook/0"];
    assert!(c["delivered"].as_u64().unwrap() >= 6, "{n}");
    assert_eq!(c["failed"], 0, "{n}");
    let (_, metrics) = web::get_text(&format!("{url}/metrics"));
    assert!(
        metrics.contains("vigil_notifications_delivered_total{integration=\"hook/webhook/0\"}"),
        "{metrics}"
    );

    // A broken edit is reported precisely and the last good routing stays in force.
    std::fs::write(
        &routing_file,
        routing(addr).replace(
            "group_wait: 1s",
            "group_wait: 1s\n  routes: [{receiver: nobody}]",
        ),
    )
    .unwrap();
    assert!(eventually(PATIENCE, || {
        let (_, n) = web::get_json(&format!("{url}/api/v1/notifications"));
        n["data"]["config"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("receiver \"nobody\" is not defined"))
    }));
    post_alerts(&vigil, json!([alert("StillRouted", &[], false)]));
    assert!(eventually(PATIENCE, || !inbox
        .about("StillRouted")
        .is_empty()));
    vigil.stop();

    // A broken routing file at start is refused with where the mistake is.
    std::fs::write(&routing_file, "route:\n  receiver: hook\n  group_by: [x]\nreceivers: [{name: hook, webhook_configs: [{url: 'http://127.0.0.1:1', secret: 1}]}]\n").unwrap();
    let mut args = vec!["serve", "--config", config.to_str().unwrap()];
    let flags = common::serve_flags(&data);
    args.extend(flags.iter().map(String::as_str));
    let err = vigil_cli_fails(&args);
    assert!(
        err.contains("unknown field `secret`") && err.contains("line 4"),
        "{err}"
    );
}

/// A real Alertmanager (the Debian package `prometheus-alertmanager`) on loopback.
struct Alertmanager {
    child: std::process::Child,
    url: String,
}

impl Alertmanager {
    fn start(dir: &std::path::Path) -> Alertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (scripts/test.sh installs it)");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        assert!(
            eventually(PATIENCE, || web::get_status(&format!("{}/-/ready", am.url))
                .is_ok_and(|s| s == 200)),
            "alertmanager did not start"
        );
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alerts_are_forwarded_to_a_real_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(dir.path());
    let routing = format!(
        "route: {{receiver: am, group_wait: 1s, group_interval: 2s}}\nreceivers:\n  - name: am\n    alertmanager_configs: [{{url: '{}'}}]\n",
        am.url
    );
    let (_, config) = write_config(dir.path(), &routing, "");
    let vigil = Vigil::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    post_alerts(
        &vigil,
        json!([alert("Forwarded", &[("service", "payment")], false)]),
    );
    let mut seen = Value::Null;
    assert!(
        eventually(PATIENCE, || {
            seen = web::get_json(&format!("{}/api/v2/alerts", am.url)).1;
            seen.as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["labels"]["alertname"] == "Forwarded"
                        && x["labels"]["service"] == "payment"
                        && x["annotations"]["summary"] == "Forwarded is happening"
                        && x["status"]["state"] == "active"
                })
            })
        }),
        "{seen}"
    );
    vigil.stop();
}

#[test]
fn a_receiver_down_for_two_minutes_and_a_kill_9_lose_and_repeat_nothing() {
    let (inbox, addr) = receiver(true);
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), &routing(addr), "max_backoff = \"5s\"\n");
    let data = dir.path().join("data");
    let started = std::time::Instant::now();
    let vigil = Vigil::start(&data, &["--config", config.to_str().unwrap()]);
    // Three groups, each notified three times: one alert firing, two firing, resolved.
    let groups = ["Alpha", "Beta", "Gamma"];
    for g in groups {
        post_alerts(&vigil, json!([alert(g, &[("service", "one")], false)]));
    }
    std::thread::sleep(Duration::from_secs(4));
    for g in groups {
        post_alerts(&vigil, json!([alert(g, &[("service", "two")], false)]));
    }
    std::thread::sleep(Duration::from_secs(4));
    let (_, before_kill) = web::get_json(&format!("http://{}/api/v1/notifications", vigil.api));
    let pending = before_kill["data"]["pending"].as_array().unwrap().len();
    assert_eq!(pending, 6, "{before_kill}");
    vigil.kill9();
    let vigil = Vigil::start(&data, &["--config", config.to_str().unwrap()]);
    for g in groups {
        post_alerts(
            &vigil,
            json!([
                alert(g, &[("service", "one")], true),
                alert(g, &[("service", "two")], true)
            ]),
        );
    }
    std::thread::sleep(Duration::from_secs(4));
    let (_, n) = web::get_json(&format!("http://{}/api/v1/notifications", vigil.api));
    assert_eq!(n["data"]["pending"].as_array().unwrap().len(), 9, "{n}");
    assert!(inbox.about("Alpha").is_empty());
    // Up after two minutes.
    std::thread::sleep(Duration::from_secs(120).saturating_sub(started.elapsed()));
    inbox.down.store(false, Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(30), || {
        groups.iter().all(|g| inbox.about(g).len() >= 3)
    }));
    std::thread::sleep(Duration::from_secs(3));
    for g in groups {
        let got = inbox.about(g);
        let shape: Vec<(String, usize)> = got
            .iter()
            .map(|v| {
                (
                    v["status"].as_str().unwrap().to_string(),
                    v["alerts"].as_array().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("firing".to_string(), 1),
                ("firing".to_string(), 2),
                ("resolved".to_string(), 2)
            ],
            "{g}: {got:?}"
        );
    }
    vigil.stop();
}
