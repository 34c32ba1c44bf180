//! The block-sync wire format: one request and one response per stream, each a frame of a
//! little-endian `u32` length followed by that many bytes. The length is checked against a
//! cap before anything is allocated, so a peer cannot make us reserve more than the cap.
//!
//! ```text
//! request  body: 0x01 ‖ from_height: u64 LE ‖ max_count: u32 LE          (13 bytes)
//! response body: 0x00 ‖ payload (opaque bytes from the serving host)      (≤ cap + 1)
//!             or 0x01 ‖ refusal reason: u8
//! ```

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use std::io;

/// A request for blocks starting at a height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncRequest {
    /// The first height wanted.
    pub from_height: u64,
    /// At most this many blocks (the server may send fewer to fit its response limit).
    pub max_count: u32,
}

/// Why a peer refused to serve a sync request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The requester used up its request quota; it may ask again later.
    QuotaExceeded,
    /// The server has too many requests waiting, or its host is not keeping up.
    Busy,
}

/// The answer to a sync request as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncReply {
    /// The serving host's bytes (blocks with certificates, encoded by the node).
    Blocks(Vec<u8>),
    /// The request was refused before the serving host saw it.
    Refused(Refusal),
}

/// A sync frame that breaks the wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame announces more bytes than this side accepts.
    #[error("frame of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// The announced length.
        len_bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The frame is empty or its body has the wrong length for its kind.
    #[error("frame body of {got_bytes} bytes does not match its kind")]
    BadLength {
        /// The body length received.
        got_bytes: usize,
    },
    /// The first byte names no known kind.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A refusal names no known reason.
    #[error("unknown refusal reason {0:#04x}")]
    UnknownRefusal(u8),
}

impl From<FrameError> for io::Error {
    fn from(error: FrameError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

const REQUEST_KIND: u8 = 0x01;
const REQUEST_BODY_BYTES: usize = 13;
/// A request frame is 13 bytes; anything much larger is not a request.
const REQUEST_FRAME_BYTES_MAX: usize = 64;
const REPLY_BLOCKS: u8 = 0x00;
const REPLY_REFUSED: u8 = 0x01;
const REFUSAL_QUOTA: u8 = 0x01;
const REFUSAL_BUSY: u8 = 0x02;

pub(crate) fn encode_request(request: &SyncRequest) -> Vec<u8> {
    let mut body = Vec::with_capacity(REQUEST_BODY_BYTES);
    body.push(REQUEST_KIND);
    body.extend_from_slice(&request.from_height.to_le_bytes());
    body.extend_from_slice(&request.max_count.to_le_bytes());
    body
}

pub(crate) fn decode_request(body: &[u8]) -> Result<SyncRequest, FrameError> {
    if body.len() != REQUEST_BODY_BYTES {
        return Err(FrameError::BadLength {
            got_bytes: body.len(),
        });
    }
    if body[0] != REQUEST_KIND {
        return Err(FrameError::UnknownKind(body[0]));
    }
    let from_height = u64::from_le_bytes(body[1..9].try_into().expect("bug: 8-byte slice"));
    let max_count = u32::from_le_bytes(body[9..13].try_into().expect("bug: 4-byte slice"));
    Ok(SyncRequest {
        from_height,
        max_count,
    })
}

pub(crate) fn encode_reply(reply: &SyncReply) -> Vec<u8> {
    match reply {
        SyncReply::Blocks(bytes) => {
            let mut body = Vec::with_capacity(bytes.len() + 1);
            body.push(REPLY_BLOCKS);
            body.extend_from_slice(bytes);
            body
        }
        SyncReply::Refused(Refusal::QuotaExceeded) => vec![REPLY_REFUSED, REFUSAL_QUOTA],
        SyncReply::Refused(Refusal::Busy) => vec![REPLY_REFUSED, REFUSAL_BUSY],
    }
}

pub(crate) fn decode_reply(mut body: Vec<u8>) -> Result<SyncReply, FrameError> {
    match body.first().copied() {
        None => Err(FrameError::BadLength { got_bytes: 0 }),
        Some(REPLY_BLOCKS) => {
            body.remove(0);
            Ok(SyncReply::Blocks(body))
        }
        Some(REPLY_REFUSED) => match body.as_slice() {
            [_, REFUSAL_QUOTA] => Ok(SyncReply::Refused(Refusal::QuotaExceeded)),
            [_, REFUSAL_BUSY] => Ok(SyncReply::Refused(Refusal::Busy)),
            [_, other] => Err(FrameError::UnknownRefusal(*other)),
            _ => Err(FrameError::BadLength {
                got_bytes: body.len(),
            }),
        },
        Some(other) => Err(FrameError::UnknownKind(other)),
    }
}

/// Read one frame of at most `max_bytes` body bytes.
async fn read_frame<T>(io: &mut T, max_bytes: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len);
    // Checked before allocating: the announced length is untrusted.
    let len_bytes = usize::try_from(len).unwrap_or(usize::MAX);
    if len_bytes > max_bytes {
        return Err(FrameError::TooLarge {
            len_bytes: u64::from(len),
            max_bytes: max_bytes as u64,
        }
        .into());
    }
    let mut body = vec![0u8; len_bytes];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<T>(io: &mut T, body: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(body.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "bug: sync frame longer than u32::MAX",
        )
    })?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

/// The request-response codec of block sync.
#[derive(Debug, Clone)]
pub(crate) struct SyncCodec {
    /// Largest reply body accepted: the payload limit plus the kind byte.
    max_reply_bytes: usize,
}

impl SyncCodec {
    pub(crate) fn new(max_response_bytes: usize) -> SyncCodec {
        SyncCodec {
            max_reply_bytes: max_response_bytes
                .checked_add(1)
                .expect("bug: response limit validated below 64 MiB"),
        }
    }
}

#[async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncReply;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, REQUEST_FRAME_BYTES_MAX).await?;
        Ok(decode_request(&body)?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncReply>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, self.max_reply_bytes).await?;
        Ok(decode_reply(body)?)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode_request(&request)).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        reply: SyncReply,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode_reply(&reply)).await
    }
}

/// The frame error inside an IO error raised by this codec, if that is what it is.
pub(crate) fn frame_error(error: &io::Error) -> Option<&FrameError> {
    error.get_ref()?.downcast_ref::<FrameError>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use libp2p::request_response::Codec;
    use proptest::prelude::*;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new("/dex/test/sync/1")
    }

    #[test]
    fn request_bytes_are_pinned() {
        let body = encode_request(&SyncRequest {
            from_height: 0x0102,
            max_count: 3,
        });
        assert_eq!(body, [1, 2, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn reply_bytes_are_pinned() {
        assert_eq!(encode_reply(&SyncReply::Blocks(vec![9, 8])), [0, 9, 8]);
        assert_eq!(
            encode_reply(&SyncReply::Refused(Refusal::QuotaExceeded)),
            [1, 1]
        );
        assert_eq!(encode_reply(&SyncReply::Refused(Refusal::Busy)), [1, 2]);
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert_eq!(
            decode_request(&[1, 2]),
            Err(FrameError::BadLength { got_bytes: 2 })
        );
        assert_eq!(decode_request(&[7; 13]), Err(FrameError::UnknownKind(7)));
        assert_eq!(
            decode_reply(vec![]),
            Err(FrameError::BadLength { got_bytes: 0 })
        );
        assert_eq!(decode_reply(vec![5]), Err(FrameError::UnknownKind(5)));
        assert_eq!(decode_reply(vec![1, 9]), Err(FrameError::UnknownRefusal(9)));
        assert_eq!(
            decode_reply(vec![1]),
            Err(FrameError::BadLength { got_bytes: 1 })
        );
    }

    #[test]
    fn a_frame_over_the_cap_is_refused_before_reading_its_body() {
        let mut codec = SyncCodec::new(4);
        let mut wire = Vec::new();
        block_on(codec.write_response(&protocol(), &mut wire, SyncReply::Blocks(vec![0; 5])))
            .unwrap();
        // Only the length prefix is needed to refuse: the body is cut off entirely.
        let mut reader = futures::io::Cursor::new(wire[..4].to_vec());
        let error = block_on(codec.read_response(&protocol(), &mut reader)).unwrap_err();
        assert_eq!(
            frame_error(&error),
            Some(&FrameError::TooLarge {
                len_bytes: 6,
                max_bytes: 5
            })
        );
    }

    #[test]
    fn a_huge_announced_request_is_refused() {
        let mut codec = SyncCodec::new(4);
        let mut reader = futures::io::Cursor::new(u32::MAX.to_le_bytes().to_vec());
        let error = block_on(codec.read_request(&protocol(), &mut reader)).unwrap_err();
        assert!(matches!(
            frame_error(&error),
            Some(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_truncated_frame_is_an_io_error() {
        let mut codec = SyncCodec::new(100);
        let mut reader = futures::io::Cursor::new(vec![10, 0, 0, 0, 0, 1]);
        let error = block_on(codec.read_response(&protocol(), &mut reader)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(frame_error(&error), None);
    }

    proptest! {
        #[test]
        fn requests_round_trip(from_height in any::<u64>(), max_count in any::<u32>()) {
            let request = SyncRequest { from_height, max_count };
            let mut codec = SyncCodec::new(16);
            let mut wire = Vec::new();
            block_on(codec.write_request(&protocol(), &mut wire, request)).unwrap();
            let mut reader = futures::io::Cursor::new(wire);
            prop_assert_eq!(block_on(codec.read_request(&protocol(), &mut reader)).unwrap(), request);
        }

        #[test]
        fn replies_within_the_cap_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut codec = SyncCodec::new(512);
            let reply = SyncReply::Blocks(payload);
            let mut wire = Vec::new();
            block_on(codec.write_response(&protocol(), &mut wire, reply.clone())).unwrap();
            let mut reader = futures::io::Cursor::new(wire);
            prop_assert_eq!(block_on(codec.read_response(&protocol(), &mut reader)).unwrap(), reply);
        }

        #[test]
        fn reply_decoding_never_panics(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_reply(body);
        }
    }
}
