//! Human-written durations (`250ms`, `30s`, `7d`) and byte sizes (`16MiB`) for configuration.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as whole numbers with units, largest first: `ms`, `s`, `m`, `h`, `d`,
/// `w`, `y` (e.g. `250ms`, `1h30m`), or `0`.
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
        let text = input.trim();
        if text == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        // Whole numbers with units, largest unit first, each unit once: `90s`, `1h30m`.
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        let mut rest = text;
        let mut millis: u64 = 0;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let n: u64 = rest[..digits].parse().map_err(|_| {
                err("expected whole numbers followed by ms, s, m, h, d, w or y, e.g. 1h30m")
            })?;
            rest = &rest[digits..];
            let letters = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = rest[..letters].trim();
            rest = &rest[letters..];
            let Some(at) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(err("unknown unit; use ms, s, m, h, d, w or y"));
            };
            if at < next_unit {
                return Err(err("units go from the largest to the smallest, each once"));
            }
            next_unit = at + 1;
            millis = n
                .checked_mul(UNITS[at].1)
                .and_then(|v| v.checked_add(millis))
                .ok_or_else(|| err("too large"))?;
        }
        if text.is_empty() {
            return Err(err("empty"));
        }
        Ok(HumanDuration(Duration::from_millis(millis)))
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
        assert_eq!(
            "1h30m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(5_400)
        );
        assert_eq!("0".parse::<HumanDuration>().unwrap().0, Duration::ZERO);
        assert!("30m1h".parse::<HumanDuration>().is_err());
        assert!("1m1m".parse::<HumanDuration>().is_err());
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
