//! Zero-copy reader of OTLP/HTTP protobuf bodies: a structural [`check`](check::check) that
//! accepts exactly what prost accepts, then borrowed [views](views) over the checked bytes
//! that the decoder reads like the prost message tree, without building it.

mod check;
mod reader;
mod schema;
mod views;

pub(crate) use check::{check, Checked, RECURSION_LIMIT};
pub(crate) use views::{resources, Wire};

/// Why a protobuf body is not a valid `ExportMetricsServiceRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The body ends inside a field (or a length points past it).
    #[error("truncated message")]
    Truncated,
    /// A varint longer than 10 bytes or over 64 bits.
    #[error("invalid varint")]
    InvalidVarint,
    /// A field key over 32 bits or with field number 0.
    #[error("invalid field key")]
    InvalidKey,
    /// Wire type 6 or 7.
    #[error("invalid wire type")]
    InvalidWireType,
    /// A known field in the wrong wire type.
    #[error("field {field} has the wrong wire type")]
    WrongWireType {
        /// The field number.
        field: u32,
    },
    /// A string field is not UTF-8.
    #[error("a string field is not valid UTF-8")]
    InvalidUtf8,
    /// An end-group without its start.
    #[error("unexpected end-group tag")]
    UnexpectedEndGroup,
    /// Rejected by prost when a request with repeated singular message fields was merged
    /// (the check accepted it; not expected to happen).
    #[error("invalid merged message")]
    Merged,
    /// Nested deeper than the recursion limit.
    #[error("messages nested deeper than {RECURSION_LIMIT} levels")]
    TooDeep,
}
