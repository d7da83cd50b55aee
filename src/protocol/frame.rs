//! The request/response frame codec: the 4-byte size prefix is handled by the connection;
//! here a frame body becomes a parsed request header plus the undecoded body, and a
//! response message becomes a complete, size-prefixed frame.
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("cannot decode request header: {0}")]
    BadHeader(String),
    #[error("cannot decode {api:?} v{version} body: {reason}")]
    BadBody { api: ApiKey, version: i16, reason: String },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
}

/// A request whose header is parsed and whose body is still bytes.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
    /// Decodes the body as `T` at this request's version.
    pub fn decode<T: Decodable>(&self) -> Result<T, FrameError> {
        self.decode_from(&mut self.body.clone())
    }
    /// Decodes `body` (this request's body, taken out of it) as `T` at this request's version.
    pub fn decode_from<T: Decodable>(&self, body: &mut Bytes) -> Result<T, FrameError> {
        T::decode(body, self.version()).map_err(|e| FrameError::BadBody {
            api: self.api_key,
            version: self.version(),
            reason: e.to_string(),
        })
    }
}

/// Reads the api key, version and correlation id without decoding the rest; used to answer
/// requests whose header cannot be decoded at the version they name.
pub fn peek_ids(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((key, version, corr))
}

/// Parses the request header of a frame body (without its size prefix).
pub fn parse_request(frame: Bytes) -> Result<Request, FrameError> {
    let (key, version, _) = peek_ids(&frame).ok_or(FrameError::TooShort(frame.len()))?;
    let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    // An ApiVersions request newer than we know still has a v2 header (KIP-511), and
    // header versions of other APIs only depend on the version being flexible or not.
    let header_version = if api_key == ApiKey::ApiVersions && version > 3 {
        2
    } else if version < 0 {
        return Err(FrameError::BadHeader(format!("negative version {version}")));
    } else {
        api_key.request_header_version(version.min(api_key.valid_versions().max))
    };
    let mut buf = frame;
    let mut header =
        RequestHeader::decode(&mut buf, header_version).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    // The client id is a slice of the frame; an owned copy lets the body be the frame's only
    // owner (Produce keeps that buffer instead of copying it).
    header.client_id = header.client_id.map(|c| StrBytes::from_string(c.to_string()));
    header.unknown_tagged_fields.clear();
    Ok(Request { api_key, header, body: buf })
}

/// Encodes a complete response frame: size, response header, body.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, FrameError> {
    let err = |e: anyhow::Error| FrameError::Encode { api: api_key, version, reason: e.to_string() };
    let header_version = api_key.response_header_version(version);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let header_size = header.compute_size(header_version).map_err(err)?;
    let body_size = body.compute_size(version).map_err(err)?;
    let total = header_size + body_size;
    let mut out = BytesMut::with_capacity(4 + total);
    out.put_i32(total as i32);
    header.encode(&mut out, header_version).map_err(err)?;
    body.encode(&mut out, version).map_err(err)?;
    debug_assert_eq!(out.len(), 4 + total);
    Ok(out.freeze())
}
