//! The outbox on a real directory: order, replay into the log, delivery, failures and
//! unreadable files.

use std::collections::BTreeSet;

use super::*;
use vigil_store::alert::Labels;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_273_600 + secs, 0).unwrap_or_default()
}

fn dispatch(group: &str, at: i64) -> Dispatch {
    Dispatch {
        integration: IntegrationId {
            receiver: "team".into(),
            kind: "webhook".into(),
            index: 0,
        },
        notification: Notification {
            receiver: "team".into(),
            group_key: group.into(),
            group_labels: Labels::new(),
            alerts: Vec::new(),
            truncated: 0,
            external_url: "http://127.0.0.1:8080".into(),
        },
        entry: LogEntry {
            firing: BTreeSet::new(),
            resolved: BTreeSet::new(),
            at: t(at),
        },
    }
}

#[test]
fn pending_notifications_survive_a_reopen_in_order_and_replay_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut outbox, pending, log) = Outbox::open(dir.path()).unwrap();
    assert!(pending.is_empty() && log.is_empty());
    let pushed = outbox
        .push(
            vec![dispatch("{}:{a=\"1\"}", 0), dispatch("{}:{a=\"2\"}", 0)],
            t(0),
        )
        .unwrap();
    assert_eq!(pushed.iter().map(|p| p.seq).collect::<Vec<_>>(), [0, 1]);
    // The log snapshot was never saved: the pending entries alone restore it.
    let (mut reopened, pending, log) = Outbox::open(dir.path()).unwrap();
    assert_eq!(pending, pushed);
    assert_eq!(log.len(), 2);
    reopened.delivered(0).unwrap();
    let more = reopened
        .push(vec![dispatch("{}:{a=\"1\"}", 60)], t(60))
        .unwrap();
    assert_eq!(more[0].seq, 2);
    let (_, pending, _) = Outbox::open(dir.path()).unwrap();
    assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn permanent_failures_are_kept_aside_and_unreadable_files_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut outbox, _, _) = Outbox::open(dir.path()).unwrap();
    let p = outbox
        .push(vec![dispatch("{}:{}", 0)], t(0))
        .unwrap()
        .remove(0);
    outbox
        .failed(&Failed {
            pending: p.clone(),
            failed_at: t(5),
            attempts: 1,
            error: "HTTP 400: bad payload".into(),
        })
        .unwrap();
    let failures = outbox.failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].pending, p);
    std::fs::write(
        dir.path().join("pending").join(format!("{:020}.json", 7)),
        b"{not json",
    )
    .unwrap();
    let (mut reopened, pending, _) = Outbox::open(dir.path()).unwrap();
    assert!(pending.is_empty());
    assert!(
        dir.path()
            .join("failed")
            .join(format!("{:020}.unreadable", 7))
            .exists()
    );
    // Sequence numbers continue past everything seen.
    assert_eq!(
        reopened.push(vec![dispatch("{}:{}", 9)], t(9)).unwrap()[0].seq,
        8
    );
}
