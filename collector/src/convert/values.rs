//! OTLP `AnyValue`s rendered as the strings and JSON the store's columns hold.

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::json;

/// Appends a value's text form (see [`to_text`]) to `out` without an intermediate `String`
/// for the common cases.
pub fn append_text(out: &mut arrow::array::StringBuilder, value: Option<&AnyValue>) {
    use std::fmt::Write as _;
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => out.append_value(s),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
            out.append_value("");
        }
        Some(Value::BoolValue(b)) => out.append_value(if *b { "true" } else { "false" }),
        _ => out.append_value(to_text(value)),
    }
}

/// A value as it appears in an attribute map: scalars as text, bytes as base64, arrays and maps as JSON.
pub fn to_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let mut out = String::new();
            json::value(&mut out, Some(other));
            out
        }
    }
}

/// Attributes as (key, text) pairs, ready to append to a map column.
pub fn attributes_text(attrs: &[KeyValue]) -> Vec<(String, String)> {
    attrs
        .iter()
        .map(|kv| (kv.key.clone(), to_text(kv.value.as_ref())))
        .collect()
}

/// The string value of attribute `key`, if present and non-empty.
pub fn find_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(string_value)
}

/// The value of an attribute if it is a non-empty string.
pub fn string_value(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn v(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn scalars_render_as_text_and_composites_as_json() {
        assert_eq!(to_text(Some(&v(Value::IntValue(-3)))), "-3");
        assert_eq!(to_text(Some(&v(Value::BoolValue(true)))), "true");
        assert_eq!(to_text(Some(&v(Value::DoubleValue(0.25)))), "0.25");
        assert_eq!(to_text(Some(&v(Value::BytesValue(vec![1, 2, 3])))), "AQID");
        let arr = v(Value::ArrayValue(ArrayValue {
            values: vec![v(Value::IntValue(1)), v(Value::StringValue("a".into()))],
        }));
        assert_eq!(to_text(Some(&arr)), r#"[1,"a"]"#);
        let kv = v(Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(v(Value::BoolValue(false))),
                ..Default::default()
            }],
        }));
        assert_eq!(to_text(Some(&kv)), r#"{"k":false}"#);
        assert_eq!(to_text(None), "");
    }

    #[test]
    fn appended_text_is_the_same_as_to_text() {
        let values = [
            v(Value::StringValue("x".into())),
            v(Value::IntValue(i64::MIN)),
            v(Value::BoolValue(false)),
            v(Value::DoubleValue(1.5)),
            v(Value::BytesValue(vec![255])),
            AnyValue { value: None },
        ];
        let mut b = arrow::array::StringBuilder::new();
        for value in &values {
            append_text(&mut b, Some(value));
        }
        let built = b.finish();
        for (i, value) in values.iter().enumerate() {
            assert_eq!(built.value(i), to_text(Some(value)));
        }
    }
}
