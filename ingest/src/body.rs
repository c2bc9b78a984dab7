//! OTLP/HTTP request bodies: size limits and gzip decompression.
//!
//! The limit holds twice: on the bytes received (the compressed stream, checked frame by
//! frame) and on the decompressed output, which is read at most `max + 1` bytes far, so a gzip
//! bomb is cut off while inflating and never expands past the limit.

use std::io::Read;

use axum::body::Body;
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the limit, compressed or decompressed.
    TooLarge,
    /// The body could not be read or decompressed.
    Invalid(String),
}

/// `Content-Encoding` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No compression.
    Identity,
    /// gzip.
    Gzip,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value (absent = identity); `None` if unsupported.
    pub(crate) fn parse(header: Option<&str>) -> Option<Self> {
        match header.map(str::trim) {
            None | Some("") => Some(Encoding::Identity),
            Some(v) if v.eq_ignore_ascii_case("identity") => Some(Encoding::Identity),
            Some(v) if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") => {
                Some(Encoding::Gzip)
            }
            Some(_) => None,
        }
    }
}

/// Reads the whole body, failing with [`BodyError::TooLarge`] past `max` bytes.
pub(crate) async fn read_limited(body: Body, max: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Err(e) => Err(BodyError::Invalid(format!("cannot read body: {e}"))),
    }
}

/// Decompresses gzip (one or more members), failing with [`BodyError::TooLarge`] as soon as
/// the output exceeds `max` bytes.
pub(crate) fn gunzip_limited(data: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    // A typical OTLP body compresses 5-10x; cap the guess at the limit.
    let mut out = Vec::with_capacity(data.len().saturating_mul(8).min(max));
    MultiGzDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Invalid(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    /// Encodings: absent/identity/gzip (any case) are known, others are refused.
    #[test]
    fn encodings() {
        assert_eq!(Encoding::parse(None), Some(Encoding::Identity));
        assert_eq!(Encoding::parse(Some("identity")), Some(Encoding::Identity));
        assert_eq!(Encoding::parse(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some("br")), None);
        assert_eq!(Encoding::parse(Some("gzip, br")), None);
    }

    /// gunzip returns the data at the limit, refuses one byte more, and rejects garbage.
    #[test]
    fn gunzip_limits() {
        let data = vec![7u8; 1000];
        let z = gzip(&data);
        assert_eq!(gunzip_limited(&z, 1000), Ok(data));
        assert_eq!(gunzip_limited(&z, 999), Err(BodyError::TooLarge));
        assert!(matches!(
            gunzip_limited(b"not gzip", 10),
            Err(BodyError::Invalid(_))
        ));
        let truncated = &z[..z.len() / 2];
        assert!(matches!(
            gunzip_limited(truncated, 2000),
            Err(BodyError::Invalid(_))
        ));
    }

    /// Reading a body stops with TooLarge past the limit.
    #[tokio::test]
    async fn read_limits() {
        let ok = read_limited(Body::from(vec![1u8; 10]), 10).await;
        assert_eq!(ok.map(|b| b.len()), Ok(10));
        let big = read_limited(Body::from(vec![1u8; 11]), 10).await;
        assert_eq!(big, Err(BodyError::TooLarge));
    }
}
