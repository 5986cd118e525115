//! Named time intervals as Alertmanager defines them (`time_intervals`: times of day,
//! weekdays, days of the month, months, years, in a time zone), which routes use to mute
//! notifications (`mute_time_intervals`) or to allow them only then (`active_time_intervals`).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// A named set of intervals; the name is what routes refer to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// Referenced by routes' `mute_time_intervals` / `active_time_intervals`.
    pub name: String,
    /// The instant is inside when any of these contains it.
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether `t` falls in any of the intervals.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.time_intervals.iter().any(|i| i.contains(t))
    }
}

/// One interval: every field given must hold (an absent field holds always).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// Times of day, `start_time` inclusive to `end_time` exclusive (`"09:00"`–`"17:30"`).
    #[serde(default)]
    pub times: Vec<TimeRange>,
    /// `monday`, or ranges such as `monday:friday`.
    #[serde(default)]
    pub weekdays: Vec<Span<Weekday>>,
    /// `1`, `1:5`, negative from the month's end: `-1` is the last day.
    #[serde(default)]
    pub days_of_month: Vec<Span<DayOfMonth>>,
    /// `january`, `1`, ranges such as `january:march`.
    #[serde(default)]
    pub months: Vec<Span<Month>>,
    /// `2026`, ranges such as `2026:2027`.
    #[serde(default)]
    pub years: Vec<Span<Year>>,
    /// IANA time zone the fields are read in (`Europe/Berlin`); UTC when absent.
    #[serde(default)]
    pub location: Option<Location>,
}

impl TimeInterval {
    /// Whether `t` is inside.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let tz = self.location.as_ref().map_or(Tz::UTC, |l| l.0);
        let local = t.with_timezone(&tz);
        let minute = local.hour() * 60 + local.minute();
        let last_day = days_in_month(local.year(), local.month());
        let day = local.day() as i32;
        any_or_empty(&self.times, |r| r.start <= minute && minute < r.end)
            && any_or_empty(&self.weekdays, |s| {
                s.contains(local.weekday().num_days_from_monday() as i32)
            })
            && any_or_empty(&self.days_of_month, |s| {
                let resolve = |d: i32| if d < 0 { last_day + 1 + d } else { d };
                (resolve(s.start)..=resolve(s.end)).contains(&day)
            })
            && any_or_empty(&self.months, |s| s.contains(local.month() as i32))
            && any_or_empty(&self.years, |s| s.contains(local.year()))
    }
}

fn any_or_empty<T>(items: &[T], f: impl Fn(&T) -> bool) -> bool {
    items.is_empty() || items.iter().any(f)
}

fn days_in_month(year: i32, month: u32) -> i32 {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day() as i32)
}

/// A time of day range in minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive.
    pub start: u32,
    /// Exclusive; 1440 is midnight at the end of the day.
    pub end: u32,
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start_time: String,
            end_time: String,
        }
        let raw = Raw::deserialize(d)?;
        let minutes = |s: &str| -> Result<u32, String> {
            let (h, m) = s
                .split_once(':')
                .ok_or_else(|| format!("time {s:?} must be HH:MM"))?;
            let (h, m): (u32, u32) = (
                h.parse().map_err(|_| format!("bad hour in {s:?}"))?,
                m.parse().map_err(|_| format!("bad minute in {s:?}"))?,
            );
            if m >= 60 || h > 24 || (h == 24 && m > 0) {
                return Err(format!("time {s:?} is not between 00:00 and 24:00"));
            }
            Ok(h * 60 + m)
        };
        let start = minutes(&raw.start_time).map_err(serde::de::Error::custom)?;
        let end = minutes(&raw.end_time).map_err(serde::de::Error::custom)?;
        if start >= end {
            return Err(serde::de::Error::custom(format!(
                "start_time {:?} must be before end_time {:?}",
                raw.start_time, raw.end_time
            )));
        }
        Ok(TimeRange { start, end })
    }
}

/// What a span's ends are made of: how one is read, and its allowed range.
pub trait SpanUnit {
    /// What the unit is called in errors.
    const WHAT: &'static str;
    /// The numeric value of one end.
    fn parse(s: &str) -> Option<i32>;
    /// Whether `start..=end` is a valid span.
    fn valid(start: i32, end: i32) -> bool {
        start <= end
    }
}

/// `start:end` or a single value, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<U> {
    /// Inclusive.
    pub start: i32,
    /// Inclusive.
    pub end: i32,
    unit: std::marker::PhantomData<U>,
}

impl<U> Span<U> {
    fn contains(&self, v: i32) -> bool {
        (self.start..=self.end).contains(&v)
    }
}

impl<'de, U: SpanUnit> Deserialize<'de> for Span<U> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string(),
            Raw::Str(s) => s,
        };
        let (a, b) = text.split_once(':').unwrap_or((&text, &text));
        let end = |s: &str| {
            U::parse(s.trim()).ok_or_else(|| {
                serde::de::Error::custom(format!("{:?} is not a valid {}", s.trim(), U::WHAT))
            })
        };
        let (start, stop) = (end(a)?, end(b)?);
        if !U::valid(start, stop) {
            return Err(serde::de::Error::custom(format!(
                "{text:?}: the {} range is empty or backwards",
                U::WHAT
            )));
        }
        Ok(Span {
            start,
            end: stop,
            unit: std::marker::PhantomData,
        })
    }
}

/// Days of the week, Monday = 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekday;

impl SpanUnit for Weekday {
    const WHAT: &'static str = "weekday";
    fn parse(s: &str) -> Option<i32> {
        const DAYS: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        let s = s.to_ascii_lowercase();
        DAYS.iter().position(|d| *d == s).map(|i| i as i32)
    }
}

/// Days of the month, 1–31 or −31…−1 from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfMonth;

impl SpanUnit for DayOfMonth {
    const WHAT: &'static str = "day of the month";
    fn parse(s: &str) -> Option<i32> {
        s.parse()
            .ok()
            .filter(|d: &i32| (1..=31).contains(d) || (-31..=-1).contains(d))
    }
    fn valid(start: i32, end: i32) -> bool {
        // `1:-1` (first to last) is valid whatever the month; `-1:1` never is.
        match (start < 0, end < 0) {
            (false, true) => true,
            (true, false) => false,
            _ => start <= end,
        }
    }
}

/// Months, January = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month;

impl SpanUnit for Month {
    const WHAT: &'static str = "month";
    fn parse(s: &str) -> Option<i32> {
        const MONTHS: [&str; 12] = [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ];
        let lower = s.to_ascii_lowercase();
        MONTHS
            .iter()
            .position(|m| *m == lower)
            .map(|i| i as i32 + 1)
            .or_else(|| s.parse().ok().filter(|m| (1..=12).contains(m)))
    }
}

/// Calendar years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Year;

impl SpanUnit for Year {
    const WHAT: &'static str = "year";
    fn parse(s: &str) -> Option<i32> {
        s.parse().ok().filter(|y| (1..=9999).contains(y))
    }
}

/// An IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location(pub Tz);

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>().map(Location).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown time zone {name:?} (IANA names such as \"Europe/Berlin\")"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(yaml: &str) -> TimeInterval {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn office_hours_on_weekdays_in_a_time_zone() {
        let i = interval(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\nlocation: Europe/Berlin\n",
        );
        // Friday 2026-11-27 08:30 UTC is 09:30 in Berlin (UTC+1).
        assert!(i.contains(at("2026-11-27T08:30:00Z")));
        assert!(!i.contains(at("2026-11-27T07:30:00Z")));
        // 16:00 UTC is 17:00 in Berlin: the end is exclusive.
        assert!(!i.contains(at("2026-11-27T16:00:00Z")));
        // Saturday.
        assert!(!i.contains(at("2026-11-28T08:30:00Z")));
    }

    #[test]
    fn days_from_the_end_of_the_month_months_and_years() {
        let i = interval("days_of_month: ['-1']\nmonths: ['february', '11:12']\nyears: [2026]\n");
        assert!(i.contains(at("2026-11-30T12:00:00Z")));
        assert!(!i.contains(at("2026-11-29T12:00:00Z")));
        assert!(!i.contains(at("2026-10-31T12:00:00Z")));
        assert!(!i.contains(at("2027-11-30T12:00:00Z")));
        // The last day of February 2028 is the 29th.
        let leap = interval("days_of_month: ['-1']\n");
        assert!(leap.contains(at("2028-02-29T00:00:00Z")));
        assert!(!leap.contains(at("2028-02-28T00:00:00Z")));
    }

    #[test]
    fn bad_intervals_are_refused_with_the_reason() {
        for (yaml, reason) in [
            ("weekdays: ['funday']", "not a valid weekday"),
            (
                "times: [{start_time: '17:00', end_time: '09:00'}]",
                "must be before",
            ),
            (
                "times: [{start_time: '25:00', end_time: '26:00'}]",
                "not between",
            ),
            ("months: ['march:january']", "backwards"),
            ("location: Mars/Olympus", "unknown time zone"),
            ("hours: [1]", "unknown field"),
        ] {
            let e = serde_yaml_ng::from_str::<TimeInterval>(yaml)
                .unwrap_err()
                .to_string();
            assert!(e.contains(reason), "{yaml}: {e}");
        }
    }
}
