//! Skips the Parquet row groups (and whole files) that cannot hold a row an attribute filter
//! asks for. Attribute map values carry a bloom filter per row group
//! ([`crate::parquet_layout`]); a conjunct `attributes['k'] = 'v'` (or an OR of such
//! equalities, over span and resource attributes) rules a row group out when its filter
//! holds none of the values.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::ParquetMetaDataReader;

/// Map columns whose values are bloom-filtered.
pub const FILTERED_MAPS: [&str; 2] = ["attributes", "resource_attributes"];

/// A value one of the filtered maps must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The map column.
    pub map: String,
    /// The value.
    pub value: String,
}

/// Per conjunct of `filters` made only of attribute equalities: the values, any one of
/// which a matching row holds.
pub fn probes(filters: &[Expr]) -> Vec<Vec<Probe>> {
    let mut out = Vec::new();
    for f in filters {
        conjuncts(f, &mut out);
    }
    out
}

fn conjuncts(expr: &Expr, out: &mut Vec<Vec<Probe>>) {
    if let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::And,
        right,
    }) = expr
    {
        conjuncts(left, out);
        conjuncts(right, out);
    } else if let Some(alternatives) = alternatives(expr) {
        out.push(alternatives);
    }
}

/// The values `expr` needs one of, if it is an equality or an OR of equalities.
fn alternatives(expr: &Expr) -> Option<Vec<Probe>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    match op {
        Operator::Or => {
            let mut all = alternatives(left)?;
            all.extend(alternatives(right)?);
            Some(all)
        }
        Operator::Eq => equality(left, right)
            .or_else(|| equality(right, left))
            .map(|p| vec![p]),
        _ => None,
    }
}

/// `map['key'] = 'value'` on a filtered map.
fn equality(access: &Expr, literal: &Expr) -> Option<Probe> {
    let Expr::ScalarFunction(f) = strip_casts(access) else {
        return None;
    };
    if f.name() != "get_field" {
        return None;
    }
    let Some(Expr::Column(map)) = f.args.first() else {
        return None;
    };
    let value = match strip_casts(literal) {
        Expr::Literal(ScalarValue::Utf8(Some(v)), _)
        | Expr::Literal(ScalarValue::Utf8View(Some(v)), _)
        | Expr::Literal(ScalarValue::LargeUtf8(Some(v)), _) => v.clone(),
        _ => return None,
    };
    FILTERED_MAPS.contains(&map.name.as_str()).then(|| Probe {
        map: map.name.clone(),
        value,
    })
}

fn strip_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(c) => strip_casts(&c.expr),
        Expr::TryCast(c) => strip_casts(&c.expr),
        other => other,
    }
}

/// Which row groups of the file at `path` may hold a row meeting every conjunct of `probes`,
/// by index. `None` when unsure: no probes, no bloom filter, or the file cannot be read
/// here (the scan reports that).
pub fn row_groups(path: &Path, probes: &[Vec<Probe>]) -> Option<Vec<bool>> {
    if probes.is_empty() {
        return None;
    }
    let file = File::open(path).ok()?;
    let meta = ParquetMetaDataReader::new().parse_and_finish(&file).ok()?;
    let columns = meta.file_metadata().schema_descr();
    let column_of = |map: &str| {
        let path = format!("{map}.entries.values");
        (0..columns.num_columns()).find(|i| columns.column(*i).path().string() == path)
    };
    // Only the blooms a probe needs are read, each once per row group.
    let wanted: Vec<Vec<(Option<usize>, &str)>> = probes
        .iter()
        .map(|alternatives| {
            alternatives
                .iter()
                .map(|p| (column_of(&p.map), p.value.as_str()))
                .collect()
        })
        .collect();
    let groups = meta.row_groups().iter().map(|group| {
        let mut blooms: HashMap<usize, Option<Sbbf>> = HashMap::new();
        let mut may_hold = |column: Option<usize>, value: &str| {
            let Some(c) = column else {
                return true;
            };
            let bloom = blooms.entry(c).or_insert_with(|| {
                Sbbf::read_from_column_chunk(group.column(c), &file)
                    .ok()
                    .flatten()
            });
            bloom.as_ref().is_none_or(|b| b.check(value))
        };
        wanted.iter().all(|alternatives| {
            alternatives
                .iter()
                .any(|(column, value)| may_hold(*column, value))
        })
    });
    Some(groups.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::functions::core::expr_fn::get_field;
    use datafusion::prelude::{col, lit};

    fn attr(map: &str, key: &str, value: &str) -> Expr {
        get_field(col(map), key).eq(lit(value))
    }

    #[test]
    fn equalities_and_their_ors_become_probes_and_anything_else_is_ignored() {
        let either = attr("attributes", "k", "v").or(attr("resource_attributes", "k", "v"));
        let found = probes(&[
            either.and(attr("attributes", "tier", "gold")),
            col("service_name").eq(lit("api")),
            attr("attributes", "a", "x").or(col("span_name").eq(lit("y"))),
            attr("scope_attributes", "a", "x"),
        ]);
        let names: Vec<Vec<(&str, &str)>> = found
            .iter()
            .map(|c| {
                c.iter()
                    .map(|p| (p.map.as_str(), p.value.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                vec![("attributes", "v"), ("resource_attributes", "v")],
                vec![("attributes", "gold")]
            ]
        );
    }
}
