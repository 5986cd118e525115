//! The topology file of a generated call graph: its services, their operations and the calls
//! each makes, its databases and the requests its front door takes; read from YAML and
//! checked (every call reaches something that exists, no call loops back).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// A call graph of synchronous services.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The service taking the requests from outside.
    pub front_door: String,
    /// The requests it takes, each with its share of the load.
    pub entry: Vec<Entry>,
    /// Uninstrumented dependencies: the round trip of one query, milliseconds (min, max).
    #[serde(default)]
    pub databases: BTreeMap<String, [u64; 2]>,
    /// Each service's operations, by name.
    pub services: BTreeMap<String, BTreeMap<String, Operation>>,
}

/// One kind of request the front door takes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The front door's operation.
    pub operation: String,
    /// Its share of the load, relative to the others.
    pub weight: u32,
}

/// One operation of a service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// How long its handler works on its own, milliseconds (min, max).
    #[serde(default)]
    pub work_ms: [u64; 2],
    /// For a cache lookup: the share of calls that hit.
    #[serde(default)]
    pub hit_rate: Option<f64>,
    /// The calls it makes, in order.
    #[serde(default)]
    pub calls: Vec<Step>,
}

/// One call an operation makes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A service or a database.
    pub to: String,
    /// The service's operation (none for a database).
    #[serde(default)]
    pub operation: Option<String>,
    /// Runs together with the neighbouring steps that are parallel too.
    #[serde(default)]
    pub parallel: bool,
    /// Runs only when the last cache lookup before it missed.
    #[serde(default)]
    pub on_miss: bool,
}

/// Why a topology file is not usable.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not YAML of the topology's shape.
    #[error("topology file: {0}")]
    Syntax(#[from] serde_yaml_ng::Error),
    /// Parsed, but inconsistent.
    #[error("topology file: {0}")]
    Invalid(String),
}

impl Topology {
    /// Reads and checks a topology file's text.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let topology: Topology = serde_yaml_ng::from_str(text)?;
        topology.check()?;
        Ok(topology)
    }

    /// The services faults can be put on: every one with callers (the front door has none
    /// that are traced).
    pub fn called_services(&self) -> Vec<&str> {
        self.services
            .keys()
            .map(String::as_str)
            .filter(|s| *s != self.front_door)
            .collect()
    }

    /// The operation `service` serves as `name`.
    pub fn operation(&self, service: &str, name: &str) -> Option<&Operation> {
        self.services.get(service)?.get(name)
    }

    fn check(&self) -> Result<(), TopologyError> {
        let invalid = |m: String| Err(TopologyError::Invalid(m));
        if !self.services.contains_key(&self.front_door) {
            return invalid(format!("front door {:?} is not a service", self.front_door));
        }
        if self.entry.is_empty() || self.entry.iter().all(|e| e.weight == 0) {
            return invalid("entry needs a request with a weight above 0".into());
        }
        for e in &self.entry {
            if self.operation(&self.front_door, &e.operation).is_none() {
                return invalid(format!(
                    "entry {:?} is not an operation of {}",
                    e.operation, self.front_door
                ));
            }
        }
        for (name, [min, max]) in &self.databases {
            if min > max || self.services.contains_key(name) {
                return invalid(format!(
                    "database {name}: needs min ≤ max and a name no service has"
                ));
            }
        }
        for (service, operations) in &self.services {
            for (name, op) in operations {
                let at = format!("{service} {name}");
                self.check_operation(&at, op)?;
            }
        }
        self.check_no_loops()
    }

    fn check_operation(&self, at: &str, op: &Operation) -> Result<(), TopologyError> {
        let invalid = |m: String| Err(TopologyError::Invalid(format!("{at}: {m}")));
        if op.work_ms[0] > op.work_ms[1] {
            return invalid("work_ms needs min ≤ max".into());
        }
        if op.hit_rate.is_some_and(|h| !(0.0..=1.0).contains(&h)) {
            return invalid("hit_rate must be within 0–1".into());
        }
        let mut cache_before = false;
        for step in &op.calls {
            match (&step.operation, self.databases.contains_key(&step.to)) {
                (None, true) => {}
                (Some(_), true) => {
                    return invalid(format!("database {} has no operations", step.to));
                }
                (None, false) => {
                    return invalid(format!("{} is not a database; name its operation", step.to));
                }
                (Some(o), false) => match self.operation(&step.to, o) {
                    Some(callee) => cache_before |= callee.hit_rate.is_some(),
                    None => return invalid(format!("{} has no operation {o}", step.to)),
                },
            }
            if step.on_miss && !cache_before {
                return invalid(format!(
                    "the call to {} is on_miss, but no cache lookup comes before it",
                    step.to
                ));
            }
        }
        Ok(())
    }

    /// Refuses a service that calls itself, directly or not: its requests would never end.
    fn check_no_loops(&self) -> Result<(), TopologyError> {
        let callees = |service: &str| -> BTreeSet<&str> {
            self.services
                .get(service)
                .into_iter()
                .flat_map(|ops| ops.values())
                .flat_map(|op| &op.calls)
                .filter(|s| s.operation.is_some())
                .map(|s| s.to.as_str())
                .collect()
        };
        for start in self.services.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&str> = callees(start).into_iter().collect();
            while let Some(s) = todo.pop() {
                if s == start {
                    return Err(TopologyError::Invalid(format!(
                        "{start} calls itself through its callees"
                    )));
                }
                if seen.insert(s) {
                    todo.extend(callees(s));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = include_str!("../../../config/topology/shop.yaml");

    #[test]
    fn the_shop_has_a_fan_out_a_shared_downstream_a_cache_and_a_slow_database() {
        let t = Topology::parse(SHOP).unwrap();
        assert!(t.services.len() >= 10, "{}", t.services.len());
        let callers_of = |callee: &str| {
            t.services
                .iter()
                .filter(|(_, ops)| ops.values().flat_map(|o| &o.calls).any(|s| s.to == callee))
                .count()
        };
        assert!(callers_of("currency") >= 3, "a shared downstream");
        assert!(
            t.services["frontend"]["GET /product"]
                .calls
                .iter()
                .filter(|s| s.parallel)
                .count()
                >= 2,
            "a fan-out"
        );
        assert!(t.operation("cache", "Get").unwrap().hit_rate.is_some());
        assert!(t.databases["orders-db"][0] >= 20, "a slow database");
        assert!(!t.called_services().contains(&"frontend"));
    }

    #[test]
    fn inconsistent_topologies_are_refused_with_the_reason() {
        let refused = |yaml: &str| Topology::parse(yaml).unwrap_err().to_string();
        let base = "front_door: a\nentry: [{ operation: x, weight: 1 }]\n";
        assert!(refused(&format!("{base}services: {{ b: {{ x: {{}} }} }}")).contains("front door"));
        assert!(
            refused(&format!(
                "{base}services: {{ a: {{ x: {{ calls: [{{ to: b, operation: y }}] }} }}, b: {{ x: {{}} }} }}"
            ))
            .contains("b has no operation y")
        );
        assert!(
            refused(&format!(
                "{base}services: {{ a: {{ x: {{ calls: [{{ to: b, operation: x }}] }} }}, \
                 b: {{ x: {{ calls: [{{ to: a, operation: x }}] }} }} }}"
            ))
            .contains("calls itself")
        );
        assert!(
            refused(&format!(
                "{base}databases: {{ db: [1, 2] }}\n\
                 services: {{ a: {{ x: {{ calls: [{{ to: db, on_miss: true }}] }} }} }}"
            ))
            .contains("no cache lookup")
        );
        assert!(
            refused(&format!(
                "{base}services: {{ a: {{ x: {{ wrok_ms: [1, 2] }} }} }}"
            ))
            .contains("unknown field")
        );
    }
}
