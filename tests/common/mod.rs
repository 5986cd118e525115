//! Starts the real `vigil serve` (or `vigil demo`) binary on ephemeral ports and talks to it
//! over HTTP.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub mod chaos;
pub mod hook;
pub mod nats;
pub mod otlp;
pub mod sources;

/// A running `vigil serve` or `vigil demo` child process.
pub struct Vigil {
    child: Child,
    pub grpc: String,
    pub http: String,
    pub api: String,
    pub data_dir: PathBuf,
    /// The sample services' gateway and admin API (`vigil demo` only).
    pub gateway: Option<String>,
}

/// Runs `vigil ARGS…` to completion and returns its stdout; panics if it fails.
pub fn vigil_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vigil {args:?} failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `vigil ARGS…`, expecting it to fail; returns its stderr.
pub fn vigil_cli_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil");
    assert!(!out.status.success(), "vigil {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The flags that put a server's data in `data_dir` and its listeners on ephemeral ports.
pub fn serve_flags(data_dir: &Path) -> Vec<String> {
    [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--otlp-grpc-addr",
        "127.0.0.1:0",
        "--otlp-http-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]
    .map(String::from)
    .to_vec()
}

impl Vigil {
    /// Starts Vigil on ephemeral ports with its data in `data_dir`; `extra` are more `serve` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Vigil {
        Vigil::launch(&["serve"], data_dir, extra, &[])
    }

    /// Starts `vigil demo` on ephemeral ports (gateway included) with no load and no
    /// scripted faults unless `extra` asks; `env` is set for the process (e.g. the
    /// services' `OTEL_*` export settings).
    pub fn demo(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Vigil {
        let mut args = vec!["demo", "--gateway-addr", "127.0.0.1:0"];
        args.extend(["--rate", "0", "--fault-every", "0s"]);
        Vigil::launch(&args, data_dir, extra, env)
    }

    fn launch(command: &[&str], data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Vigil {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(command)
            .args(serve_flags(data_dir))
            .args(extra)
            .envs(env.iter().copied());
        let (child, line) = spawn_with_banner(cmd, "vigil listening:");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing in {line:?}"))
                .to_string()
        };
        let vigil = Vigil {
            grpc: format!("http://{}", field("otlp_grpc")),
            http: format!("http://{}", field("otlp_http")),
            api: field("api").trim_start_matches("http://").to_string(),
            data_dir: data_dir.to_path_buf(),
            gateway: line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("gateway="))
                .map(str::to_string),
            child,
        };
        vigil.wait_ready();
        vigil
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if web::get_status(&format!("http://{}/readyz", self.api)).is_ok_and(|s| s == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("vigil did not become ready");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait for vigil");
        assert!(status.success(), "vigil exited with {status}");
    }

    /// Runs SQL through the query API and returns the JSON answer (panics on an HTTP error).
    pub fn sql(&self, sql: &str) -> Value {
        let (status, body) = self.sql_raw(sql);
        assert_eq!(status, 200, "SQL {sql:?} failed: {body}");
        body
    }

    /// Runs SQL, returning the status and body whatever they are.
    pub fn sql_raw(&self, sql: &str) -> (u16, Value) {
        web::post_json(
            &format!("http://{}/api/v1/sql", self.api),
            &json!({ "sql": sql }),
        )
    }

    /// The single value a one-row, one-column query returns.
    pub fn scalar(&self, sql: &str) -> Value {
        let v = self.sql(sql);
        v["rows"][0][0].clone()
    }

    /// `SELECT count(*)` as a number.
    pub fn count(&self, sql: &str) -> u64 {
        self.scalar(sql)
            .as_u64()
            .unwrap_or_else(|| panic!("not a count: {sql}"))
    }
}

/// Starts `cmd` (quiet logs, stdout piped) and returns it with the first line it printed,
/// which must start with `banner`; what it prints later is passed on to stderr, so its stdout
/// never fills or breaks.
fn spawn_with_banner(mut cmd: Command, banner: &str) -> (Child, String) {
    let mut child = cmd
        .env("VIGIL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vigil");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read vigil's banner");
    std::thread::spawn(move || {
        for l in stdout.lines().map_while(Result::ok) {
            eprintln!("vigil> {l}");
        }
    });
    assert!(line.starts_with(banner), "unexpected banner {line:?}");
    (child, line)
}

/// `vigil demo --otlp-endpoint`: the sample services and their gateway, exporting to a Vigil
/// running in another process.
pub struct Services {
    child: Child,
    /// The gateway and admin API.
    pub gateway: String,
}

impl Services {
    /// Starts the services exporting to `vigil`'s OTLP/gRPC listener, with no load and no
    /// scripted faults; `extra` are more `demo` flags, `env` is set for the process.
    pub fn start(vigil: &Vigil, extra: &[&str], env: &[(&str, &str)]) -> Services {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(["demo", "--otlp-endpoint", &vigil.grpc])
            .args([
                "--gateway-addr",
                "127.0.0.1:0",
                "--rate",
                "0",
                "--fault-every",
                "0s",
            ])
            .args(extra)
            .envs(env.iter().copied());
        let (child, line) = spawn_with_banner(cmd, "vigil demo services:");
        let gateway = line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("gateway="))
            .unwrap_or_else(|| panic!("gateway missing in {line:?}"))
            .to_string();
        Services { child, gateway }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal blocking HTTP helpers over a private tokio runtime (tests are synchronous).
pub mod web {
    use serde_json::Value;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn get_status(url: &str) -> Result<u16, ::reqwest::Error> {
        rt().block_on(async { Ok(::reqwest::get(url).await?.status().as_u16()) })
    }

    pub fn get_json(url: &str) -> (u16, Value) {
        rt().block_on(async {
            let r = ::reqwest::get(url).await.expect("GET");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }

    pub fn get_text(url: &str) -> (u16, String) {
        rt().block_on(async {
            let r = ::reqwest::get(url).await.expect("GET");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }

    pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
        rt().block_on(async {
            let r = ::reqwest::Client::new()
                .post(url)
                .json(body)
                .send()
                .await
                .expect("POST");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
