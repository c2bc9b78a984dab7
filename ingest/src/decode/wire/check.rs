//! The structural check of a whole request: accepts exactly what prost accepts (known fields in
//! their wire types, valid UTF-8, packed or unpacked repeated scalars, unknown fields of any
//! wire type skipped, the same recursion limit), so the views can read checked bytes without
//! error paths. The same walk counts the request's [`Capacity`] (what [`Capacity::of`] counts
//! over the views), so the bytes are not walked a second time to size the builders.

use crate::decode::capacity::{resource_attr_bytes, Capacity};

use super::reader::{string_kv, wt, Reader};
use super::schema::{Count, Kind, Role, Schema, KEY_VALUE, REQUEST};
use super::views::{key_value, raw_attr_bytes};
use super::WireError;

/// prost's recursion limit: nested messages (and groups) a request may hold.
pub(crate) const RECURSION_LIMIT: u32 = 100;

/// What the check found in a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// The views read it exactly as prost would parse it; its counting pass, with the body's
    /// bytes standing for the parsed message.
    Clean(Capacity),
    /// A singular message field occurs twice in one message: prost merges the two, which the
    /// views do not, so the request must go through prost.
    NeedsMerge,
}

/// Checks a serialized `ExportMetricsServiceRequest` and counts it; `max_value` is the
/// attribute value limit (bounds resource rendering, as in [`Capacity::of`]).
pub(crate) fn check(buf: &[u8], max_value: usize) -> Result<Checked, WireError> {
    let mut walk = Walk {
        merge: false,
        max_value,
        cap: Capacity::default(),
    };
    message(buf, &REQUEST, RECURSION_LIMIT, &mut walk)?;
    Ok(if walk.merge {
        Checked::NeedsMerge
    } else {
        walk.cap.message_bytes = buf.len();
        Checked::Clean(walk.cap)
    })
}

/// State of the whole walk.
struct Walk {
    /// Whether a singular message field repeats somewhere.
    merge: bool,
    /// The attribute value limit.
    max_value: usize,
    /// What was counted so far.
    cap: Capacity,
}

/// What a message counted for its parent: a `Resource`'s attribute entries and exact bytes,
/// a `Scope`'s name bytes, a `Buckets`' counts.
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    items: usize,
    bytes: usize,
}

/// Counting state of one message. Fields come in any order, so what a message's rows share
/// (a metric's name, a scope's name, a resource's attributes) is kept until its end.
#[derive(Default)]
struct Frame {
    /// What this message tells its parent.
    sizes: Sizes,
    /// A `Metric`'s name bytes.
    name: usize,
    /// A `Metric`'s unit bytes.
    unit: usize,
    /// A `ScopeMetrics`' scope name bytes.
    scope: usize,
    /// A `ResourceMetrics`' resource attributes.
    resource: Sizes,
    /// A `Metric`'s count before its first data variant: a later variant replaces it.
    before_data: Option<Capacity>,
}

impl Frame {
    /// Counts a valid scalar or string field of `n` items (bytes, for a string).
    #[inline(always)]
    fn field(&mut self, count: Count, n: usize, cap: &mut Capacity) {
        match count {
            Count::MetricName => self.name = n,
            Count::MetricUnit => self.unit = n,
            Count::ScopeName => self.sizes.bytes = n,
            Count::Bounds => cap.bounds += n,
            Count::BucketCounts => cap.bucket_counts += n,
            Count::ExpCounts => self.sizes.items += n,
            _ => {}
        }
    }

    /// Counts a valid nested message that counted `child`.
    #[inline(always)]
    fn child(&mut self, count: Count, child: Sizes, cap: &mut Capacity) {
        match count {
            Count::Scope => self.scope = child.bytes,
            Count::Resource => self.resource = child,
            Count::Positive => cap.exp_positive += child.items,
            Count::Negative => cap.exp_negative += child.items,
            Count::Quantile => cap.quantiles += 1,
            _ => {}
        }
    }

    /// Before a `Metric.data` variant: only the last one counts (the oneof keeps it).
    fn data(&mut self, cap: &mut Capacity) {
        match self.before_data {
            Some(before) => *cap = before,
            None => self.before_data = Some(*cap),
        }
    }

    /// At the end of a message of `role` that began at `rows` rows: what its rows share.
    #[inline(always)]
    fn end(&self, role: Role, rows: usize, cap: &mut Capacity) {
        let n = cap.rows - rows;
        match role {
            Role::Other => {}
            Role::Point => cap.rows += 1,
            Role::Metric => cap.text_bytes += n * (self.name + self.unit),
            Role::ScopeMetrics => cap.text_bytes += n * self.scope,
            Role::ResourceMetrics => {
                cap.resource_entries += n * self.resource.items;
                cap.resource_bytes += n * self.resource.bytes;
                // `service` repeats a resource value; bound it by the resource bytes.
                cap.text_bytes += n * self.resource.bytes.min(64);
            }
        }
    }
}

/// Checks and counts the fields of one message; `depth` is the recursion budget of its fields
/// (prost's `DecodeContext`: entering a nested message or skipping an unknown field needs it
/// non-zero).
fn message(buf: &[u8], schema: &Schema, depth: u32, walk: &mut Walk) -> Result<Sizes, WireError> {
    let mut r = Reader::new(buf);
    // Singular message fields seen (all OTLP field numbers are below 64).
    let mut seen = 0u64;
    let rows = walk.cap.rows;
    let mut frame = Frame::default();
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        let (kind, count) = schema.field(tag);
        match (kind, wire) {
            (Kind::Unknown, _) => r.skip(tag, wire, depth)?,
            (Kind::Varint | Kind::RepVarint, wt::VARINT) => {
                r.varint()?;
                frame.field(count, 1, &mut walk.cap);
            }
            (Kind::Fixed64 | Kind::RepFixed64, wt::I64) => {
                r.fixed64()?;
                frame.field(count, 1, &mut walk.cap);
            }
            (Kind::Str, wt::LEN) => {
                let s = r.len_delimited()?;
                // Most strings are ASCII, checked inline.
                if !s.is_ascii() && std::str::from_utf8(s).is_err() {
                    return Err(WireError::InvalidUtf8);
                }
                frame.field(count, s.len(), &mut walk.cap);
            }
            (Kind::Bytes, wt::LEN) => {
                r.len_delimited()?;
            }
            (Kind::RepVarint, wt::LEN) => {
                let mut packed = Reader::new(r.len_delimited()?);
                let mut n = 0;
                while !packed.is_empty() {
                    packed.varint()?;
                    n += 1;
                }
                frame.field(count, n, &mut walk.cap);
            }
            (Kind::RepFixed64, wt::LEN) => {
                let len = r.len_delimited()?.len();
                if len % 8 != 0 {
                    return Err(WireError::Truncated);
                }
                frame.field(count, len / 8, &mut walk.cap);
            }
            (Kind::Msgs(inner), wt::LEN) => {
                if depth == 0 {
                    return Err(WireError::TooDeep);
                }
                let body = r.len_delimited()?;
                if std::ptr::eq(inner, &KEY_VALUE) {
                    attribute(body, depth - 1, count, walk, &mut frame)?;
                } else {
                    let child = message(body, inner, depth - 1, walk)?;
                    frame.child(count, child, &mut walk.cap);
                }
            }
            (Kind::Msg(inner), wt::LEN) => {
                if depth == 0 {
                    return Err(WireError::TooDeep);
                }
                let bit = 1u64 << (tag % 64);
                if seen & bit != 0 {
                    walk.merge = true;
                }
                seen |= bit;
                if count == Count::Data {
                    frame.data(&mut walk.cap);
                }
                let child = message(r.len_delimited()?, inner, depth - 1, walk)?;
                frame.child(count, child, &mut walk.cap);
            }
            _ => return Err(WireError::WrongWireType { field: tag }),
        }
    }
    frame.end(schema.role, rows, &mut walk.cap);
    Ok(frame.sizes)
}

/// Checks a `KeyValue` (`depth` is the recursion budget of its fields) and counts it as
/// `count` says: a datapoint attribute (non-string values guessed, as
/// [`View::attr_bytes`](crate::decode::view::View::attr_bytes)) or a resource attribute
/// (exact).
#[inline]
fn attribute(
    body: &[u8],
    depth: u32,
    count: Count,
    walk: &mut Walk,
    frame: &mut Frame,
) -> Result<(), WireError> {
    let simple = simple_string_kv(body, depth);
    if simple.is_none() {
        message(body, &KEY_VALUE, depth, walk)?;
    }
    match count {
        Count::PointAttr => {
            walk.cap.attr_entries += 1;
            walk.cap.attr_bytes += simple.unwrap_or_else(|| raw_attr_bytes(body));
        }
        Count::ResourceAttr => {
            frame.sizes.items += 1;
            frame.sizes.bytes +=
                simple.unwrap_or_else(|| resource_attr_bytes(key_value(body), walk.max_value));
        }
        _ => {}
    }
    Ok(())
}

/// Key plus value bytes of `buf` when it is the common `KeyValue { key, value: AnyValue {
/// string_value } }` with ASCII strings, laid out in field order: valid, no need for the
/// general walk. `depth` is the recursion budget of the `KeyValue`'s fields (entering the
/// AnyValue needs some). `None` only means "walk it in full".
#[inline]
fn simple_string_kv(buf: &[u8], depth: u32) -> Option<usize> {
    if depth == 0 {
        return None;
    }
    string_kv(buf)
        .filter(|(key, value)| key.is_ascii() && value.is_ascii())
        .map(|(key, value)| key.len() + value.len())
}

#[cfg(test)]
mod tests;
