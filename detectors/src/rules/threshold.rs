//! Thresholds with units as rule files write them (`200ms`, `0.1%`, `500/s`, `42`) and the
//! comparisons rules apply to them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use vigil_store::units::HumanDuration;

/// What a threshold measures, in Vigil's canonical units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds (written `250ms`, `2s`, `1m`).
    Seconds,
    /// A ratio in [0, 1] (written `0.1%`).
    Ratio,
    /// Events per second (written `500/s`, `30/m`, `100/h`).
    PerSecond,
    /// A plain number (written `42`, `0.5`).
    Number,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Seconds => "a duration such as 200ms",
            Unit::Ratio => "a percentage such as 0.1%",
            Unit::PerSecond => "a rate such as 500/s",
            Unit::Number => "a plain number",
        })
    }
}

/// A threshold: a value in the canonical unit of its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The value: seconds, a ratio, per second, or a plain number.
    pub value: f64,
    /// Its kind.
    pub unit: Unit,
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let bad = |why: &str| format!("invalid threshold {input:?}: {why}");
        let number = |n: &str| -> Result<f64, String> {
            n.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad("expected a number before the unit"))
        };
        let (value, unit) = if let Some(n) = s.strip_suffix('%') {
            (number(n)? / 100.0, Unit::Ratio)
        } else if let Some((n, per)) = s.split_once('/') {
            let secs = match per.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad("rates are per s, m or h, e.g. 500/s")),
            };
            (number(n)? / secs, Unit::PerSecond)
        } else if s.contains(|c: char| c.is_alphabetic()) {
            let d: HumanDuration = s
                .parse()
                .map_err(|_| bad("durations use ns, us, ms, s, m, h, d, w or y, e.g. 200ms"))?;
            (d.0.as_secs_f64(), Unit::Seconds)
        } else {
            (number(s)?, Unit::Number)
        };
        if value < 0.0 {
            return Err(bad("must not be negative"));
        }
        if unit == Unit::Ratio && value > 1.0 {
            return Err(bad("a percentage is at most 100%"));
        }
        Ok(Threshold { value, unit })
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(value) if value.is_finite() => Ok(Threshold {
                value,
                unit: Unit::Number,
            }),
            Raw::Number(value) => Err(serde::de::Error::custom(format!(
                "invalid threshold {value}"
            ))),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How a measured value is compared with the threshold; the rule breaches when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Comparison {
    /// Above.
    #[default]
    #[serde(rename = ">")]
    Above,
    /// At or above.
    #[serde(rename = ">=")]
    AtLeast,
    /// Below.
    #[serde(rename = "<")]
    Below,
    /// At or below.
    #[serde(rename = "<=")]
    AtMost,
    /// Equal.
    #[serde(rename = "==")]
    Equal,
    /// Not equal.
    #[serde(rename = "!=")]
    NotEqual,
}

impl Comparison {
    /// True if `value` compared with `threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        s.parse().unwrap()
    }

    #[test]
    fn units_parse_to_canonical_values() {
        assert_eq!(
            t("200ms"),
            Threshold {
                value: 0.2,
                unit: Unit::Seconds
            }
        );
        assert_eq!(t("1.5s").value, 1.5);
        assert_eq!(t("2m").value, 120.0);
        assert_eq!(t("250us").value, 250e-6);
        assert_eq!(
            t("0.1%"),
            Threshold {
                value: 0.001,
                unit: Unit::Ratio
            }
        );
        assert!((t("99.9 %").value - 0.999).abs() < 1e-12);
        assert_eq!(
            t("500/s"),
            Threshold {
                value: 500.0,
                unit: Unit::PerSecond
            }
        );
        assert_eq!(t("30/m").value, 0.5);
        assert_eq!(
            t("42"),
            Threshold {
                value: 42.0,
                unit: Unit::Number
            }
        );
    }

    #[test]
    fn bad_thresholds_say_why() {
        for (input, why) in [
            ("200 parsecs", "durations use"),
            ("5/d", "rates are per s, m or h"),
            ("abc%", "expected a number"),
            ("150%", "at most 100%"),
            ("-3", "must not be negative"),
        ] {
            let e = input.parse::<Threshold>().unwrap_err();
            assert!(e.contains(why), "{input}: {e}");
        }
    }

    #[test]
    fn comparisons() {
        assert!(Comparison::Above.holds(2.0, 1.0));
        assert!(!Comparison::Above.holds(1.0, 1.0));
        assert!(Comparison::AtLeast.holds(1.0, 1.0));
        assert!(Comparison::Below.holds(0.5, 1.0));
        assert!(Comparison::AtMost.holds(1.0, 1.0));
        assert!(Comparison::Equal.holds(1.0, 1.0));
        assert!(Comparison::NotEqual.holds(2.0, 1.0));
    }
}
