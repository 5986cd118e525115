//! Starts a real `nats-server` with JetStream on an ephemeral loopback port.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`, killed on drop.
pub struct NatsServer {
    child: Child,
    /// Its client URL, `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server -js` storing its streams under `dir`.
    pub fn start(dir: &Path) -> NatsServer {
        // The OS picks a free port; the server binds it right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (scripts/test.sh installs the Debian package nats-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !greets(port) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nats-server exited with {status} (port {port} taken?)");
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        }
    }
}

/// True once a NATS server answers on `port` with its `INFO` greeting (a bare TCP connect
/// can succeed by connecting to itself before the server listens).
fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut hello = [0u8; 4];
    stream.read_exact(&mut hello).is_ok() && &hello == b"INFO"
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
