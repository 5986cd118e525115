//! Human-written durations (`250ms`, `1.5s`, `7d`) and byte sizes (`16MiB`): the one syntax
//! for configuration, rule files and API parameters.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as numbers with units, largest first: `ns`, `us` (`µs`), `ms`, `s`, `m`,
/// `h`, `d`, `w`, `y` (e.g. `250ms`, `1h30m`, `1.5s`), or `0`.
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
    /// The one duration syntax of configuration, rule files and API parameters: numbers with
    /// units, largest unit first, each unit once (`250ms`, `1h30m`, `1.5s`, `250us`), or `0`.
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
        if text.is_empty() {
            return Err(err("empty"));
        }
        const UNITS: [(&str, u128); 10] = [
            ("y", 365 * 86_400_000_000_000),
            ("w", 7 * 86_400_000_000_000),
            ("d", 86_400_000_000_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("µs", 1_000),
            ("ns", 1),
        ];
        let mut rest = text;
        let mut nanos: u128 = 0;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let number = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (whole, fraction) = rest[..number]
                .split_once('.')
                .unwrap_or((&rest[..number], ""));
            let digits_ok = |d: &str| d.chars().all(|c| c.is_ascii_digit());
            if whole.is_empty() && fraction.is_empty() || !digits_ok(fraction) || fraction.len() > 9
            {
                return Err(err(
                    "expected numbers followed by ns, us, ms, s, m, h, d, w or y, e.g. 1h30m or 1.5s",
                ));
            }
            rest = &rest[number..];
            let letters = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = rest[..letters].trim();
            rest = &rest[letters..];
            let Some(at) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(err("unknown unit; use ns, us, ms, s, m, h, d, w or y"));
            };
            // `us` and `µs` are one unit.
            let rank = if unit == "µs" { at - 1 } else { at };
            if rank < next_unit {
                return Err(err("units go from the largest to the smallest, each once"));
            }
            next_unit = if unit == "us" { rank + 2 } else { rank + 1 };
            let scale = UNITS[at].1;
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| err("too large"))?
            };
            // The fraction exactly, to the nanosecond.
            let fraction_ns = if fraction.is_empty() {
                0
            } else {
                let f: u128 = fraction.parse().map_err(|_| err("too large"))?;
                f * scale / 10u128.pow(fraction.len() as u32)
            };
            nanos = whole
                .checked_mul(scale)
                .and_then(|v| v.checked_add(fraction_ns))
                .and_then(|v| v.checked_add(nanos))
                .filter(|v| *v <= u128::from(u64::MAX))
                .ok_or_else(|| err("too large"))?;
        }
        let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| err("too large"))?;
        let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| err("too large"))?;
        Ok(HumanDuration(Duration::new(secs, sub)))
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
        let ns = self.0.as_nanos();
        if !ns.is_multiple_of(1_000_000_000) {
            // The largest sub-second unit that writes it exactly.
            return match [(1_000_000, "ms"), (1_000, "us")]
                .into_iter()
                .find(|(n, _)| ns.is_multiple_of(*n))
            {
                Some((n, u)) => write!(f, "{}{u}", ns / n),
                None => write!(f, "{ns}ns"),
            };
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
        // The largest unit that writes it exactly: 96MiB, 1536KiB, 1000B.
        let unit = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
            .into_iter()
            .find(|(shift, _)| self.0 > 0 && self.0.trailing_zeros() >= *shift);
        match unit {
            Some((shift, u)) => write!(f, "{}{u}", self.0 >> shift),
            None => write!(f, "{}B", self.0),
        }
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
        // Fractions and sub-millisecond units, as Go (and so Jaeger clients) write them.
        let ns = |s: &str| s.parse::<HumanDuration>().map(|d| d.0.as_nanos()).ok();
        assert_eq!(ns("1.5s"), Some(1_500_000_000));
        assert_eq!(ns("300ms"), Some(300_000_000));
        assert_eq!(ns("2m30s"), Some(150_000_000_000));
        assert_eq!(ns("250us"), Some(250_000));
        assert_eq!(ns("250µs"), Some(250_000));
        assert_eq!(ns("1ms500us"), Some(1_500_000));
        assert_eq!(ns(".5s"), Some(500_000_000));
        assert_eq!(ns("0.000000001s"), Some(1));
        assert_eq!(ns("1us1µs"), None);
        assert_eq!(ns("1.2.3s"), None);
        assert_eq!(ns("fast"), None);
        assert_eq!(ns("."), None);
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        for text in ["250ms", "90s", "5m", "1h", "2w", "1500us", "7ns", "0s"] {
            let d: HumanDuration = text.parse().unwrap();
            let again: HumanDuration = d.to_string().parse().unwrap();
            assert_eq!(d, again, "{text}");
        }
        assert_eq!(
            "1.5s".parse::<HumanDuration>().unwrap().to_string(),
            "1500ms"
        );
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!("16MiB".parse::<ByteSize>().unwrap().0, 16 << 20);
        for (bytes, text) in [
            (96 << 20, "96MiB"),
            (1536 << 10, "1536KiB"),
            (1000, "1000B"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(text.parse::<ByteSize>().unwrap().0, bytes);
        }
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert_eq!("1000".parse::<ByteSize>().unwrap().0, 1000);
        assert!("12 bananas".parse::<ByteSize>().is_err());
    }
}
