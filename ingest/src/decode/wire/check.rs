//! The structural check of a whole request: accepts exactly what prost accepts (known fields in
//! their wire types, valid UTF-8, packed or unpacked repeated scalars, unknown fields of any
//! wire type skipped, the same recursion limit), so the views can read checked bytes without
//! error paths.

use super::reader::{string_kv, wt, Reader};
use super::schema::{Kind, Schema, KEY_VALUE, REQUEST};
use super::WireError;

/// prost's recursion limit: nested messages (and groups) a request may hold.
pub(crate) const RECURSION_LIMIT: u32 = 100;

/// What the check found in a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// The views read it exactly as prost would parse it.
    Clean,
    /// A singular message field occurs twice in one message: prost merges the two, which the
    /// views do not, so the request must go through prost.
    NeedsMerge,
}

/// Checks a serialized `ExportMetricsServiceRequest`.
pub(crate) fn check(buf: &[u8]) -> Result<Checked, WireError> {
    let mut merge = false;
    message(buf, &REQUEST, RECURSION_LIMIT, &mut merge)?;
    Ok(if merge {
        Checked::NeedsMerge
    } else {
        Checked::Clean
    })
}

/// Checks the fields of one message; `depth` is the recursion budget of its fields (prost's
/// `DecodeContext`: entering a nested message or skipping an unknown field needs it non-zero).
fn message(buf: &[u8], schema: &Schema, depth: u32, merge: &mut bool) -> Result<(), WireError> {
    let mut r = Reader::new(buf);
    // Singular message fields seen (all OTLP field numbers are below 64).
    let mut seen = 0u64;
    while !r.is_empty() {
        let (tag, wire) = r.key()?;
        match (schema.kind(tag), wire) {
            (Kind::Unknown, _) => r.skip(tag, wire, depth)?,
            (Kind::Varint | Kind::RepVarint, wt::VARINT) => {
                r.varint()?;
            }
            (Kind::Fixed64 | Kind::RepFixed64, wt::I64) => {
                r.fixed64()?;
            }
            (Kind::Str, wt::LEN) => {
                let s = r.len_delimited()?;
                // Most strings are ASCII, checked inline.
                if !s.is_ascii() && std::str::from_utf8(s).is_err() {
                    return Err(WireError::InvalidUtf8);
                }
            }
            (Kind::Bytes, wt::LEN) => {
                r.len_delimited()?;
            }
            (Kind::RepVarint, wt::LEN) => {
                let mut packed = Reader::new(r.len_delimited()?);
                while !packed.is_empty() {
                    packed.varint()?;
                }
            }
            (Kind::RepFixed64, wt::LEN) => {
                if r.len_delimited()?.len() % 8 != 0 {
                    return Err(WireError::Truncated);
                }
            }
            (Kind::Msgs(inner), wt::LEN) => {
                if depth == 0 {
                    return Err(WireError::TooDeep);
                }
                let body = r.len_delimited()?;
                if !(std::ptr::eq(inner, &KEY_VALUE) && simple_string_kv(body, depth - 1)) {
                    message(body, inner, depth - 1, merge)?;
                }
            }
            (Kind::Msg(inner), wt::LEN) => {
                if depth == 0 {
                    return Err(WireError::TooDeep);
                }
                let bit = 1u64 << (tag % 64);
                if seen & bit != 0 {
                    *merge = true;
                }
                seen |= bit;
                message(r.len_delimited()?, inner, depth - 1, merge)?;
            }
            _ => return Err(WireError::WrongWireType { field: tag }),
        }
    }
    Ok(())
}

/// Whether `buf` is the common `KeyValue { key, value: AnyValue { string_value } }` with
/// ASCII strings, laid out in field order: valid, no need for the general walk. `depth` is the
/// recursion budget of the `KeyValue`'s fields (entering the AnyValue needs some). `false`
/// only means "walk it in full".
fn simple_string_kv(buf: &[u8], depth: u32) -> bool {
    depth > 0 && string_kv(buf).is_some_and(|(key, value)| key.is_ascii() && value.is_ascii())
}
