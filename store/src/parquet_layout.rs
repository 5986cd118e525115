//! How each column is laid out in Parquet: compression, which columns get dictionaries and
//! which delta encodings, sorting metadata and bloom filters (ids, attribute values).
//!
//! Chosen on measured spans (`vigil bench ingest --keep-data`): timestamps and durations are
//! near-sorted integers, so delta-binary-packing beats dictionaries (17 → 9 bytes/span); span
//! ids are unique, so a dictionary only costs CPU before it overflows, and delta-length keeps
//! their lengths apart from the hex text zstd compresses (20 → 16 bytes/span). Other strings
//! keep the default dictionary with plain fallback: delta-length fallback there compressed a
//! little better but held much more memory while writing. Min/max statistics are skipped
//! where they cannot prune (ids, free text, JSON, map entries), which saved comparing every
//! value at flush time.

use arrow::datatypes::{DataType, Schema};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::error::Result;
use crate::schema::{SERVICE_NAME, TIME};

/// String columns whose values are (nearly) all distinct: no dictionary.
const UNIQUE_STRINGS: [&str; 2] = ["span_id", "parent_span_id"];

/// String columns whose min/max cannot prune anything (ids, free text, JSON): no statistics,
/// which saves comparing every value at write time.
const NO_STATISTICS: [&str; 7] = [
    "span_id",
    "parent_span_id",
    "status_message",
    "events",
    "links",
    "body",
    "exemplars",
];

/// Columns with a bloom filter, for point lookups by id.
const BLOOM_FILTERED: [&str; 2] = ["trace_id", "correlation_id"];

/// Distinct resource attribute values a row group's bloom filter is sized for.
const RESOURCE_VALUES: u64 = 4096;

/// False-positive rate of the attribute value bloom filters. Every false positive costs a
/// search a whole row group read: at Parquet's default 5 % a search for a value no span has
/// still read one row group in twenty.
const ATTRIBUTE_FPP: f64 = 0.01;

/// zstd level: 3 is zstd's own default, a balance of ratio and flush CPU.
const ZSTD_LEVEL: i32 = 3;

/// Applies the layout for a table of `schema` to `builder`.
pub fn apply(
    mut builder: WriterPropertiesBuilder,
    schema: &Schema,
    row_group_rows: usize,
) -> Result<WriterPropertiesBuilder> {
    builder = builder
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_max_row_group_row_count(Some(row_group_rows.max(1024)))
        .set_sorting_columns(Some(vec![
            ascending(schema.index_of(SERVICE_NAME)?),
            ascending(schema.index_of(TIME)?),
        ]));
    for name in BLOOM_FILTERED {
        if schema.field_with_name(name).is_ok() {
            builder = builder.set_column_bloom_filter_enabled(ColumnPath::from(name), true);
        }
    }
    for field in schema.fields() {
        let name = field.name().as_str();
        if NO_STATISTICS.contains(&name) {
            builder = builder
                .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
        }
        builder = match field.data_type() {
            DataType::Timestamp(..) | DataType::Int64 => {
                let path = ColumnPath::from(name);
                builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
            }
            DataType::Utf8 if UNIQUE_STRINGS.contains(&name) => {
                let path = ColumnPath::from(name);
                builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_LENGTH_BYTE_ARRAY)
            }
            // Attribute maps: nobody prunes on a key or value range, but searches for a
            // value do, by bloom filter ([`crate::attribute_pruning`]).
            DataType::Map(..) => {
                let path = |leaf: &str| {
                    ColumnPath::from(vec![name.to_string(), "entries".into(), leaf.into()])
                };
                builder = builder
                    .set_column_statistics_enabled(path("keys"), EnabledStatistics::None)
                    .set_column_statistics_enabled(path("values"), EnabledStatistics::None);
                match name {
                    // Unique values (order ids, user ids) beside repeated ones: sized for
                    // twice as many distinct values as rows.
                    "attributes" => builder
                        .set_column_bloom_filter_enabled(path("values"), true)
                        .set_column_bloom_filter_fpp(path("values"), ATTRIBUTE_FPP)
                        .set_column_bloom_filter_max_ndv(
                            path("values"),
                            2 * row_group_rows.max(1024) as u64,
                        ),
                    // A few resources (services, hosts, versions) per row group.
                    "resource_attributes" => builder
                        .set_column_bloom_filter_enabled(path("values"), true)
                        .set_column_bloom_filter_fpp(path("values"), ATTRIBUTE_FPP)
                        .set_column_bloom_filter_max_ndv(path("values"), RESOURCE_VALUES),
                    _ => builder,
                }
            }
            _ => builder,
        };
    }
    Ok(builder)
}

fn ascending(column_idx: usize) -> SortingColumn {
    SortingColumn {
        column_idx: column_idx as i32,
        descending: false,
        nulls_first: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signal;
    use parquet::file::properties::WriterProperties;

    #[test]
    fn spans_get_delta_times_plain_ids_and_no_useless_statistics() {
        let schema = crate::schema::schema(Signal::Spans);
        let props = apply(WriterProperties::builder(), &schema, 4096)
            .unwrap()
            .build();
        let col = |p: &str| ColumnPath::from(p.split('.').map(String::from).collect::<Vec<_>>());
        for time in ["time", "end_time", "duration_ns"] {
            assert!(!props.dictionary_enabled(&col(time)), "{time}");
            assert_eq!(
                props.encoding(&col(time)),
                Some(Encoding::DELTA_BINARY_PACKED)
            );
        }
        assert!(!props.dictionary_enabled(&col("span_id")));
        assert_eq!(
            props.encoding(&col("span_id")),
            Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)
        );
        assert!(props.dictionary_enabled(&col("service_name")));
        assert!(props.dictionary_enabled(&col("attributes.entries.values")));
        assert_eq!(
            props.statistics_enabled(&col("attributes.entries.values")),
            EnabledStatistics::None
        );
        assert_eq!(
            props.statistics_enabled(&col("events")),
            EnabledStatistics::None
        );
        assert_ne!(
            props.statistics_enabled(&col("time")),
            EnabledStatistics::None
        );
        assert!(props.bloom_filter_properties(&col("trace_id")).is_some());
        assert!(props.bloom_filter_properties(&col("span_id")).is_none());
        for map in ["attributes", "resource_attributes"] {
            let values = col(&format!("{map}.entries.values"));
            assert!(props.bloom_filter_properties(&values).is_some(), "{map}");
        }
        assert!(
            props
                .bloom_filter_properties(&col("scope_attributes.entries.values"))
                .is_none()
        );
        assert_eq!(props.max_row_group_row_count(), Some(4096));
    }
}
