//! Security: who may do what. So far only the answer Kafka gives without an authorizer:
//! every operation a resource type supports is allowed. ACLs, principals, SASL and quotas
//! will live here (DESIGN §9); handlers ask this module, never decide themselves.
pub mod operations;
pub mod principal;
pub mod sasl;
pub mod tls;
