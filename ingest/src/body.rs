//! OTLP/HTTP request bodies: size limits, memory reservation and gzip decompression.
//!
//! The limit holds twice: on the bytes received (the compressed stream, checked frame by
//! frame) and on the decompressed output, which is read at most `max + 1` bytes far, so a gzip
//! bomb is cut off while inflating and never expands past the limit. Both steps call a
//! `reserve` callback with the bytes they are about to hold, before holding them, so memory is
//! charged to the budget first.

use std::io::Read;

use axum::body::Body;
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt;

use crate::budget::BudgetError;

/// Output is inflated (and charged) in steps of at least this many bytes.
const INFLATE_STEP: usize = 64 * 1024;

/// Why a body was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the limit, compressed or decompressed.
    TooLarge,
    /// The body could not be read or decompressed.
    Invalid(String),
    /// The memory budget refused the bytes.
    Budget(BudgetError),
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

/// Reads the whole body, failing with [`BodyError::TooLarge`] past `max` bytes; `reserve` is
/// called with the bytes received so far, including each frame before it is kept.
pub(crate) async fn read_limited(
    mut body: Body,
    max: usize,
    mut reserve: impl FnMut(usize) -> Result<(), BodyError>,
) -> Result<Bytes, BodyError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Invalid(format!("cannot read body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        len = len.saturating_add(data.len());
        if len > max {
            return Err(BodyError::TooLarge);
        }
        // Twice: the frames, then their concatenation.
        let holding = if chunks.is_empty() { len } else { 2 * len };
        reserve(holding)?;
        chunks.push(data);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut all = Vec::with_capacity(len);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            Bytes::from(all)
        }
    })
}

/// Decompresses gzip (one or more members), failing with [`BodyError::TooLarge`] as soon as
/// the output exceeds `max` bytes. `reserve` is called with `data.len()` plus the output
/// buffer's capacity before the buffer grows.
pub(crate) fn gunzip_limited(
    data: &[u8],
    max: usize,
    mut reserve: impl FnMut(usize) -> Result<(), BodyError>,
) -> Result<Vec<u8>, BodyError> {
    let invalid = |e: std::io::Error| BodyError::Invalid(format!("invalid gzip body: {e}"));
    let limit = max.saturating_add(1);
    let mut input = MultiGzDecoder::new(data).take(u64::try_from(limit).unwrap_or(u64::MAX));
    // A typical OTLP body compresses 5-10x; cap the guess at the limit.
    let first = data.len().saturating_mul(8).max(INFLATE_STEP).min(limit);
    reserve(data.len() + first)?;
    let mut out = Vec::with_capacity(first);
    loop {
        let room = out.capacity() - out.len();
        if room == 0 {
            if out.len() >= limit {
                break;
            }
            // Doubling keeps the copies linear; the step bounds what a bomb gets ahead.
            let cap = out.capacity().saturating_mul(2).min(limit);
            reserve(data.len() + cap)?;
            out.reserve_exact(cap - out.len());
            continue;
        }
        let want = u64::try_from(room).unwrap_or(u64::MAX);
        let n = (&mut input)
            .take(want)
            .read_to_end(&mut out)
            .map_err(invalid)?;
        if n == 0 {
            break;
        }
    }
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

    fn ok(_: usize) -> Result<(), BodyError> {
        Ok(())
    }

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
        assert_eq!(gunzip_limited(&z, 1000, ok), Ok(data));
        assert_eq!(gunzip_limited(&z, 999, ok), Err(BodyError::TooLarge));
        assert!(matches!(
            gunzip_limited(b"not gzip", 10, ok),
            Err(BodyError::Invalid(_))
        ));
        let truncated = &z[..z.len() / 2];
        assert!(matches!(
            gunzip_limited(truncated, 2000, ok),
            Err(BodyError::Invalid(_))
        ));
    }

    /// Reading a body stops with TooLarge past the limit.
    #[tokio::test]
    async fn read_limits() {
        let read = read_limited(Body::from(vec![1u8; 10]), 10, ok).await;
        assert_eq!(read.map(|b| b.len()), Ok(10));
        let big = read_limited(Body::from(vec![1u8; 11]), 10, ok).await;
        assert_eq!(big, Err(BodyError::TooLarge));
    }

    /// Inflating reserves before each growth of the output: the reservations cover the input
    /// plus the output's capacity, grow geometrically, and a refusal stops inflating there.
    #[test]
    fn gunzip_reserves_before_growing() {
        let data = vec![3u8; 1 << 20];
        let z = gzip(&data);
        let mut asked = Vec::new();
        let out = gunzip_limited(&z, 2 << 20, |n| {
            asked.push(n);
            Ok(())
        })
        .expect("inflates");
        assert_eq!(out, data);
        assert!(asked.windows(2).all(|w| w[0] < w[1]), "{asked:?}");
        assert!(*asked.last().expect("asked") >= z.len() + out.capacity());
        assert!(asked.len() < 12, "geometric growth: {asked:?}");
        let refused = gunzip_limited(&z, 2 << 20, |n| {
            if n > 256 * 1024 {
                Err(BodyError::Budget(BudgetError::Exhausted))
            } else {
                Ok(())
            }
        });
        assert_eq!(refused, Err(BodyError::Budget(BudgetError::Exhausted)));
    }

    /// Reading reserves the bytes received before keeping each frame, and stops on refusal.
    #[tokio::test]
    async fn read_reserves() {
        let mut asked = Vec::new();
        let read = read_limited(Body::from(vec![1u8; 100]), 1000, |n| {
            asked.push(n);
            Ok(())
        })
        .await;
        assert_eq!(read.map(|b| b.len()), Ok(100));
        assert_eq!(asked, vec![100]);
        let refused = read_limited(Body::from(vec![1u8; 100]), 1000, |_| {
            Err(BodyError::Budget(BudgetError::Exhausted))
        })
        .await;
        assert_eq!(refused, Err(BodyError::Budget(BudgetError::Exhausted)));
    }
}
