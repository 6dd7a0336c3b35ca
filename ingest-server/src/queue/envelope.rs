//! The broker message format: one message per accepted batch, a small binary header before the
//! decompressed request body, so the body is carried byte for byte and nothing depends on AMQP
//! header tables.
//!
//! ```text
//! "EMB1" | u16 project length | project (UTF-8) | i64 received_at | u32 id count |
//!   (u32 index, 16-byte UUID) * count | body
//! ```
//! All integers big-endian.

use bytes::Bytes;

use super::QueuedBatch;

const MAGIC: &[u8; 4] = b"EMB1";

/// Encodes a batch as a message body.
pub(crate) fn encode(batch: &QueuedBatch) -> Vec<u8> {
    let project = batch.project.as_bytes();
    let project_len = u16::try_from(project.len()).unwrap_or(u16::MAX);
    let project = &project[..usize::from(project_len)];
    let mut out =
        Vec::with_capacity(4 + 2 + project.len() + 8 + 4 + batch.assigned_ids.len() * 20 + batch.body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&project_len.to_be_bytes());
    out.extend_from_slice(project);
    out.extend_from_slice(&batch.received_at.to_be_bytes());
    out.extend_from_slice(&(batch.assigned_ids.len() as u32).to_be_bytes());
    for (index, id) in &batch.assigned_ids {
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(&batch.body);
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated: wanted {n} more bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Decodes a message body; the error says what is wrong.
pub(crate) fn decode(message: &[u8]) -> Result<QueuedBatch, String> {
    let mut r = Reader(message);
    if r.take(4)? != MAGIC {
        return Err("not an empmix batch (bad magic)".into());
    }
    let project_len = u16::from_be_bytes(r.array()?);
    let project = std::str::from_utf8(r.take(usize::from(project_len))?)
        .map_err(|_| "project is not UTF-8".to_string())?
        .to_string();
    let received_at = i64::from_be_bytes(r.array()?);
    let count = u32::from_be_bytes(r.array()?) as usize;
    if count > r.0.len() / 20 {
        return Err(format!("{count} assigned ids cannot fit"));
    }
    let mut assigned_ids = Vec::with_capacity(count);
    for _ in 0..count {
        let index = u32::from_be_bytes(r.array()?);
        assigned_ids.push((index, uuid::Uuid::from_bytes(r.array()?)));
    }
    Ok(QueuedBatch { project, received_at, assigned_ids, body: Bytes::copy_from_slice(r.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let batch = QueuedBatch {
            project: "conf-app".into(),
            received_at: 1_781_944_200_123,
            assigned_ids: vec![(0, uuid::Uuid::now_v7()), (7, uuid::Uuid::now_v7())],
            body: Bytes::from_static(br#"{"events":[{"type":"page_view"}]}"#),
        };
        let bytes = encode(&batch);
        assert_eq!(decode(&bytes).unwrap(), batch);
        assert!(decode(b"garbage").is_err());
        assert!(decode(&bytes[..10]).is_err());
        let mut huge = bytes.clone();
        huge[4 + 2 + 8 + 8..4 + 2 + 8 + 8 + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&huge).is_err());
    }
}
