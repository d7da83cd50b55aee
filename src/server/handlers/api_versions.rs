//! ApiVersions v0–3. A request at a version we do not know gets a v0 response with
//! UNSUPPORTED_VERSION and our version ranges, so the client retries at one we support.
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;

use super::{respond, HandlerResult, SUPPORTED};
use crate::protocol::frame::{encode_response, Request};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 3;

pub fn handle(req: &Request) -> HandlerResult {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key as i16;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect();
    let version = req.version();
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        resp.error_code = ResponseError::UnsupportedVersion.code();
        return encode_response(req.api_key, 0, req.correlation_id(), &resp).map(super::Reply::Frame);
    }
    respond(req, &resp)
}
