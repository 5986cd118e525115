//! Annotation templates: `{{ $value }}` (the measured value in the threshold's unit) and
//! `{{ $labels.name }}` (a label of the alert), checked when rules are read.

use std::collections::BTreeMap;

use super::threshold::Unit;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
enum Part<'a> {
    Text(&'a str),
    Value,
    Label(&'a str),
}

fn parse(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        parts.push(Part::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in template {template:?}"))?;
        let expr = after[..close].trim();
        parts.push(match expr.strip_prefix("$labels.") {
            Some(name) if !name.is_empty() => Part::Label(name),
            _ if expr == "$value" => Part::Value,
            _ => {
                return Err(format!(
                    "unknown template expression {{{{ {expr} }}}}; use {{{{ $value }}}} or {{{{ $labels.name }}}}"
                ));
            }
        });
        rest = &after[close + 2..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// Checks that `template` only uses `$value` and `$labels.name`.
pub fn check(template: &str) -> Result<(), String> {
    parse(template).map(|_| ())
}

/// `value` written in `unit`: `212ms`, `1.35s`, `5.3%`, `12.5/s`, `42`.
pub fn format_value(value: f64, unit: Option<Unit>) -> String {
    let num = |v: f64| {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    };
    match unit {
        Some(Unit::Seconds) if value < 1.0 => format!("{}ms", num(value * 1e3)),
        Some(Unit::Seconds) => format!("{}s", num(value)),
        Some(Unit::Ratio) => format!("{}%", num(value * 100.0)),
        Some(Unit::PerSecond) => format!("{}/s", num(value)),
        Some(Unit::Number) | None => num(value),
    }
}

/// Renders `template`; a missing label renders as `<no value>`, as in Prometheus.
pub fn render(
    template: &str,
    value: f64,
    unit: Option<Unit>,
    labels: &BTreeMap<String, String>,
) -> String {
    let Ok(parts) = parse(template) else {
        return template.to_string();
    };
    parts
        .into_iter()
        .map(|p| match p {
            Part::Text(t) => t.to_string(),
            Part::Value => format_value(value, unit),
            Part::Label(name) => labels
                .get(name)
                .cloned()
                .unwrap_or_else(|| "<no value>".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_values_in_their_unit_and_labels() {
        let labels = BTreeMap::from([("service".to_string(), "payment".to_string())]);
        assert_eq!(
            render(
                "{{ $labels.service }} p95 is {{$value}}",
                0.2125,
                Some(Unit::Seconds),
                &labels
            ),
            "payment p95 is 212.5ms"
        );
        assert_eq!(format_value(1.35, Some(Unit::Seconds)), "1.35s");
        assert_eq!(format_value(0.053, Some(Unit::Ratio)), "5.3%");
        assert_eq!(format_value(12.5, Some(Unit::PerSecond)), "12.5/s");
        assert_eq!(format_value(42.0, None), "42");
        assert_eq!(
            render("{{ $labels.nope }}", 1.0, None, &labels),
            "<no value>"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(check("{{ $value }} and {{ $labels.x }}").is_ok());
        assert!(check("p95 {{ $value").unwrap_err().contains("unclosed"));
        assert!(
            check("{{ .Value }}")
                .unwrap_err()
                .contains("unknown template expression")
        );
    }
}
