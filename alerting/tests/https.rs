//! Delivery over HTTPS to a real TLS receiver: a certificate from an authority named in
//! `ca_file` is trusted; one from an unknown authority is refused with a reason, not sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::TlsAcceptor;
use vigil_alerting::config::AlertingConfig;
use vigil_alerting::outbox::Pending;
use vigil_alerting::retry::Outcome;
use vigil_alerting::send::Sender;

mod common;
use common::dispatch;

/// A certificate authority and a `localhost` / `127.0.0.1` server certificate it signed.
struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Vigil test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server,
    }
}

/// Serves HTTPS on loopback; every POST body is kept and answered 200.
async fn receiver(server: rustls::ServerConfig) -> (Arc<Mutex<Vec<String>>>, u16) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(kept): State<Arc<Mutex<Vec<String>>>>, body: String| async move {
                    kept.lock().unwrap().push(body);
                },
            ),
        )
        .with_state(Arc::clone(&bodies));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    (bodies, port)
}

fn routing(port: u16) -> AlertingConfig {
    let yaml = format!(
        "route: {{receiver: team}}\nreceivers:\n  - name: team\n    webhook_configs: [{{url: 'https://localhost:{port}/hook'}}]\n"
    );
    AlertingConfig::parse("test.yml", &yaml).unwrap()
}

fn pending() -> Pending {
    let d = dispatch("team", "CheckoutSlow", "over TLS");
    Pending {
        seq: 1,
        queued_at: Utc::now(),
        integration: d.integration,
        notification: d.notification,
        entry: d.entry,
    }
}

#[tokio::test]
async fn https_receivers_are_reached_when_their_authority_is_trusted_and_refused_otherwise() {
    let pki = pki();
    let (bodies, port) = receiver(pki.server).await;
    let config = routing(port);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let untrusting = Sender::new(Duration::from_secs(5), None).unwrap();
    match untrusting.send(&config, &pending()).await {
        Outcome::Retry { error, .. } => {
            assert!(error.contains("certificate"), "{error}")
        }
        other => panic!("an unknown authority must be refused, got {other:?}"),
    }
    assert!(bodies.lock().unwrap().is_empty());

    let trusting = Sender::new(Duration::from_secs(5), Some(&ca_file)).unwrap();
    let outcome = trusting.send(&config, &pending()).await;
    assert!(matches!(outcome, Outcome::Delivered), "{outcome:?}");
    let taken = bodies.lock().unwrap().clone();
    assert_eq!(taken.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&taken[0]).unwrap();
    assert_eq!(v["alerts"][0]["labels"]["alertname"], "CheckoutSlow");
    assert_eq!(v["alerts"][0]["annotations"]["marker"], "over TLS");
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let e = Sender::new(Duration::from_secs(1), Some(&missing)).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = Sender::new(Duration::from_secs(1), Some(&junk)).unwrap_err();
    assert!(e.to_string().contains("junk.pem"), "{e}");
}
