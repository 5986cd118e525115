//! Level-transition novelty for one series: values are quantised into equal-width levels over
//! the range of the first points seen, and each value is scored by how rarely its level has
//! followed the previous value's level. A level never reached scores highest, and more the
//! further it lies beyond the learnt range. Catches what a mean and a spread cannot: a value
//! inside the usual range that arrives by an unusual route, or a first excursion to a new
//! range on a series whose spread is wide.

use std::collections::{HashMap, HashSet};

/// How the levels are learnt and what novelty is worth, in standard deviations so it
/// competes with the level and change surprises on one scale.
#[derive(Debug, Clone, PartialEq)]
pub struct NoveltyConfig {
    /// Points whose range defines the levels; nothing is scored before then.
    pub learn: usize,
    /// Levels across the learnt range (further levels continue beyond it, same width).
    pub levels: usize,
    /// Times a level must have been left before its transitions are judged.
    pub min_support: u32,
    /// Surprise of a transition never seen from a well-supported level; one seen with
    /// frequency `p` is worth `(1 - p)` of it.
    pub unseen_transition: f64,
    /// Surprise of a level never reached, one level beyond the learnt range.
    pub new_level: f64,
    /// How the new-level surprise grows with distance `d` (in levels) beyond the learnt
    /// range: `new_level * (1 + growth * ln d)`.
    pub growth: f64,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig {
            learn: 500,
            levels: 4,
            min_support: 80,
            unseen_transition: 7.0,
            new_level: 8.3,
            growth: 3.0,
        }
    }
}

/// Levels further than this beyond the learnt range share the outermost level, which bounds
/// the transition table whatever the series does.
const MAX_BEYOND: i64 = 64;

/// The level grid, once learnt.
#[derive(Debug, Clone, Copy)]
struct Grid {
    low: f64,
    step: f64,
    levels: i64,
}

impl Grid {
    fn of(values: &[f64], levels: usize) -> Grid {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let levels = i64::try_from(levels.max(1)).unwrap_or(i64::MAX);
        let step = if high > low {
            (high - low) / levels as f64
        } else {
            // A flat learning period: any move of one unit is a new level.
            1.0
        };
        Grid {
            low: if low.is_finite() { low } else { 0.0 },
            step,
            levels,
        }
    }

    fn level(&self, x: f64) -> i64 {
        // A float-to-int cast saturates (and maps NaN to 0), so no value can panic here.
        let q = ((x - self.low) / self.step).floor() as i64;
        q.clamp(-MAX_BEYOND, self.levels + MAX_BEYOND)
    }

    /// How many levels beyond the learnt range `q` lies, at least 1. The range spans levels
    /// `0..=levels`: its top value starts level `levels`.
    fn beyond(&self, q: i64) -> f64 {
        let d = if q < 0 { -q } else { q - self.levels };
        d.max(1) as f64
    }
}

/// The novelty model of one series.
#[derive(Debug, Clone)]
pub struct LevelNovelty {
    config: NoveltyConfig,
    /// The first points, until the grid is learnt.
    learning: Vec<f64>,
    grid: Option<Grid>,
    seen: HashSet<i64>,
    transitions: HashMap<(i64, i64), u32>,
    departures: HashMap<i64, u32>,
    last: Option<i64>,
}

impl LevelNovelty {
    /// A model that has seen nothing.
    pub fn new(config: NoveltyConfig) -> Self {
        LevelNovelty {
            learning: Vec::with_capacity(config.learn),
            config,
            grid: None,
            seen: HashSet::new(),
            transitions: HashMap::new(),
            departures: HashMap::new(),
            last: None,
        }
    }

    fn learn_level(&mut self, q: i64) {
        if let Some(p) = self.last {
            *self.transitions.entry((p, q)).or_default() += 1;
            *self.departures.entry(p).or_default() += 1;
        }
        self.seen.insert(q);
        self.last = Some(q);
    }

    /// The surprise of `x` (in standard deviations) from earlier points only, then learns it.
    /// Zero while the levels are being learnt.
    pub fn update(&mut self, x: f64) -> f64 {
        let Some(grid) = self.grid else {
            self.learning.push(x);
            if self.learning.len() >= self.config.learn {
                let grid = Grid::of(&self.learning, self.config.levels);
                for v in std::mem::take(&mut self.learning) {
                    self.learn_level(grid.level(v));
                }
                self.grid = Some(grid);
            }
            return 0.0;
        };
        let q = grid.level(x);
        let surprise = if !self.seen.contains(&q) {
            self.config.new_level * (1.0 + self.config.growth * grid.beyond(q).ln())
        } else {
            self.last
                .and_then(|p| {
                    let total = *self.departures.get(&p)?;
                    (total >= self.config.min_support).then(|| {
                        let count = self.transitions.get(&(p, q)).copied().unwrap_or(0);
                        (1.0 - f64::from(count) / f64::from(total)) * self.config.unseen_transition
                    })
                })
                .unwrap_or(0.0)
        };
        self.learn_level(q);
        surprise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NoveltyConfig {
        NoveltyConfig {
            learn: 40,
            min_support: 5,
            ..NoveltyConfig::default()
        }
    }

    #[test]
    fn nothing_scores_while_learning_and_a_new_level_scores_by_distance() {
        let mut n = LevelNovelty::new(config());
        // A saw tooth over 0..=4 with 4 levels: each value is a level of its own.
        for i in 0..40 {
            assert_eq!(n.update(f64::from(i % 5)), 0.0);
        }
        let mut twin = n.clone();
        // One level beyond: new_level exactly; ten levels beyond: 1 + 3 ln 10 times it.
        let one = n.update(5.5);
        assert!((one - 8.3).abs() < 1e-9, "{one}");
        let far = twin.update(14.5);
        assert!((far - 8.3 * (1.0 + 3.0 * 10f64.ln())).abs() < 1e-9, "{far}");
        // Seen now: no longer new.
        assert!(n.update(5.5) < one);
    }

    #[test]
    fn an_unusual_route_to_a_usual_level_is_novel() {
        let mut n = LevelNovelty::new(config());
        // 0 → 1 → 2 → 3 → 4 → 0 … always climbing.
        for i in 0..40 {
            n.update(f64::from(i % 5));
        }
        // The usual next step (from the top the series returns to 0) is not surprising.
        assert_eq!(n.update(0.0), 0.0);
        // Jumping from 0 straight to 3 has never happened.
        let s = n.update(3.0);
        assert!((s - 7.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn extreme_and_missing_values_do_not_panic_and_stay_bounded() {
        let mut n = LevelNovelty::new(config());
        for i in 0..40 {
            n.update(f64::from(i % 5));
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300] {
            assert!(n.update(x).is_finite());
        }
        assert!(n.seen.len() <= 4 + 2 * MAX_BEYOND as usize + 1);
    }
}
