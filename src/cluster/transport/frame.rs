//! The wire frames of the RPC transport and their reading and writing. A frame is a `u32`
//! big-endian length followed by that many bytes: a kind byte, the request id (`u64` BE) and a
//! kind-specific body. Structured parts (request routing fields, errors) are bincode; payload
//! bytes (request bodies, response chunks) follow raw so large chunks are not re-encoded byte
//! by byte. A declared length above the configured maximum is refused before any buffer is
//! allocated.

use super::{RemoteError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const KIND_REQUEST: u8 = 1;
const KIND_CHUNK: u8 = 2;
const KIND_END: u8 = 3;
const KIND_ERROR: u8 = 4;

/// Kind byte + request id.
pub const FRAME_HEADER: usize = 9;

/// Bound for the bincode-encoded parts of a frame (routing strings, error messages); keeps a
/// lying length prefix inside them from allocating much.
const STRUCT_LIMIT: usize = 64 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<STRUCT_LIMIT>()
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Request(Request),
    Chunk { id: u64, data: Vec<u8> },
    End { id: u64 },
    Error { id: u64, error: RemoteError },
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: u64, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Frame {
    pub fn id(&self) -> u64 {
        match self {
            Frame::Request(r) => r.id,
            Frame::Chunk { id, .. } | Frame::End { id } | Frame::Error { id, .. } => *id,
        }
    }
}

fn header(kind: u8, id: u64, body_len: usize, max: usize) -> Result<[u8; 13], FrameError> {
    let len = FRAME_HEADER + body_len;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len: len as u64,
        max,
    })?;
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&len32.to_be_bytes());
    h[4] = kind;
    h[5..].copy_from_slice(&id.to_be_bytes());
    Ok(h)
}

async fn write_parts<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    id: u64,
    parts: &[&[u8]],
    max: usize,
) -> Result<(), FrameError> {
    let body_len = parts.iter().map(|p| p.len()).sum();
    let h = header(kind, id, body_len, max)?;
    w.write_all(&h).await?;
    for p in parts {
        w.write_all(p).await?;
    }
    Ok(())
}

fn encode_struct<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, FrameError> {
    bincode::serde::encode_to_vec(v, config()).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Writes one frame (not flushed). Fails with `TooLarge` if it would exceed `max`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    frame: &Frame,
    max: usize,
) -> Result<(), FrameError> {
    match frame {
        Frame::Request(r) => {
            let routing = encode_struct(&(&r.target_role, &r.method))?;
            write_parts(w, KIND_REQUEST, r.id, &[&routing, &r.body], max).await
        }
        Frame::Chunk { id, data } => write_parts(w, KIND_CHUNK, *id, &[data], max).await,
        Frame::End { id } => write_parts(w, KIND_END, *id, &[], max).await,
        Frame::Error { id, error } => {
            let e = encode_struct(error)?;
            write_parts(w, KIND_ERROR, *id, &[&e], max).await
        }
    }
}

/// Writes a chunk frame without copying `data` into a frame value.
pub async fn write_chunk<W: AsyncWrite + Unpin>(
    w: &mut W,
    id: u64,
    data: &[u8],
    max: usize,
) -> Result<(), FrameError> {
    write_parts(w, KIND_CHUNK, id, &[data], max).await
}

/// Largest chunk payload that fits in a frame of `max` bytes.
pub fn max_chunk_payload(max: usize) -> usize {
    max.saturating_sub(FRAME_HEADER).max(1)
}

/// Reads one frame. `Closed` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    if len < FRAME_HEADER {
        return Err(FrameError::Malformed(format!(
            "frame of {len} bytes is shorter than its {FRAME_HEADER}-byte header"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Malformed(format!("connection closed inside a {len}-byte frame"))
        } else {
            FrameError::Io(e)
        }
    })?;
    decode_frame(buf)
}

/// Decodes a frame body (everything after the length prefix).
pub fn decode_frame(mut buf: Vec<u8>) -> Result<Frame, FrameError> {
    let (kind, id) = match buf.get(..FRAME_HEADER) {
        Some(h) => {
            let mut idb = [0u8; 8];
            idb.copy_from_slice(&h[1..]);
            (h[0], u64::from_be_bytes(idb))
        }
        None => return Err(FrameError::Malformed("truncated frame header".into())),
    };
    let body = &buf[FRAME_HEADER..];
    match kind {
        KIND_REQUEST => {
            let ((target_role, method), used): ((String, String), usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(|e| {
                    FrameError::Malformed(format!("request {id}: bad routing header: {e}"))
                })?;
            let body = body.get(used..).unwrap_or(&[]).to_vec();
            Ok(Frame::Request(Request {
                id,
                target_role,
                method,
                body,
            }))
        }
        KIND_CHUNK => {
            buf.drain(..FRAME_HEADER);
            Ok(Frame::Chunk { id, data: buf })
        }
        KIND_END if body.is_empty() => Ok(Frame::End { id }),
        KIND_END => Err(FrameError::Malformed(format!(
            "end frame of request {id} carries {} bytes",
            body.len()
        ))),
        KIND_ERROR => {
            let (error, used): (RemoteError, usize) =
                bincode::serde::decode_from_slice(body, config()).map_err(|e| {
                    FrameError::Malformed(format!("request {id}: bad error frame: {e}"))
                })?;
            if used != body.len() {
                return Err(FrameError::Malformed(format!(
                    "request {id}: trailing bytes after error"
                )));
            }
            Ok(Frame::Error { id, error })
        }
        other => Err(FrameError::Malformed(format!("unknown frame kind {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::transport::RemoteErrorKind;
    use proptest::prelude::*;

    async fn roundtrip(f: Frame) -> Frame {
        let mut buf = Vec::new();
        write_frame(&mut buf, &f, 1 << 20).await.unwrap();
        read_frame(&mut buf.as_slice(), 1 << 20).await.unwrap()
    }

    #[tokio::test]
    async fn frames_roundtrip() {
        let req = Frame::Request(Request {
            id: 7,
            target_role: "store_shard".into(),
            method: "series".into(),
            body: vec![1, 2, 3],
        });
        assert_eq!(roundtrip(req.clone()).await, req);
        let c = Frame::Chunk {
            id: 7,
            data: vec![9; 1000],
        };
        assert_eq!(roundtrip(c.clone()).await, c);
        assert_eq!(roundtrip(Frame::End { id: 7 }).await, Frame::End { id: 7 });
        let e = Frame::Error {
            id: 7,
            error: RemoteError {
                kind: RemoteErrorKind::NotFound,
                message: "no such role".into(),
            },
        };
        assert_eq!(roundtrip(e.clone()).await, e);
    }

    #[tokio::test]
    async fn oversized_declared_length_is_refused_before_reading() {
        // Only the length prefix exists: a reader that tried to read the body would hit EOF.
        let bytes = u32::MAX.to_be_bytes();
        match read_frame(&mut bytes.as_slice(), 1024).await {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as u64);
                assert_eq!(max, 1024);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let mut out = Vec::new();
        let big = Frame::Chunk {
            id: 1,
            data: vec![0; 2000],
        };
        assert!(matches!(
            write_frame(&mut out, &big, 1024).await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn truncated_and_unknown_frames_are_malformed() {
        assert!(matches!(
            read_frame(&mut [].as_slice(), 64).await,
            Err(FrameError::Closed)
        ));
        let short = [0u8, 0, 0, 3, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut short.as_slice(), 64).await,
            Err(FrameError::Malformed(_))
        ));
        let cut = [0u8, 0, 0, 20, 2, 0, 0];
        assert!(matches!(
            read_frame(&mut cut.as_slice(), 64).await,
            Err(FrameError::Malformed(_))
        ));
        let mut unknown = vec![0u8, 0, 0, 9, 99];
        unknown.extend_from_slice(&[0; 8]);
        assert!(matches!(
            read_frame(&mut unknown.as_slice(), 64).await,
            Err(FrameError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_frame(bytes);
        }
    }
}
