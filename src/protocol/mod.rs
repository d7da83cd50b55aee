//! Wire-level pieces that are not generated message types: the record-batch header
//! (read and patched in place) and the request/response frame codec.
pub mod batch;
pub mod control;
pub mod fetch_response;
pub mod frame;
pub mod internal;
pub mod record_set;
pub mod record_walk;
