//! The on-disk record format of the event log: length- and checksum-framed records.
//!
//! A log file starts with [`MAGIC`], then holds frames back to back:
//!
//! ```text
//! [body length: u32 LE][crc32 of body: u32 LE][body: kind byte + payload]
//! ```
//!
//! | kind | payload |
//! |---|---|
//! | [`KIND_APPEND`] | the 36-byte event id, then the event's wire JSON |
//! | [`KIND_REMOVE`] | event ids, 36 bytes each |
//! | [`KIND_STATE`] | the engine's state text |
//!
//! A frame is valid when it is complete and its checksum matches. Reading stops at the first
//! invalid frame: a write torn by a crash or power loss can only be at the end, and nothing
//! after it was ever acknowledged.

use empmix_core::EventId;
use empmix_core::persist::PersistOp;

/// The first bytes of every log file (format version 1).
pub(crate) const MAGIC: &[u8; 8] = b"EMPMIXL1";
/// A stored event.
pub(crate) const KIND_APPEND: u8 = 1;
/// Events that left the queue.
pub(crate) const KIND_REMOVE: u8 = 2;
/// The engine's state record.
pub(crate) const KIND_STATE: u8 = 3;

const HEADER_BYTES: usize = 8;
const ID_BYTES: usize = 36;
/// No valid body is larger: an event is at most 32 KiB, a removal lists at most a batch's ids.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Appends the frame for `op` to `out`.
pub(crate) fn encode_op(op: &PersistOp, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    match op {
        PersistOp::Append { id, record } => {
            out.push(KIND_APPEND);
            out.extend_from_slice(id.to_text().as_bytes());
            out.extend_from_slice(record.as_bytes());
        }
        PersistOp::Remove { ids } => {
            out.push(KIND_REMOVE);
            for id in ids {
                out.extend_from_slice(id.to_text().as_bytes());
            }
        }
        PersistOp::SaveState { state } => {
            out.push(KIND_STATE);
            out.extend_from_slice(state.as_bytes());
        }
    }
    seal(out, start);
}

/// Appends an `Append` frame from its parts (used when compacting).
pub(crate) fn encode_append(id: &str, record: &str, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.push(KIND_APPEND);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(record.as_bytes());
    seal(out, start);
}

/// Appends a `State` frame (used when compacting).
pub(crate) fn encode_state(state: &str, out: &mut Vec<u8>) {
    encode_op(&PersistOp::SaveState { state: state.to_string() }, out);
}

/// Fills in the header of the frame starting at `start`.
fn seal(out: &mut [u8], start: usize) {
    let body = &out[start + HEADER_BYTES..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let crc = crc32fast::hash(body).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// One decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A stored event: its id text and wire JSON.
    Append {
        /// The id as text.
        id: &'a str,
        /// The wire JSON.
        record: &'a str,
    },
    /// Ids (36 bytes each, concatenated) of events that left the queue.
    Remove {
        /// The ids as text, concatenated.
        ids: &'a str,
    },
    /// The engine's state.
    State(&'a str),
}

impl<'a> Frame<'a> {
    /// The ids of a `Remove` frame.
    pub(crate) fn removed_ids(ids: &'a str) -> impl Iterator<Item = &'a str> {
        (0..ids.len() / ID_BYTES).filter_map(move |i| ids.get(i * ID_BYTES..(i + 1) * ID_BYTES))
    }
}

/// Reads frames from `data` (after the magic), stopping at the first invalid one.
#[derive(Debug)]
pub(crate) struct FrameReader<'a> {
    data: &'a [u8],
    offset: usize,
    /// Set when reading stopped at an invalid frame rather than at the end.
    pub(crate) torn: bool,
}

impl<'a> FrameReader<'a> {
    /// A reader over the whole file contents; `None` when the magic is missing.
    pub(crate) fn new(data: &'a [u8]) -> Option<Self> {
        data.starts_with(MAGIC).then_some(FrameReader { data, offset: MAGIC.len(), torn: false })
    }

    /// Bytes of valid frames read so far, including the magic: where the next append goes.
    pub(crate) fn valid_len(&self) -> usize {
        self.offset
    }

    fn next_frame(&mut self) -> Option<Frame<'a>> {
        let rest = &self.data[self.offset..];
        if rest.is_empty() {
            return None;
        }
        let (Some(len), Some(crc)) = (rest.get(0..4), rest.get(4..8)) else {
            self.torn = true;
            return None;
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let body = match rest.get(HEADER_BYTES..HEADER_BYTES + len) {
            Some(body) if len > 0 && len <= MAX_BODY_BYTES && crc32fast::hash(body) == crc => body,
            _ => {
                self.torn = true;
                return None;
            }
        };
        let frame = match (body[0], std::str::from_utf8(&body[1..])) {
            (KIND_APPEND, Ok(text)) if text.len() >= ID_BYTES && text.is_char_boundary(ID_BYTES) => {
                let (id, record) = text.split_at(ID_BYTES);
                Frame::Append { id, record }
            }
            (KIND_REMOVE, Ok(ids)) if ids.len() % ID_BYTES == 0 => Frame::Remove { ids },
            (KIND_STATE, Ok(state)) => Frame::State(state),
            _ => {
                self.torn = true;
                return None;
            }
        };
        self.offset += HEADER_BYTES + len;
        Some(frame)
    }
}

impl<'a> Iterator for FrameReader<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        self.next_frame()
    }
}

/// Parses an id written by [`encode_op`].
pub(crate) fn parse_id(text: &str) -> Option<EventId> {
    EventId::parse(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use empmix_core::{SeededEntropy, Timestamp};

    use super::*;

    fn id(n: u64) -> EventId {
        EventId::new(Timestamp::from_unix_millis(1_750_000_000_000), &mut SeededEntropy::new(n))
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_detected() {
        let mut data = MAGIC.to_vec();
        let (a, b) = (id(1), id(2));
        encode_op(&PersistOp::Append { id: a, record: "{\"x\":1}".into() }, &mut data);
        encode_op(&PersistOp::SaveState { state: "st".into() }, &mut data);
        encode_op(&PersistOp::Remove { ids: vec![a, b] }, &mut data);
        let full = data.len();
        let frames: Vec<_> = FrameReader::new(&data).unwrap().collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], Frame::Append { id: &a.to_text(), record: "{\"x\":1}" });
        assert_eq!(frames[1], Frame::State("st"));
        let Frame::Remove { ids } = frames[2] else { panic!("not a removal") };
        let ids: Vec<_> = Frame::removed_ids(ids).filter_map(parse_id).collect();
        assert_eq!(ids, vec![a, b]);

        // Every truncation inside the last frame reads the first two and reports a tear.
        let second_end = {
            let mut r = FrameReader::new(&data).unwrap();
            r.next();
            r.next();
            r.valid_len()
        };
        for cut in second_end + 1..full {
            let mut r = FrameReader::new(&data[..cut]).unwrap();
            assert_eq!(r.by_ref().count(), 2, "cut at {cut}");
            assert!(r.torn);
            assert_eq!(r.valid_len(), second_end);
        }
        // A flipped bit is caught by the checksum.
        let mut flipped = data.clone();
        flipped[full - 3] ^= 0x40;
        let mut r = FrameReader::new(&flipped).unwrap();
        assert_eq!(r.by_ref().count(), 2);
        assert!(r.torn);
        assert!(FrameReader::new(b"garbage").is_none());
    }
}
