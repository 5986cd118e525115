//! A real webhook receiver on an ephemeral port, for notifications end to end: it keeps each
//! payload with its checked auth headers (the HMAC signature made with `topsecret`, and the
//! `Authorization` header), and answers 503 while `down`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What the receiver got: each payload with its checked auth headers; while `down`, it
/// answers 503 and keeps nothing.
#[derive(Clone, Default)]
pub struct Inbox {
    pub got: Arc<Mutex<Vec<(Value, String)>>>,
    pub down: Arc<AtomicBool>,
}

impl Inbox {
    /// Payloads about alert group `name`.
    pub fn about(&self, name: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v["groupLabels"]["alertname"] == name)
            .map(|(v, _)| v.clone())
            .collect()
    }
}

async fn take(State(inbox): State<Inbox>, headers: HeaderMap, body: String) -> Response {
    if inbox.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let signature = header("x-vigil-signature");
    let expected = vigil_alerting::payload::webhook::signature(b"topsecret", body.as_bytes());
    let auth = header("authorization");
    let checked = if signature == expected {
        auth
    } else {
        format!("bad signature {signature}")
    };
    inbox
        .got
        .lock()
        .unwrap()
        .push((serde_json::from_str(&body).unwrap(), checked));
    "ok".into_response()
}

/// A webhook receiver on an ephemeral port, served from its own thread; `down` at first if
/// asked.
pub fn receiver(down: bool) -> (Inbox, SocketAddr) {
    let inbox = Inbox::default();
    inbox.down.store(down, Ordering::SeqCst);
    let state = inbox.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/hook", axum::routing::post(take))
                .with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
    });
    (inbox, rx.recv().unwrap())
}
