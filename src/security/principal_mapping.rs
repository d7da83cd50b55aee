//! `ssl.principal.mapping.rules` (KIP-371): how a client certificate's distinguished name
//! becomes a principal name. Rules are tried in order; `RULE:pattern/replacement/[LU]`
//! applies when the pattern matches the whole name (replacement may use `$1`…, L or U
//! lower- or upper-cases the result); `DEFAULT` is the name as it is. When no rule
//! applies the client is not authenticated, as in Kafka.
use regex::Regex;

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace { pattern: Regex, replacement: String, case: Option<char> },
}

#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapper {
    fn default() -> Self {
        PrincipalMapper { rules: vec![Rule::Default] }
    }
}

/// Reads one `/`-delimited field (a `\/` stays in it, unescaped) from `s`; returns it and
/// the rest after the delimiter.
fn field(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<PrincipalMapper, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = field(after).ok_or_else(|| format!("unterminated rule pattern in {rules:?}"))?;
                let (replacement, after) =
                    field(after).ok_or_else(|| format!("unterminated rule replacement in {rules:?}"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad rule pattern: {e}"))?;
                // Kafka's `$1` is regex's `${1}`.
                let replacement =
                    Regex::new(r"\$(\d+)").expect("valid").replace_all(&replacement, "$${$1}").into_owned();
                out.push(Rule::Replace { pattern, replacement, case });
                rest = after;
            } else {
                return Err(format!("invalid rule at {rest:?}: expected RULE:pattern/replacement/[LU] or DEFAULT"));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if out.is_empty() {
            return Err("no rules".into());
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The principal name for distinguished name `dn`, or `None` if no rule applies.
    pub fn map(&self, dn: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Replace { pattern, replacement, case } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_examples() {
        // From Kafka's security documentation.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\nRULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\nDEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.map("O=Sluice,CN=Alice").as_deref(), Some("alice"));
        assert_eq!(m.map("O=nobody").as_deref(), Some("O=nobody"), "DEFAULT");
        let strict = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/U").unwrap();
        assert_eq!(strict.map("CN=bob").as_deref(), Some("BOB"));
        assert_eq!(strict.map("O=x,CN=bob"), None, "no rule applies: not authenticated");
        let slash = PrincipalMapper::parse(r"RULE:^CN=(.*)$/svc\/$1/").unwrap();
        assert_eq!(slash.map("CN=a").as_deref(), Some("svc/a"));
        assert!(PrincipalMapper::parse("RULE:^CN=(.*$/x/").is_err());
        assert!(PrincipalMapper::parse("NONSENSE").is_err());
        assert_eq!(PrincipalMapper::default().map("CN=x").as_deref(), Some("CN=x"));
    }
}
