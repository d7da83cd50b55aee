//! Values of configuration keys: properties text, numbers, listeners, roles, voters.
use std::collections::BTreeMap;

use super::{invalid, ConfigError, Listener, TimestampType};

pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = if logical.is_empty() { raw.trim_start() } else { raw.trim() };
        if logical.is_empty() {
            start_line = i + 1;
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            logical.push_str(stripped);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(|c| c == '=' || c == ':').or_else(|| entry.find(char::is_whitespace));
        match split {
            Some(at) => {
                let key = entry[..at].trim().to_string();
                let value = entry[at + 1..].trim().to_string();
                if key.is_empty() {
                    return Err(ConfigError::Syntax { line: start_line, text: entry });
                }
                out.push((key, value));
            }
            None => out.push((entry.trim().to_string(), String::new())),
        }
    }
    Ok(out)
}

pub(super) fn parse_int<T>(key: &str, value: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T =
        value.trim().parse().map_err(|_| invalid(key, value, format!("expected an integer in [{min}, {max}]")))?;
    if v < min || v > max {
        return Err(invalid(key, value, format!("must be in [{min}, {max}]")));
    }
    Ok(v)
}

/// A fraction in [0, 1] (Kafka's `min.cleanable.dirty.ratio`).
pub(super) fn parse_ratio(key: &str, value: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(invalid(key, value, "expected a number in [0, 1]")),
    }
}

pub(super) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

pub fn parse_timestamp_type(key: &str, value: &str) -> Result<TimestampType, ConfigError> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
    }
}

/// Parses `PLAINTEXT://host:port,OTHER://host:port`.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let port: u16 = port.parse().map_err(|_| invalid(key, value, "port must be in [0, 65535]"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(invalid(key, value, "a listener name is letters, digits, '_' and '-'"));
        }
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(invalid(key, value, "each listener name may appear once"));
        }
        out.push(Listener { name: name.to_string(), host: host.to_string(), port });
    }
    if out.is_empty() {
        return Err(invalid(key, value, "at least one listener is required"));
    }
    Ok(out)
}

/// Parses `admin.listeners`: one `host:port` or `http://host:port`; empty disables it.
pub fn parse_admin_listener(key: &str, value: &str) -> Result<Option<Listener>, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let rest = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(invalid(key, value, "only http:// is supported (no TLS on the admin listener)")),
        None => v,
    };
    if rest.contains(',') {
        return Err(invalid(key, value, "exactly one address is supported"));
    }
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, value, "expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid(key, value, "port must be in [0, 65535]"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Some(Listener { name: "http".into(), host: host.to_string(), port }))
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

pub(super) fn parse_roles(key: &str, value: &str) -> Result<ProcessRoles, ConfigError> {
    let mut roles = ProcessRoles { broker: false, controller: false };
    for r in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match r {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            _ => return Err(invalid(key, value, "roles are broker and controller")),
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(key, value, "at least one of broker, controller"));
    }
    Ok(roles)
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub fn parse_voters(key: &str, value: &str) -> Result<BTreeMap<i32, (String, u16)>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || invalid(key, value, "expected id@host:port,...");
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if id < 0 || out.insert(id, (host, port)).is_some() {
            return Err(invalid(key, value, "each voter id once, and not negative"));
        }
    }
    Ok(out)
}
