//! Security: who a connection is (TLS, SASL) and what it may do (ACLs). Handlers ask
//! this module (through `RequestContext::authorized`), never decide themselves (DESIGN §9).
pub mod acl;
pub mod operations;
pub mod outbound;
pub mod principal;
pub mod principal_mapping;
pub mod quota;
pub mod sasl;
pub mod tls;

/// A listener's security setting, as Kafka reads it: `listener.name.<listener>.<key>`
/// (the name lower-cased) if set, else `<key>`; with the name of the key that was set.
pub fn listener_setting<'a>(
    keys: &'a std::collections::BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    if let Some(v) = keys.get(&scoped) {
        return Some((scoped, v.as_str()));
    }
    keys.get(key).map(|v| (key.to_string(), v.as_str()))
}
