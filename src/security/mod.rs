//! Security: who may do what. So far only the answer Kafka gives without an authorizer:
//! every operation a resource type supports is allowed. ACLs, principals, SASL and quotas
//! will live here (DESIGN §9); handlers ask this module, never decide themselves.
pub mod operations;
pub mod principal;
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
