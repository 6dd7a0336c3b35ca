//! Request bodies: decompression with a limit on the output, so a gzip bomb is refused after
//! at most `limit + 1` bytes of output, and the whole decoding path used by ingest.

use std::io::Read;

use bytes::Bytes;
use empmix_core::protocol::{DecodeError, DecodedBatch, decode_batch};

/// Why a request body was refused before or while decoding.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit, counted after decompression (413).
    #[error("body larger than {limit} bytes after decompression")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// `Content-Encoding: gzip` but not valid gzip (400).
    #[error("invalid gzip body: {0}")]
    Gzip(std::io::Error),
    /// The decompressed body was refused by the protocol decoder (400 or 413).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Decompresses a gzip body, reading at most `limit + 1` bytes of output.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(BodyError::Gzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

/// The full decoding path of a body: decompress when `gzip`, enforce `limit`, decode.
pub fn decode_body(raw: Bytes, gzip: bool, limit: usize) -> Result<(Bytes, DecodedBatch), BodyError> {
    let body = if gzip {
        Bytes::from(gunzip(&raw, limit)?)
    } else if raw.len() > limit {
        return Err(BodyError::TooLarge { limit });
    } else {
        raw
    };
    let batch = decode_batch(&body)?;
    Ok((body, batch))
}
