//! The request-response protocol between two nodes (over a relay circuit): node wire messages
//! (sealed sync requests and responses), fetches of announced deltas, fetches of a context's
//! app module by a joiner that lacks it, and blob pieces (a manifest or one chunk).
//!
//! A request or response is `VERSION ‖ kind ‖ body` ([`tabmesh_base::codec`]), read whole with a
//! cap of [`MESSAGE_MAX`] bytes; anything longer or malformed fails the stream with
//! `InvalidData` (the peer's request fails; nothing reaches the node).
//!
//! Sync messages are one-way: a [`Request::Msg`] is acknowledged at once with
//! [`Response::Ack`] (received, not processed); the node's answer, if any, is a request of its own.

use std::io;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::request_response;
use libp2p::StreamProtocol;
use tabmesh_base::codec::{CodecError, Reader, Writer};
use tabmesh_base::{ContextId, DeltaId, Hash};
use tabmesh_blobs::{BlobRequest, MAX_MANIFEST_LEN};
use tabmesh_node::MAX_WIRE;

use crate::limits::{MESSAGE_MAX, MODULE_MAX};

/// The largest blob answer body: a [`tabmesh_blobs::BlobResponse`] carrying the largest manifest
/// (a chunk, 256 KiB, is smaller), plus its own tag, id, index and length.
pub const BLOB_RESPONSE_MAX: usize = MAX_MANIFEST_LEN + 64;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/tabmesh/sync/1");

/// A request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A node wire frame ([`tabmesh_node::Wire`]).
    Msg(Vec<u8>),
    /// The frame of an announced delta.
    Fetch {
        /// Its context.
        context: ContextId,
        /// Its id.
        delta: DeltaId,
    },
    /// The app module a context runs (a joiner without it asks its peers).
    Module {
        /// The context.
        context: ContextId,
        /// The module's hash.
        app: Hash,
    },
    /// A piece of a blob shared in a context (served only to a member of that context).
    Blob {
        /// The context the requester asks as a member of.
        context: ContextId,
        /// What it asks for.
        request: BlobRequest,
    },
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A [`Request::Msg`] arrived.
    Ack,
    /// The fetched delta's frame.
    Delta(Vec<u8>),
    /// The delta (or module) is not held here, or not served to this peer.
    Missing,
    /// The module's bytes (checked against the hash asked for).
    Module(Vec<u8>),
    /// A [`tabmesh_blobs::BlobResponse`], encoded (the fetch machine decodes and checks it).
    Blob(Vec<u8>),
    /// The request was refused: the requester is not a member of the context it named here, or
    /// the blob is not shared in that context.
    Refused,
}

impl Request {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Msg(bytes) => {
                w.u8(0).bytes(bytes);
            }
            Request::Fetch { context, delta } => {
                w.u8(1).id(context).id(delta);
            }
            Request::Module { context, app } => {
                w.u8(2).id(context).hash(app);
            }
            Request::Blob { context, request } => {
                w.u8(3).id(context).bytes(&request.encode());
            }
        }
        w.finish()
    }

    /// Decodes [`Request::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Request, CodecError> {
        let mut r = Reader::new(bytes)?;
        let req = match r.u8()? {
            0 => Request::Msg(r.bytes("message", MAX_WIRE)?.to_vec()),
            1 => Request::Fetch {
                context: r.id()?,
                delta: r.id()?,
            },
            2 => Request::Module {
                context: r.id()?,
                app: r.hash()?,
            },
            3 => Request::Blob {
                context: r.id()?,
                request: BlobRequest::decode(r.bytes("blob request", 64)?).map_err(
                    |e| match e {
                        tabmesh_blobs::BlobError::Codec(e) => e,
                        _ => CodecError::Invalid("blob request"),
                    },
                )?,
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "request",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }
}

impl Response {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Response::Ack => {
                w.u8(0);
            }
            Response::Delta(bytes) => {
                w.u8(1).bytes(bytes);
            }
            Response::Missing => {
                w.u8(2);
            }
            Response::Module(bytes) => {
                w.u8(3).bytes(bytes);
            }
            Response::Blob(bytes) => {
                w.u8(4).bytes(bytes);
            }
            Response::Refused => {
                w.u8(5);
            }
        }
        w.finish()
    }

    /// Decodes [`Response::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Response, CodecError> {
        let mut r = Reader::new(bytes)?;
        let resp = match r.u8()? {
            0 => Response::Ack,
            1 => Response::Delta(r.bytes("delta", MAX_WIRE)?.to_vec()),
            2 => Response::Missing,
            3 => Response::Module(r.bytes("module", MODULE_MAX)?.to_vec()),
            4 => Response::Blob(r.bytes("blob", BLOB_RESPONSE_MAX)?.to_vec()),
            5 => Response::Refused,
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "response",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

/// The request-response codec: whole messages, capped at [`MESSAGE_MAX`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Codec;

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(MESSAGE_MAX as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() > MESSAGE_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over {MESSAGE_MAX} bytes"),
        ));
    }
    Ok(buf)
}

fn invalid(e: CodecError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
    io.write_all(&bytes).await?;
    io.close().await
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        Request::decode(&read_capped(io).await?).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        Response::decode(&read_capped(io).await?).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, req.encode()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, resp.encode()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use request_response::Codec as _;

    #[tabmesh_testkit::test]
    fn requests_and_responses_round_trip() {
        for req in [
            Request::Msg(vec![1; 100]),
            Request::Fetch {
                context: ContextId([1; 32]),
                delta: DeltaId([2; 32]),
            },
            Request::Module {
                context: ContextId([1; 32]),
                app: Hash([4; 32]),
            },
            Request::Blob {
                context: ContextId([1; 32]),
                request: BlobRequest {
                    blob: tabmesh_blobs::BlobId([6; 32]),
                    what: tabmesh_blobs::Want::Chunk(7),
                },
            },
        ] {
            assert_eq!(Request::decode(&req.encode()).ok(), Some(req));
        }
        for resp in [
            Response::Ack,
            Response::Delta(vec![3; 10]),
            Response::Missing,
            Response::Module(vec![5; 20]),
            Response::Blob(vec![6; 30]),
            Response::Refused,
        ] {
            assert_eq!(Response::decode(&resp.encode()).ok(), Some(resp));
        }
        assert!(Request::decode(&[tabmesh_base::codec::VERSION, 9]).is_err());
        assert!(Response::decode(&[2, 0]).is_err());
    }

    #[tabmesh_testkit::test]
    fn any_module_the_runtime_accepts_fits_one_response() {
        let runtime = tabmesh_node::NodeConfig::default().limits.max_module_bytes;
        assert_eq!(MODULE_MAX, runtime);
        let big = Response::Module(vec![0; MODULE_MAX]);
        assert!(big.encode().len() <= MESSAGE_MAX);
        assert_eq!(Response::decode(&big.encode()).ok(), Some(big));
    }

    #[tabmesh_testkit::test]
    fn the_codec_caps_what_it_reads() {
        futures::executor::block_on(async {
            let mut codec = Codec;
            let req = Request::Msg(vec![5; 1000]);
            let mut io = futures::io::Cursor::new(Vec::new());
            codec
                .write_request(&PROTOCOL, &mut io, req.clone())
                .await
                .expect("written");
            let mut rd = futures::io::Cursor::new(io.into_inner());
            assert_eq!(codec.read_request(&PROTOCOL, &mut rd).await.ok(), Some(req));
            // One byte over the cap fails the stream.
            let mut big = futures::io::Cursor::new(vec![0u8; MESSAGE_MAX + 1]);
            let err = codec
                .read_request(&PROTOCOL, &mut big)
                .await
                .expect_err("too large");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // Garbage fails it too.
            let mut junk = futures::io::Cursor::new(vec![1u8, 7, 7]);
            assert!(codec.read_request(&PROTOCOL, &mut junk).await.is_err());
        });
    }
}
