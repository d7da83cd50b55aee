//! The recommended values, read from the files in `tuning/` that sluicectl compiles in:
//! `tuning/profiles/latency.toml` (CPU, block devices, THP, clock, limits, ballast) and
//! `tuning/sysctl.d/90-sluice.conf` (kernel sysctls, each with its "why" in the comment
//! above it). What the package installs is therefore exactly what `tune check` expects.

/// `tuning/profiles/latency.toml`.
const PROFILE_TOML: &str = include_str!("../../../tuning/profiles/latency.toml");
/// `tuning/sysctl.d/90-sluice.conf`.
const SYSCTL_CONF: &str = include_str!("../../../tuning/sysctl.d/90-sluice.conf");

/// The non-sysctl settings of the profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub cpu_governor: String,
    pub clocksource: String,
    pub thp_enabled: String,
    pub block_scheduler: String,
    pub block_nomerges: u64,
    pub nofile_min: u64,
    /// Only "unlimited" is meaningful today; kept as text to print it as the profile says.
    pub memlock: String,
    pub ballast_bytes: u64,
    pub sysctls: Vec<Sysctl>,
}

/// One line of the sysctl.d file.
#[derive(Debug, Clone)]
pub struct Sysctl {
    /// Dotted name, e.g. `fs.aio-max-nr`.
    pub key: String,
    /// Recommended value, whitespace-normalized.
    pub value: String,
    /// The comment block right above the key.
    pub why: String,
}

impl Sysctl {
    /// The file under procfs, e.g. `/proc/sys/fs/aio-max-nr`.
    pub fn proc_path(&self) -> String {
        format!("/proc/sys/{}", self.key.replace('.', "/"))
    }

    /// How a current value compares with the recommended one. Capacity-like settings are
    /// fine when larger, swappiness when smaller; everything else must match.
    pub fn rule(&self) -> Rule {
        match self.key.as_str() {
            "vm.swappiness" => Rule::AtMost,
            "fs.aio-max-nr" | "net.core.somaxconn" | "net.ipv4.tcp_max_syn_backlog" | "net.core.netdev_max_backlog" => {
                Rule::AtLeast
            }
            _ => Rule::Exact,
        }
    }

    /// True when `current` satisfies the recommendation.
    pub fn is_ok(&self, current: &str) -> bool {
        let current = normalize(current);
        match (self.rule(), current.parse::<u64>(), self.value.parse::<u64>()) {
            (Rule::AtLeast, Ok(c), Ok(r)) => c >= r,
            (Rule::AtMost, Ok(c), Ok(r)) => c <= r,
            _ => current == self.value,
        }
    }

    /// The recommended value as the table shows it (">= 1048576").
    pub fn shown(&self) -> String {
        match self.rule() {
            Rule::AtLeast => format!(">= {}", self.value),
            Rule::AtMost => format!("<= {}", self.value),
            Rule::Exact => self.value.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    AtLeast,
    AtMost,
    Exact,
}

/// Collapses runs of whitespace (procfs separates multi-value sysctls with tabs).
pub fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The compiled-in profile. An error names the file and line, and can only come from an
/// edit of `tuning/` (every `tune` test would then fail).
pub fn load() -> Result<Profile, String> {
    let kv = parse_flat_toml(PROFILE_TOML).map_err(|e| format!("tuning/profiles/latency.toml: {e}"))?;
    let get = |key: &str| -> Result<&str, String> {
        kv.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("tuning/profiles/latency.toml: missing key '{key}'"))
    };
    let num = |key: &str| -> Result<u64, String> {
        get(key)?.parse().map_err(|_| format!("tuning/profiles/latency.toml: '{key}' must be an integer"))
    };
    Ok(Profile {
        cpu_governor: get("cpu_governor")?.to_string(),
        clocksource: get("clocksource")?.to_string(),
        thp_enabled: get("thp_enabled")?.to_string(),
        block_scheduler: get("block_scheduler")?.to_string(),
        block_nomerges: num("block_nomerges")?,
        nofile_min: num("nofile_min")?,
        memlock: get("memlock")?.to_string(),
        ballast_bytes: num("ballast_bytes")?,
        sysctls: parse_sysctl_conf(SYSCTL_CONF).map_err(|e| format!("tuning/sysctl.d/90-sluice.conf: {e}"))?,
    })
}

/// `key = value` lines, `#` comments; values are integers (underscores allowed, as in
/// TOML) or double-quoted strings without escapes. Returns values unquoted.
fn parse_flat_toml(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: expected key = value", n + 1))?;
        let v = v.trim();
        let value = if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            s.to_string()
        } else if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '_') {
            v.replace('_', "")
        } else {
            return Err(format!("line {}: value must be an integer or a \"string\"", n + 1));
        };
        out.push((k.trim().to_string(), value));
    }
    Ok(out)
}

/// sysctl.d syntax (`key = value`, comments start with `#` or `;`); the contiguous comment
/// lines right above a key become its `why`.
fn parse_sysctl_conf(text: &str) -> Result<Vec<Sysctl>, String> {
    let mut out = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(c) = line.strip_prefix('#').or_else(|| line.strip_prefix(';')) {
            comment.push(c.trim());
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| format!("line {}: expected key = value", n + 1))?;
        if comment.is_empty() {
            return Err(format!("line {}: '{}' needs a comment saying why", n + 1, k.trim()));
        }
        // Lower-cased like the other rows' reasons: the file's comments are sentences.
        let why = comment.join(" ");
        let why = why.chars().take(1).flat_map(char::to_lowercase).chain(why.chars().skip(1)).collect();
        out.push(Sysctl { key: k.trim().to_string(), value: normalize(v), why });
        comment.clear();
    }
    Ok(out)
}
