//! A Slack incoming-webhook message in Block Kit: the group's title as a header, its counts and
//! shared annotations, its common labels as fields, then each alert with its suspects (service,
//! operation), its likely causes when its root-cause analysis came with it, its anomaly
//! explanation and links to it, its root-cause report and its exemplar traces in Vigil — all
//! in one attachment coloured by severity, within Slack's length limits.

use serde::Serialize;

use super::severity::Severity;
use super::text::{fit, truncate, units};
use super::{alert_url, annotation, count, label, title, trace_ids, trace_url};
use crate::notification::{GroupStatus, Notification};
use vigil_store::alert::{Alert, AlertState, Labels, RCA_REPORT_URL, RCA_SUSPECTS};

/// Colour of a firing group whose worst alert is `critical` (or `page`) or `error`.
pub const RED: &str = "#E01E5A";
/// Colour of a firing group whose worst alert is `warning`.
pub const ORANGE: &str = "#ECB22E";
/// Colour of a firing group at `info` or an unknown severity.
pub const BLUE: &str = "#36C5F0";
/// Colour of a resolved group.
pub const GREEN: &str = "#2EB67D";

/// Slack's limit on a header block's text.
const HEADER_MAX: usize = 150;
/// Slack's limit on a section block's text (and what the message text is kept to).
const SECTION_TEXT_MAX: usize = 3000;
/// Slack's limit on a section block's fields.
const FIELDS_MAX: usize = 10;
/// Slack's limit on one field's text.
const FIELD_TEXT_MAX: usize = 2000;
/// Alerts shown one by one (two blocks each, well within Slack's 50 blocks a message).
const ALERTS_SHOWN: usize = 10;
/// Exemplar traces linked per alert (a context block takes at most 10 elements).
const TRACES_SHOWN: usize = 3;
/// What a name (alert, label, service) may take of a text.
const NAME_MAX: usize = 150;
/// What a summary or description may take of a section's text.
const LINE_MAX: usize = 1000;
/// What one anomaly figure may take of a section's text.
const VALUE_MAX: usize = 100;

/// Per-receiver settings; all optional. (Incoming webhooks of Slack apps post to the channel
/// chosen when the webhook was created and may ignore these overrides.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackOptions {
    /// Channel to post to, e.g. `#payments-oncall`.
    pub channel: Option<String>,
    /// Name to post as.
    pub username: Option<String>,
    /// Emoji to post with, e.g. `:rotating_light:`.
    pub icon_emoji: Option<String>,
}

/// The JSON body posted to a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    /// [`SlackOptions::channel`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// [`SlackOptions::username`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// [`SlackOptions::icon_emoji`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    /// The title (mrkdwn), shown above the attachment and in notifications.
    pub text: String,
    /// One attachment: the colour bar and the blocks.
    pub attachments: Vec<Attachment>,
}

/// A secondary attachment holding blocks, for its colour bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    /// `#RRGGBB` by status and severity.
    pub color: String,
    /// The title as plain text, for clients that show no blocks.
    pub fallback: String,
    /// The content.
    pub blocks: Vec<Block>,
}

/// The Block Kit blocks a message uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Large bold plain text (at most 150 characters).
    Header {
        /// Plain text.
        text: Text,
    },
    /// Text (at most 3000 characters), fields in two columns (at most 10, each at most 2000
    /// characters), or both.
    Section {
        /// The text.
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Text>,
        /// The fields.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text>,
    },
    /// Small print (at most 10 elements).
    Context {
        /// Text elements.
        elements: Vec<Text>,
    },
}

/// A Block Kit text object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Text {
    /// Shown as written.
    PlainText {
        /// The text.
        text: String,
    },
    /// Slack's markup: `*bold*`, `` `code` ``, `<url|label>`; `&`, `<`, `>` escaped.
    Mrkdwn {
        /// The text.
        text: String,
    },
}

/// The Slack message for `n`, firing or resolved.
pub fn message(n: &Notification, options: &SlackOptions) -> SlackMessage {
    let title = title(n);
    let common = n.common_annotations();
    let mut blocks = vec![
        Block::Header {
            text: Text::PlainText {
                text: truncate(&title, HEADER_MAX),
            },
        },
        section(overview(n, &common)),
    ];
    blocks.extend(label_fields(n));
    for a in n.alerts.iter().take(ALERTS_SHOWN) {
        blocks.push(section(alert_lines(a, &common)));
        blocks.push(Block::Context {
            elements: links(n, a),
        });
    }
    let hidden = n.alerts.len().saturating_sub(ALERTS_SHOWN) + n.truncated;
    if hidden > 0 {
        let note = if hidden == 1 {
            "1 more alert of this group is not shown".to_string()
        } else {
            format!("{hidden} more alerts of this group are not shown")
        };
        blocks.push(Block::Context {
            elements: vec![Text::Mrkdwn { text: note }],
        });
    }
    SlackMessage {
        channel: options.channel.clone(),
        username: options.username.clone(),
        icon_emoji: options.icon_emoji.clone(),
        text: mrkdwn(&title, SECTION_TEXT_MAX),
        attachments: vec![Attachment {
            color: color(n).to_string(),
            fallback: truncate(&title, SECTION_TEXT_MAX),
            blocks,
        }],
    }
}

/// Red, orange or blue by the worst severity while firing; green once resolved.
fn color(n: &Notification) -> &'static str {
    if n.status() == GroupStatus::Resolved {
        return GREEN;
    }
    match Severity::of_group(n) {
        Some(Severity::Critical | Severity::Error) => RED,
        Some(Severity::Warning) => ORANGE,
        Some(Severity::Info) | None => BLUE,
    }
}

/// Counts, then the summary and description every alert shares.
fn overview(n: &Notification, common: &Labels) -> Vec<String> {
    let mut lines = vec![format!(
        "*{} firing, {} resolved*",
        count(n, AlertState::Firing),
        count(n, AlertState::Resolved)
    )];
    for key in ["summary", "description"] {
        if let Some(v) = common.get(key).filter(|v| !v.trim().is_empty()) {
            lines.push(mrkdwn(v, LINE_MAX));
        }
    }
    lines
}

/// The common labels as `*name*\nvalue` fields (the first ten), if there are any.
fn label_fields(n: &Notification) -> Option<Block> {
    let fields: Vec<Text> = n
        .common_labels()
        .iter()
        .take(FIELDS_MAX)
        .map(|(name, value)| {
            let head = format!("*{}*\n", mrkdwn(name, NAME_MAX));
            let room = FIELD_TEXT_MAX.saturating_sub(units(&head));
            Text::Mrkdwn {
                text: format!("{head}{}", mrkdwn(value, room)),
            }
        })
        .collect();
    (!fields.is_empty()).then_some(Block::Section { text: None, fields })
}

/// One alert: state and name, suspects, its own summary and description (those all alerts
/// share are in the overview), then its anomaly explanation or its value.
fn alert_lines(a: &Alert, common: &Labels) -> Vec<String> {
    let state = a.state.as_str().to_ascii_uppercase();
    let mut lines = vec![if a.name().is_empty() {
        format!("*{state}*")
    } else {
        format!("*{state}* · *{}*", mrkdwn(a.name(), NAME_MAX))
    }];
    let suspects: Vec<String> = ["service", "operation"]
        .into_iter()
        .filter_map(|name| label(a, name).map(|v| format!("{name} `{}`", mrkdwn(v, NAME_MAX))))
        .collect();
    if !suspects.is_empty() {
        lines.push(format!("Suspect: {}", suspects.join(" · ")));
    }
    for key in ["summary", "description"] {
        if let Some(v) = annotation(a, key)
            && common.get(key).map(String::as_str) != Some(v)
        {
            lines.push(mrkdwn(v, LINE_MAX));
        }
    }
    if let Some(causes) = annotation(a, RCA_SUSPECTS) {
        lines.push("*Likely cause*".to_string());
        lines.extend(causes.lines().map(|c| mrkdwn(c, LINE_MAX)));
    }
    if let Some(line) = anomaly_line(a) {
        lines.push(line);
    } else if let Some(v) = a.value {
        lines.push(format!("Value: {v}"));
    }
    lines
}

/// `Top feature `latency_p95` · observed 812 · expected 120 · score 0.97 · detectors …`, from
/// the annotations anomaly detection writes; `None` for an alert without them.
fn anomaly_line(a: &Alert) -> Option<String> {
    let parts: Vec<String> = [
        ("Top feature", "top_feature"),
        ("observed", "observed"),
        ("expected", "expected"),
        ("score", "anomaly_score"),
        ("detectors", "detectors"),
    ]
    .into_iter()
    .filter_map(|(what, key)| {
        annotation(a, key).map(|v| {
            let v = mrkdwn(v, VALUE_MAX);
            if key == "top_feature" {
                format!("{what} `{v}`")
            } else {
                format!("{what} {v}")
            }
        })
    })
    .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Links to the alert in Vigil, its first exemplar traces and its runbook.
fn links(n: &Notification, a: &Alert) -> Vec<Text> {
    let mut out = vec![link(&alert_url(&n.external_url, a), "View in Vigil")];
    for id in trace_ids(a).take(TRACES_SHOWN) {
        let short = id.get(..8).unwrap_or(id);
        out.push(link(
            &trace_url(&n.external_url, id),
            &format!("Trace {short}"),
        ));
    }
    if let Some(url) = annotation(a, RCA_REPORT_URL).filter(|u| is_url(u)) {
        out.push(link(url, "Root cause"));
    }
    if let Some(url) = annotation(a, "runbook_url").filter(|u| is_url(u)) {
        out.push(link(url, "Runbook"));
    }
    out
}

/// `<url|caption>` as a mrkdwn element.
fn link(url: &str, caption: &str) -> Text {
    Text::Mrkdwn {
        text: format!("<{}|{}>", escape(url), escape(caption)),
    }
}

/// An http(s) address that cannot break a `<url|label>` link.
fn is_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '|' | '<' | '>'))
}

/// A section of `lines`, kept to Slack's limit by leaving out whole lines that do not fit
/// (every line is built within its own budget, so only a very long alert loses any).
fn section(lines: Vec<String>) -> Block {
    let mut text = String::new();
    let mut used = 0;
    for line in lines {
        let width = units(&line) + usize::from(!text.is_empty());
        if used + width > SECTION_TEXT_MAX {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
        used += width;
    }
    Block::Section {
        text: Some(Text::Mrkdwn { text }),
        fields: Vec::new(),
    }
}

/// `s` with Slack's control characters escaped (`&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`),
/// in at most `max` UTF-16 units; a cut never splits an escape.
fn mrkdwn(s: &str, max: usize) -> String {
    fit(
        s,
        max,
        |c| match c {
            '&' => 5,
            '<' | '>' => 4,
            c => c.len_utf16(),
        },
        |out, c| match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        },
    )
}

/// `s` with Slack's control characters escaped, whole.
fn escape(s: &str) -> String {
    mrkdwn(s, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_escapes_control_characters_and_never_cuts_an_escape() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        // "ab&" escapes to 7 units; with room for 6, the "&amp;" goes whole.
        assert_eq!(mrkdwn("ab&", 6), "ab…");
        assert_eq!(mrkdwn("ab&", 7), "ab&amp;");
    }

    #[test]
    fn sections_keep_whole_lines_within_the_limit() {
        let long = "x".repeat(SECTION_TEXT_MAX);
        let Block::Section {
            text: Some(Text::Mrkdwn { text }),
            ..
        } = section(vec!["head".into(), long, "tail".into()])
        else {
            panic!("not a text section");
        };
        assert_eq!(text, "head\ntail");
    }

    #[test]
    fn only_http_links_without_delimiters_are_linked() {
        assert!(is_url("https://runbooks.example.com/a?b=c&d=e"));
        assert!(!is_url("javascript:alert(1)"));
        assert!(!is_url("https://x.example.com/|fake"));
    }
}
