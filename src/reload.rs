//! The one hot-reload loop for the configuration files `vigil serve` watches (rule files and
//! the notification routing file): every two seconds each owner re-reads its files if they
//! changed, and SIGHUP makes every owner re-read them unconditionally. An invalid edit is
//! reported by its owner, which keeps its last good version in force.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How often the files are checked for edits.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// One owner of reloadable files: called with `true` on SIGHUP (re-read even if unchanged),
/// with `false` on the periodic check (re-read only what changed).
pub type Reload = Box<dyn FnMut(bool) + Send>;

/// Runs `owners`' reloads until `shutdown`. SIGHUP is handled (never fatal) even when
/// there is nothing to reload.
pub async fn run(mut owners: Vec<Reload>, shutdown: Arc<Notify>) {
    let stop = shutdown.notified();
    tokio::pin!(stop);
    stop.as_mut().enable();
    let mut hangups = hangups();
    loop {
        let forced = tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => false,
            () = next_hangup(&mut hangups) => true,
            () = &mut stop => return,
        };
        if forced {
            tracing::info!("SIGHUP: reloading configuration files");
        }
        for reload in &mut owners {
            reload(forced);
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP cannot be handled; files are still checked for edits");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

/// Waits for the next SIGHUP (forever where there is none).
#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    if let Some(h) = hangups.as_mut()
        && h.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn owners_are_checked_periodically_and_stop_with_shutdown() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let shutdown = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            vec![Box::new(move |forced| seen.lock().unwrap().push(forced))],
            shutdown.clone(),
        ));
        tokio::time::sleep(CHECK_EVERY * 3 + CHECK_EVERY / 2).await;
        assert_eq!(*calls.lock().unwrap(), vec![false; 3]);
        shutdown.notify_waiters();
        task.await.unwrap();
    }
}
