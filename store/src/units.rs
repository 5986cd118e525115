//! Human-written durations (`250ms`, `30s`, `7d`) and byte sizes (`16MiB`) for configuration.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as an integer and a unit: `ms`, `s`, `m`, `h`, `d`, `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// A size written as an integer and an optional unit: `B`, `KiB`, `MiB`, `GiB`, `TiB` (or `KB`…, also powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Why a unit string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct UnitError {
    what: &'static str,
    input: String,
    reason: &'static str,
}

fn split_number(s: &str) -> (&str, &str) {
    let idx = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (&s[..idx], s[idx..].trim())
}

impl FromStr for HumanDuration {
    type Err = UnitError;
    fn from_str(input: &str) -> Result<Self, UnitError> {
        let err = |reason| UnitError {
            what: "duration",
            input: input.to_string(),
            reason,
        };
        let (num, unit) = split_number(input.trim());
        let n: u64 = num
            .parse()
            .map_err(|_| err("expected a whole number followed by ms, s, m, h, d or w"))?;
        let secs = |mult: u64| {
            n.checked_mul(mult)
                .map(Duration::from_secs)
                .ok_or_else(|| err("too large"))
        };
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => secs(1)?,
            "m" => secs(60)?,
            "h" => secs(3600)?,
            "d" => secs(86_400)?,
            "w" => secs(7 * 86_400)?,
            _ => return Err(err("unknown unit; use ms, s, m, h, d or w")),
        };
        Ok(HumanDuration(d))
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(input: &str) -> Result<Self, UnitError> {
        let err = |reason| UnitError {
            what: "size",
            input: input.to_string(),
            reason,
        };
        let (num, unit) = split_number(input.trim());
        let n: u64 = num
            .parse()
            .map_err(|_| err("expected a whole number followed by B, KiB, MiB, GiB or TiB"))?;
        let shift = match unit {
            "" | "B" => 0,
            "K" | "KB" | "KiB" => 10,
            "M" | "MB" | "MiB" => 20,
            "G" | "GB" | "GiB" => 30,
            "T" | "TB" | "TiB" => 40,
            _ => return Err(err("unknown unit; use B, KiB, MiB, GiB or TiB")),
        };
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| err("too large"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let secs = self.0.as_secs();
        // The largest unit that writes it exactly: 90s, 5m, 1h, 30d, 2w.
        let unit = [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(n, _)| secs > 0 && secs.is_multiple_of(*n));
        match unit {
            Some((n, u)) => write!(f, "{}{u}", secs / n),
            None => write!(f, "{secs}s"),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

macro_rules! serde_via_str {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Int(u64),
                    Str(String),
                }
                match Raw::deserialize(d).map_err(|_| serde::de::Error::custom($expecting))? {
                    Raw::Int(n) => n.to_string().parse().map_err(serde::de::Error::custom),
                    Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
                }
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

serde_via_str!(
    HumanDuration,
    "expected a duration such as \"250ms\", \"30s\" or \"7d\""
);
serde_via_str!(
    ByteSize,
    "expected a size such as \"512MiB\" or a number of bytes"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            "7d".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(604_800)
        );
        assert_eq!(
            "5m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(300)
        );
        assert!("5 parsecs".parse::<HumanDuration>().is_err());
        assert!("".parse::<HumanDuration>().is_err());
        // A bare number is ambiguous for a duration.
        assert!("5".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!("16MiB".parse::<ByteSize>().unwrap().0, 16 << 20);
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert_eq!("1000".parse::<ByteSize>().unwrap().0, 1000);
        assert!("12 bananas".parse::<ByteSize>().is_err());
    }
}
