//! The response-body cap both real backends enforce while reading.

use crate::TransportError;
use bytes::{Bytes, BytesMut};

/// The body cap, a body read whole or streamed: the declared `Content-Length` checked
/// before anything is read, then every chunk counted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimit {
    limit: usize,
    read: usize,
}

impl BodyLimit {
    /// Starts counting, refusing at once when the declared `Content-Length` is over the limit.
    pub(crate) fn new(limit: usize, content_length: Option<u64>) -> Result<Self, TransportError> {
        if content_length.is_some_and(|len| len > limit as u64) {
            return Err(TransportError::body_too_large(limit));
        }
        Ok(Self { limit, read: 0 })
    }

    /// Counts `chunk`; fails once the total passes the limit.
    pub(crate) fn count(&mut self, chunk: &Bytes) -> Result<(), TransportError> {
        let read = self.read.saturating_add(chunk.len());
        if read > self.limit {
            return Err(TransportError::body_too_large(self.limit));
        }
        self.read = read;
        Ok(())
    }
}

/// Collects body chunks, refusing to hold more than the limit.
#[derive(Debug)]
pub(crate) struct CappedBody {
    limit: BodyLimit,
    first: Option<Bytes>,
    rest: BytesMut,
}

impl CappedBody {
    /// Starts a body, refusing at once when the declared `Content-Length` is over the limit.
    pub(crate) fn new(limit: usize, content_length: Option<u64>) -> Result<Self, TransportError> {
        Ok(Self {
            limit: BodyLimit::new(limit, content_length)?,
            first: None,
            rest: BytesMut::new(),
        })
    }

    /// Adds a chunk; fails once the total passes the limit.
    pub(crate) fn push(&mut self, chunk: Bytes) -> Result<(), TransportError> {
        self.limit.count(&chunk)?;
        // Most bodies arrive in one chunk: keep it without copying.
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(chunk),
            first => {
                if let Some(first) = first {
                    self.rest.extend_from_slice(&first);
                }
                self.rest.extend_from_slice(&chunk);
            }
        }
        Ok(())
    }

    /// The whole body.
    pub(crate) fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| self.rest.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_joined_up_to_the_limit() {
        let mut body = CappedBody::new(6, None).unwrap();
        body.push(Bytes::from_static(b"abc")).unwrap();
        body.push(Bytes::from_static(b"de")).unwrap();
        body.push(Bytes::from_static(b"f")).unwrap();
        assert!(
            body.push(Bytes::from_static(b"g"))
                .unwrap_err()
                .is_body_too_large()
        );
    }

    #[test]
    fn single_chunk_is_not_copied_and_declared_length_is_checked() {
        let chunk = Bytes::from_static(b"hello");
        let mut body = CappedBody::new(5, Some(5)).unwrap();
        body.push(chunk.clone()).unwrap();
        assert_eq!(body.finish().as_ptr(), chunk.as_ptr());
        assert!(CappedBody::new(5, Some(6)).unwrap_err().is_body_too_large());
        assert_eq!(CappedBody::new(5, None).unwrap().finish(), Bytes::new());
    }
}
