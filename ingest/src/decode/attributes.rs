//! Attribute rendering: OTLP `AnyValue` → the Utf8 values of the `resource` / `attributes` maps.
//!
//! Rendering: strings as is; bools `true` / `false`; ints in decimal; doubles with Rust's `{}`
//! (`1.5`, `3`, `NaN`, `inf`); bytes as standard base64 with padding; arrays and kvlists as
//! compact JSON whose elements keep their JSON type (strings quoted, numbers bare, bytes as
//! base64 strings, non-finite doubles as the strings `"NaN"` / `"inf"` / `"-inf"`, empty values
//! as `null`). An attribute with no value is a null map value.
//!
//! [`RenderedAttrs`] validates, renders and hashes one attribute list into a reusable scratch
//! buffer, so appending it to the map builders afterwards allocates nothing per datapoint.

use std::fmt::{self, Write};

use arrow::array::{MapBuilder, StringArray, StringBuilder};

use super::reason::Reason;
use super::series_id::pair_hash;
use super::view::{Attr, Nested, Val};
use super::DecodeLimits;

/// Where an attribute's rendered value lives.
#[derive(Debug, Clone, Copy)]
enum Slot<'r> {
    /// The attribute's own string value.
    Str(&'r str),
    /// No value: a null map value.
    Null,
    /// `buf[start..end]`.
    Rendered(usize, usize),
}

/// One validated, rendered and hashed attribute list, reusing its buffers across lists.
#[derive(Debug, Default)]
pub(crate) struct RenderedAttrs<'r> {
    /// Keys and where their values are.
    entries: Vec<(&'r str, Slot<'r>)>,
    buf: String,
    hash: u64,
}

impl<'r> RenderedAttrs<'r> {
    /// Validates the `len` attributes `attrs` against `limits`, renders non-string values and
    /// sums their pair hashes under `seed`. On error the list is left empty.
    pub(crate) fn load<N: Nested<'r>>(
        &mut self,
        attrs: impl Iterator<Item = Attr<'r, N>>,
        len: usize,
        seed: u64,
        limits: &DecodeLimits,
    ) -> Result<(), Reason> {
        self.entries.clear();
        self.buf.clear();
        self.hash = 0;
        if len > limits.max_attributes {
            return Err(Reason::TooManyAttributes);
        }
        let max = limits.max_attribute_value_bytes;
        let mut hash = 0u64;
        for (key, value) in attrs {
            if key.len() > max {
                return self.fail(Reason::AttributeTooLarge);
            }
            let (slot, value) = match value {
                None => (Slot::Null, None),
                Some(Val::Str(s)) => {
                    if s.len() > max {
                        return self.fail(Reason::AttributeTooLarge);
                    }
                    (Slot::Str(s), Some(s))
                }
                Some(v) => {
                    let start = self.buf.len();
                    // Writing to a String cannot fail, so an error means the value outgrew
                    // `max`: rendering stops there instead of building a huge string.
                    let mut capped = Capped {
                        out: &mut self.buf,
                        left: max,
                    };
                    if render(&mut capped, v).is_err() {
                        return self.fail(Reason::AttributeTooLarge);
                    }
                    let end = self.buf.len();
                    (Slot::Rendered(start, end), self.buf.get(start..end))
                }
            };
            hash = hash.wrapping_add(pair_hash(seed, key, value));
            self.entries.push((key, slot));
        }
        self.hash = hash;
        Ok(())
    }

    fn fail(&mut self, reason: Reason) -> Result<(), Reason> {
        self.buf.clear();
        self.entries.clear();
        Err(reason)
    }

    /// Bytes of keys and rendered values (what the list adds to a map column).
    pub(crate) fn bytes(&self) -> usize {
        let own: usize = self
            .entries
            .iter()
            .map(|(k, slot)| {
                k.len()
                    + match slot {
                        Slot::Str(s) => s.len(),
                        _ => 0,
                    }
            })
            .sum();
        own + self.buf.len()
    }

    /// Number of entries.
    pub(crate) fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Sum of the pair hashes (step 3 of the series-id recipe).
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of attributes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Rendered value of the first attribute named `key`.
    pub(crate) fn find(&self, key: &str) -> Option<&str> {
        let (_, slot) = self.entries.iter().find(|(k, _)| *k == key)?;
        self.value(*slot)
    }

    fn value(&self, slot: Slot<'r>) -> Option<&str> {
        match slot {
            Slot::Null => None,
            Slot::Str(s) => Some(s),
            Slot::Rendered(s, e) => self.buf.get(s..e),
        }
    }

    /// The list as `(keys, values)` arrays, for appending the same list to many rows.
    pub(crate) fn to_arrays(&self) -> (StringArray, StringArray) {
        let bytes = self.bytes();
        let mut keys = StringBuilder::with_capacity(self.entries.len(), bytes);
        let mut values = StringBuilder::with_capacity(self.entries.len(), bytes);
        for (k, slot) in &self.entries {
            keys.append_value(k);
            values.append_option(self.value(*slot));
        }
        (keys.finish(), values.finish())
    }

    /// Appends the list as one map entry.
    pub(crate) fn append_to(
        &self,
        map: &mut MapBuilder<StringBuilder, StringBuilder>,
    ) -> Result<(), arrow::error::ArrowError> {
        let (keys, values) = map.entries();
        for (k, slot) in &self.entries {
            keys.append_value(k);
            values.append_option(self.value(*slot));
        }
        map.append(true)
    }
}

/// A writer that fails once more than `left` bytes would be written through it.
struct Capped<'a, W: Write> {
    out: &'a mut W,
    left: usize,
}

impl<W: Write> Write for Capped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.left = self.left.checked_sub(s.len()).ok_or(fmt::Error)?;
        self.out.write_str(s)
    }
}

/// A writer that only counts bytes.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Length of the rendering of `v`, or `None` when it is longer than `max` (counting stops
/// there).
pub(crate) fn rendered_len<'a, N: Nested<'a>>(v: Val<'a, N>, max: usize) -> Option<usize> {
    let mut count = Count(0);
    let mut capped = Capped {
        out: &mut count,
        left: max,
    };
    render(&mut capped, v).ok()?;
    Some(count.0)
}

/// Renders a top-level attribute value (see the module doc).
pub(crate) fn render<'a, W: Write, N: Nested<'a>>(out: &mut W, v: Val<'a, N>) -> fmt::Result {
    match v {
        Val::Str(s) => out.write_str(s),
        Val::Bool(b) => out.write_str(if b { "true" } else { "false" }),
        Val::Int(i) => write!(out, "{i}"),
        Val::Double(d) => write!(out, "{d}"),
        Val::Bytes(b) => base64(out, b),
        // Only meaningful against a profiles dictionary; keep the index visible.
        Val::Strindex(i) => write!(out, "{i}"),
        Val::Array(_) | Val::Kvlist(_) => json(out, Some(v)),
    }
}

/// Renders a value as JSON.
fn json<'a, W: Write, N: Nested<'a>>(out: &mut W, v: Option<Val<'a, N>>) -> fmt::Result {
    match v {
        None => out.write_str("null"),
        Some(Val::Str(s)) => json_str(out, s),
        Some(v @ (Val::Bool(_) | Val::Int(_) | Val::Strindex(_))) => render(out, v),
        Some(Val::Double(d)) if d.is_finite() => write!(out, "{d}"),
        Some(Val::Double(d)) => write!(out, "\"{d}\""),
        Some(Val::Bytes(b)) => {
            out.write_char('"')?;
            base64(out, b)?;
            out.write_char('"')
        }
        Some(Val::Array(a)) => {
            out.write_char('[')?;
            for (i, item) in a.array().enumerate() {
                if i > 0 {
                    out.write_char(',')?;
                }
                json(out, item)?;
            }
            out.write_char(']')
        }
        Some(Val::Kvlist(l)) => {
            out.write_char('{')?;
            for (i, (key, value)) in l.kvlist().enumerate() {
                if i > 0 {
                    out.write_char(',')?;
                }
                json_str(out, key)?;
                out.write_char(':')?;
                json(out, value)?;
            }
            out.write_char('}')
        }
    }
}

/// Writes `s` as a JSON string literal.
fn json_str<W: Write>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[from..i])?;
        if esc.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(esc)?;
        }
        from = i + 1;
    }
    out.write_str(&s[from..])?;
    out.write_char('"')
}

/// Writes standard base64 (RFC 4648, with padding).
fn base64<W: Write>(out: &mut W, data: &[u8]) -> fmt::Result {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |n: u32| char::from(ALPHABET[(n & 63) as usize]);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.write_char(sym(n >> shift))?;
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.write_char(sym(n >> 18))?;
            out.write_char(sym(n >> 12))?;
            out.write_str("==")
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.write_char(sym(n >> 18))?;
            out.write_char(sym(n >> 12))?;
            out.write_char(sym(n >> 6))?;
            out.write_char('=')
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::prost_view::{attrs as view, val};
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        any_value::Value, AnyValue, ArrayValue, KeyValue, KeyValueList,
    };

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(any(v)),
            key_strindex: 0,
        }
    }

    fn len_of(v: Value, max: usize) -> Option<usize> {
        let v = any(v);
        rendered_len(val(&v).expect("a value"), max)
    }

    fn rendered(v: Value) -> String {
        let mut s = String::new();
        let v = any(v);
        render(&mut s, val(&v).expect("a value")).expect("render");
        s
    }

    /// Every scalar AnyValue kind renders as documented.
    #[test]
    fn scalars() {
        assert_eq!(rendered(Value::StringValue("a \"b\"".into())), "a \"b\"");
        assert_eq!(rendered(Value::BoolValue(true)), "true");
        assert_eq!(rendered(Value::BoolValue(false)), "false");
        assert_eq!(rendered(Value::IntValue(-42)), "-42");
        assert_eq!(rendered(Value::IntValue(i64::MAX)), "9223372036854775807");
        assert_eq!(rendered(Value::DoubleValue(1.5)), "1.5");
        assert_eq!(rendered(Value::DoubleValue(3.0)), "3");
        assert_eq!(rendered(Value::DoubleValue(f64::NAN)), "NaN");
        assert_eq!(rendered(Value::DoubleValue(f64::NEG_INFINITY)), "-inf");
        assert_eq!(rendered(Value::BytesValue(vec![])), "");
        assert_eq!(rendered(Value::BytesValue(b"f".to_vec())), "Zg==");
        assert_eq!(rendered(Value::BytesValue(b"fo".to_vec())), "Zm8=");
        assert_eq!(rendered(Value::BytesValue(b"foo".to_vec())), "Zm9v");
        assert_eq!(
            rendered(Value::BytesValue(vec![0xfb, 0xff, 0xfe, 0x00])),
            "+//+AA=="
        );
    }

    /// Arrays and kvlists render as compact JSON with nested values in their JSON types.
    #[test]
    fn nested_json() {
        let arr = Value::ArrayValue(ArrayValue {
            values: vec![
                any(Value::StringValue("x\"y\\\n\u{1}".into())),
                any(Value::IntValue(7)),
                any(Value::DoubleValue(2.5)),
                any(Value::DoubleValue(f64::INFINITY)),
                any(Value::BoolValue(false)),
                any(Value::BytesValue(b"hi".to_vec())),
                AnyValue { value: None },
                any(Value::ArrayValue(ArrayValue { values: vec![] })),
                any(Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("k", Value::IntValue(1)),
                        kv("é", Value::StringValue("v".into())),
                    ],
                })),
            ],
        });
        let s = rendered(arr);
        assert_eq!(
            s,
            r#"["x\"y\\\n\u0001",7,2.5,"inf",false,"aGk=",null,[],{"k":1,"é":"v"}]"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        assert_eq!(parsed[1], serde_json::json!(7));
        assert_eq!(parsed[8]["é"], serde_json::json!("v"));
        let empty = Value::KvlistValue(KeyValueList { values: vec![] });
        assert_eq!(rendered(empty), "{}");
    }

    /// Loading checks count and sizes (keys, string and rendered values) and renders values.
    #[test]
    fn load_validates_and_renders() {
        let limits = DecodeLimits {
            max_attributes: 3,
            max_attribute_value_bytes: 4,
            max_decoded_bytes: usize::MAX,
            max_past: None,
            max_future: None,
        };
        let attrs = vec![
            kv("a", Value::StringValue("xy".into())),
            kv("b", Value::IntValue(1234)),
            KeyValue {
                key: "c".into(),
                value: None,
                key_strindex: 0,
            },
        ];
        let mut r = RenderedAttrs::default();
        r.load(view(&attrs), attrs.len(), 1, &limits)
            .expect("valid");
        assert_eq!(r.len(), 3);
        assert_eq!(r.find("a"), Some("xy"));
        assert_eq!(r.find("b"), Some("1234"));
        assert_eq!(r.find("c"), None);
        assert_ne!(r.hash(), 0);

        let too_many = vec![attrs[0].clone(); 4];
        assert_eq!(
            r.load(view(&too_many), too_many.len(), 1, &limits),
            Err(Reason::TooManyAttributes)
        );
        let long_str = vec![kv("a", Value::StringValue("12345".into()))];
        assert_eq!(
            r.load(view(&long_str), long_str.len(), 1, &limits),
            Err(Reason::AttributeTooLarge)
        );
        let long_int = vec![kv("a", Value::IntValue(12345))];
        assert_eq!(
            r.load(view(&long_int), long_int.len(), 1, &limits),
            Err(Reason::AttributeTooLarge)
        );
        let long_key = vec![kv("abcde", Value::BoolValue(true))];
        assert_eq!(
            r.load(view(&long_key), long_key.len(), 1, &limits),
            Err(Reason::AttributeTooLarge)
        );
        assert_eq!(r.len(), 0);
    }

    /// A value rendering past the limit is refused without being built: rendering stops at
    /// the limit (the scratch buffer never holds more), and `rendered_len` stops counting.
    #[test]
    fn oversized_rendering_stops_early() {
        let limits = DecodeLimits {
            max_attributes: 8,
            max_attribute_value_bytes: 1000,
            max_decoded_bytes: usize::MAX,
            max_past: None,
            max_future: None,
        };
        // f64::MAX renders as 309 digits; 10_000 of them would be ~3 MB.
        let huge = Value::ArrayValue(ArrayValue {
            values: vec![any(Value::DoubleValue(f64::MAX)); 10_000],
        });
        let attrs = vec![kv("a", huge.clone())];
        let mut r = RenderedAttrs::default();
        assert_eq!(
            r.load(view(&attrs), attrs.len(), 1, &limits),
            Err(Reason::AttributeTooLarge)
        );
        assert!(r.buf.capacity() <= 4096, "{}", r.buf.capacity());
        assert_eq!(len_of(huge, 1000), None);
        assert_eq!(len_of(Value::DoubleValue(f64::MAX), 1000), Some(309));
        assert_eq!(len_of(Value::IntValue(-12), 2), None);
        assert_eq!(len_of(Value::IntValue(-12), 3), Some(3));
    }
}
