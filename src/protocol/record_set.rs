//! Whole record batches held as one or more byte chunks, never copied together. A fetch
//! served from the cache hands out the cached batches themselves; the Fetch response is
//! framed around them (see `fetch_response`) and the socket writes them as they are.
use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    chunks: Vec<Bytes>,
    len: usize,
}

impl RecordSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The batches as one contiguous buffer: free for a single chunk, one copy otherwise.
    /// For readers that parse the batches (group load, tests), not for the fetch path.
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks[0].clone(),
            _ => {
                let mut out = BytesMut::with_capacity(self.len);
                for c in &self.chunks {
                    out.extend_from_slice(c);
                }
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for RecordSet {
    fn from(chunk: Bytes) -> Self {
        let mut set = Self::new();
        set.push(chunk);
        set
    }
}
