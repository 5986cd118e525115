//! JSON text for nested OTLP structures (span events and links, exemplars, composite values),
//! written straight into a reusable buffer instead of through an intermediate document tree.

use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::ids::push_optional_id;

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c < ' ' => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push_str(escaped);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Appends a float as a JSON number, or as a string when it is not finite (JSON has no NaN).
pub fn float(out: &mut String, d: f64) {
    if d.is_finite() {
        let _ = write!(out, "{d:?}");
    } else {
        string(out, &d.to_string());
    }
}

/// Appends an OTLP value as JSON, keeping its type: bytes as base64 strings, arrays and
/// key-value lists as arrays and objects, no value as `null`.
pub fn value(out: &mut String, v: Option<&Value>) {
    match v {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => string(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => float(out, *d),
        Some(Value::BytesValue(b)) => {
            string(out, &base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::ArrayValue(a)) => {
            array(out, &a.values, |out, item| value(out, item.value.as_ref()))
        }
        Some(Value::KvlistValue(kv)) => attributes(out, &kv.values),
    }
}

/// Appends attributes as a JSON object, in their OTLP order.
pub fn attributes(out: &mut String, attrs: &[KeyValue]) {
    let mut obj = Object::begin(out);
    for kv in attrs {
        value(
            obj.key(&kv.key),
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
        );
    }
    obj.end();
}

/// A JSON object being written field by field.
pub struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`.
    pub fn begin(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes the key of the next field and returns the buffer for its value.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        string(self.out, key);
        self.out.push(':');
        self.out
    }

    /// A string field.
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        string(self.key(key), v);
        self
    }

    /// An unsigned integer field.
    pub fn uint(&mut self, key: &str, v: u64) -> &mut Self {
        let _ = write!(self.key(key), "{v}");
        self
    }

    /// An id field: lowercase hex, empty when absent or all zeros.
    pub fn id(&mut self, key: &str, bytes: &[u8]) -> &mut Self {
        let out = self.key(key);
        out.push('"');
        push_optional_id(out, bytes);
        out.push('"');
        self
    }

    /// An attributes field.
    pub fn attributes(&mut self, key: &str, attrs: &[KeyValue]) -> &mut Self {
        attributes(self.key(key), attrs);
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// Appends a JSON array of `items`, each written by `write`.
pub fn array<T>(out: &mut String, items: &[T], mut write: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn strings_are_escaped_so_json_parsers_read_them_back() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "line\nbreak\t",
            "\u{1}ctl",
            "ünï",
        ] {
            let mut out = String::new();
            string(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s, "{out}");
        }
    }

    #[test]
    fn values_keep_their_types() {
        let attrs = vec![
            kv("s", Value::StringValue("x".into())),
            kv("i", Value::IntValue(-7)),
            kv("b", Value::BoolValue(true)),
            kv("d", Value::DoubleValue(0.5)),
            kv("big", Value::DoubleValue(1e300)),
            kv("nan", Value::DoubleValue(f64::NAN)),
            kv("bytes", Value::BytesValue(vec![1, 2, 3])),
            kv(
                "arr",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::IntValue(1)),
                    }],
                }),
            ),
            kv(
                "kv",
                Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", Value::BoolValue(false))],
                }),
            ),
            KeyValue {
                key: "none".into(),
                value: None,
                ..Default::default()
            },
        ];
        let mut out = String::new();
        attributes(&mut out, &attrs);
        assert_eq!(
            out,
            r#"{"s":"x","i":-7,"b":true,"d":0.5,"big":1e300,"nan":"NaN","bytes":"AQID","arr":[1],"kv":{"k":false},"none":null}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["big"], 1e300);
    }

    #[test]
    fn objects_and_arrays_compose() {
        let mut out = String::new();
        array(&mut out, &[1u64, 2], |out, n| {
            let mut o = Object::begin(out);
            o.uint("n", *n).str("name", "e");
            o.end();
        });
        assert_eq!(out, r#"[{"n":1,"name":"e"},{"n":2,"name":"e"}]"#);
        let mut empty = String::new();
        array::<u8>(&mut empty, &[], |_, _| {});
        assert_eq!(empty, "[]");
    }
}
