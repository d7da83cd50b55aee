//! ACLs as Kafka's StandardAuthorizer keeps them: bindings of (resource pattern, principal,
//! host, operation, allow/deny), stored in the cluster metadata by id, and an index built
//! from them that answers "may this principal do this" without allocating. The decision
//! rules (deny wins, implied operations, super users, no-ACL default) are Kafka's.
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::operations::{AclOperation, ResourceType};
use super::principal::KafkaPrincipal;

/// How a binding's resource name matches (Kafka's `PatternType`; MATCH and ANY are for
/// filters only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum PatternType {
    Any = 1,
    Match = 2,
    Literal = 3,
    Prefixed = 4,
}

impl PatternType {
    pub fn from_code(code: i8) -> Option<PatternType> {
        Some(match code {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        })
    }
}

/// Kafka's `AclPermissionType` (ANY for filters only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Permission {
    Any = 1,
    Deny = 2,
    Allow = 3,
}

impl Permission {
    pub fn from_code(code: i8) -> Option<Permission> {
        Some(match code {
            1 => Permission::Any,
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => return None,
        })
    }
}

/// The wildcard resource name and host, and the wildcard principal's name.
pub const WILDCARD: &str = "*";

/// One ACL (Kafka's `AclBinding`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// "User:alice", or "User:*" for every user.
    pub principal: String,
    /// An IP address, or "*".
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclBinding {
    /// Why Kafka would refuse to create this binding, if it would.
    pub fn invalid(&self) -> Option<String> {
        if matches!(self.resource_type, ResourceType::Any) {
            return Some("Invalid resource type ANY".into());
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Some(format!("Invalid pattern type {:?}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Any) {
            return Some("Invalid operation ANY".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Some("Invalid permission type ANY".into());
        }
        if self.resource_name.is_empty() {
            return Some("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != super::operations::CLUSTER_NAME {
            return Some("The only valid name for the CLUSTER resource is kafka-cluster".into());
        }
        match self.principal.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
            _ => return Some(format!("Could not parse principal from `{}` (no colon is present)", self.principal)),
        }
        if self.host != WILDCARD && self.host.parse::<IpAddr>().is_err() {
            return Some(format!("Invalid host {:?}: an IP address or *", self.host));
        }
        None
    }
}

/// A DescribeAcls / DeleteAcls filter (Kafka's `AclBindingFilter`): `None` matches any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        let resource_type = self.resource_type == ResourceType::Any || self.resource_type == b.resource_type;
        let name_and_pattern = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(n)) => *n == b.resource_name,
            (PatternType::Match, None) => true,
            // MATCH: the bindings that would apply to a resource of that literal name.
            (PatternType::Match, Some(n)) => match b.pattern_type {
                PatternType::Literal => b.resource_name == *n || b.resource_name == WILDCARD,
                PatternType::Prefixed => n.starts_with(&b.resource_name),
                _ => false,
            },
            (p, None) => p == b.pattern_type,
            (p, Some(n)) => p == b.pattern_type && *n == b.resource_name,
        };
        resource_type
            && name_and_pattern
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }
}

/// One binding as the index keeps it, with the principal split and the host parsed.
#[derive(Clone, Debug)]
struct Entry {
    principal_type: String,
    /// "*": any principal of that type.
    principal_name: String,
    /// None: any host.
    host: Option<IpAddr>,
    operation: AclOperation,
    allow: bool,
}

impl Entry {
    fn applies_to(&self, who: &KafkaPrincipal, host: Option<IpAddr>) -> bool {
        self.principal_type == who.principal_type
            && (self.principal_name == WILDCARD || self.principal_name == who.name)
            && (self.host.is_none() || self.host == host)
    }
}

/// The ACLs of the cluster: by id (what the metadata records name) and indexed by resource.
#[derive(Clone, Debug, Default)]
pub struct AclSet {
    by_id: BTreeMap<Uuid, AclBinding>,
    /// By resource type code: literal names ("*" included) → entries.
    literal: Vec<HashMap<String, Vec<Entry>>>,
    /// By resource type code: prefixes → entries, with the prefix lengths in use, so that
    /// a check probes one map lookup per length instead of scanning every prefix.
    prefixed: Vec<Prefixes>,
}

#[derive(Clone, Debug, Default)]
struct Prefixes {
    by_prefix: HashMap<String, Vec<Entry>>,
    /// The distinct prefix lengths, in bytes, ascending.
    lengths: Vec<usize>,
}

impl Prefixes {
    /// The entries of every prefix of `name`.
    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.lengths
            .iter()
            .take_while(move |&&n| n <= name.len())
            .filter(move |&&n| name.is_char_boundary(n))
            .filter_map(move |&n| self.by_prefix.get(&name[..n]))
            .flatten()
    }
}

impl Serialize for AclSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AclSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AclSet, D::Error> {
        let by_id = BTreeMap::<Uuid, AclBinding>::deserialize(d)?;
        let mut set = AclSet::default();
        for (id, b) in by_id {
            set.insert(id, b);
        }
        Ok(set)
    }
}

const TYPES: usize = 8;

impl AclSet {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &AclBinding)> {
        self.by_id.iter()
    }

    /// The id of a binding equal to `b`, if there is one.
    pub fn find(&self, b: &AclBinding) -> Option<Uuid> {
        self.by_id.iter().find(|(_, x)| *x == b).map(|(id, _)| *id)
    }

    pub fn insert(&mut self, id: Uuid, b: AclBinding) {
        self.by_id.insert(id, b);
        self.reindex();
    }

    pub fn remove(&mut self, id: &Uuid) {
        if self.by_id.remove(id).is_some() {
            self.reindex();
        }
    }

    /// ACL changes are rare and sets small: the index is rebuilt whole.
    fn reindex(&mut self) {
        self.literal = vec![HashMap::new(); TYPES];
        self.prefixed = vec![Prefixes::default(); TYPES];
        for b in self.by_id.values() {
            let Some((principal_type, principal_name)) = b.principal.split_once(':') else { continue };
            let entry = Entry {
                principal_type: principal_type.to_string(),
                principal_name: principal_name.to_string(),
                host: b.host.parse().ok(),
                operation: b.operation,
                allow: b.permission == Permission::Allow,
            };
            let t = b.resource_type as usize % TYPES;
            match b.pattern_type {
                PatternType::Prefixed => {
                    let p = &mut self.prefixed[t];
                    p.by_prefix.entry(b.resource_name.clone()).or_default().push(entry);
                    if let Err(at) = p.lengths.binary_search(&b.resource_name.len()) {
                        p.lengths.insert(at, b.resource_name.len());
                    }
                }
                _ => self.literal[t].entry(b.resource_name.clone()).or_default().push(entry),
            }
        }
    }

    /// The entries whose pattern covers resource `name` of type `t`.
    fn covering<'a>(&'a self, t: ResourceType, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let t = t as usize % TYPES;
        let literal = self.literal.get(t);
        let exact = literal.and_then(|m| m.get(name)).into_iter().flatten();
        let wildcard = literal.and_then(|m| m.get(WILDCARD)).into_iter().flatten();
        let prefixed = self.prefixed.get(t).into_iter().flat_map(move |p| p.of(name));
        exact.chain(wildcard).chain(prefixed)
    }

    /// Kafka's decision for (principal, host, operation, resource), super users and the
    /// no-ACL default aside: `Some(true)` allowed, `Some(false)` denied, `None` no ACL
    /// names the resource at all.
    pub fn decide(
        &self,
        who: &KafkaPrincipal,
        host: Option<IpAddr>,
        op: AclOperation,
        t: ResourceType,
        name: &str,
    ) -> Option<bool> {
        let mut any = false;
        let mut allowed = false;
        for e in self.covering(t, name) {
            any = true;
            if !e.applies_to(who, host) {
                continue;
            }
            if !e.allow && (e.operation == op || e.operation == AclOperation::All) {
                return Some(false);
            }
            allowed |= e.allow && e.operation.allows(op);
        }
        any.then_some(allowed)
    }

    /// Whether some ALLOW binding for `op` on a resource of type `t` applies to `who`,
    /// whatever the name (Kafka's `authorizeByResourceType`, used for the idempotent
    /// producer: WRITE on any topic).
    pub fn allows_some(&self, who: &KafkaPrincipal, host: Option<IpAddr>, op: AclOperation, t: ResourceType) -> bool {
        let t = t as usize % TYPES;
        let literal = self.literal.get(t).into_iter().flat_map(|m| m.values().flatten());
        let prefixed = self.prefixed.get(t).into_iter().flat_map(|p| p.by_prefix.values().flatten());
        literal.chain(prefixed).any(|e| e.allow && e.operation.allows(op) && e.applies_to(who, host))
    }
}

/// The authorizer's settings (`authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Clone, Debug, Default)]
pub struct AuthorizerConfig {
    /// Whether ACLs are enforced: `authorizer.class.name` names Kafka's StandardAuthorizer
    /// (or the older AclAuthorizer). Without it everything is allowed and the ACL APIs
    /// answer SECURITY_DISABLED, as in Kafka.
    pub enabled: bool,
    pub super_users: Vec<KafkaPrincipal>,
    pub allow_everyone_if_no_acl_found: bool,
}

/// The authorizer class names Sluice takes as "enforce ACLs".
pub const AUTHORIZER_CLASSES: &[&str] =
    &["org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer"];

impl AuthorizerConfig {
    /// From the broker's keys; a bad value is an error naming the key.
    pub fn from_keys(keys: &BTreeMap<String, String>) -> Result<AuthorizerConfig, String> {
        let mut c = AuthorizerConfig::default();
        if let Some(class) = keys.get("authorizer.class.name").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            if !AUTHORIZER_CLASSES.contains(&class) {
                return Err(format!(
                    "authorizer.class.name: {class:?} is not supported; use {}",
                    AUTHORIZER_CLASSES[0]
                ));
            }
            c.enabled = true;
        }
        if let Some(users) = keys.get("super.users") {
            for u in users.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                let (t, n) = u.split_once(':').ok_or_else(|| format!("super.users: {u:?} is not TYPE:NAME"))?;
                c.super_users.push(KafkaPrincipal { principal_type: t.to_string(), name: n.to_string() });
            }
        }
        if let Some(v) = keys.get("allow.everyone.if.no.acl.found") {
            c.allow_everyone_if_no_acl_found = match v.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("allow.everyone.if.no.acl.found: {v:?} is not true or false")),
            };
        }
        Ok(c)
    }

    /// The whole decision.
    pub fn authorize(
        &self,
        acls: &AclSet,
        who: &KafkaPrincipal,
        host: Option<IpAddr>,
        op: AclOperation,
        t: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == who) {
            return true;
        }
        acls.decide(who, host, op, t, name).unwrap_or(self.allow_everyone_if_no_acl_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        t: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: AclOperation,
        allow: bool,
    ) -> AclBinding {
        AclBinding {
            resource_type: t,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission: if allow { Permission::Allow } else { Permission::Deny },
        }
    }

    fn set(bindings: &[AclBinding]) -> AclSet {
        let mut s = AclSet::default();
        for b in bindings {
            s.insert(Uuid::new_v4(), b.clone());
        }
        s
    }

    #[test]
    fn literal_prefixed_wildcard_and_deny_wins() {
        use AclOperation::*;
        use PatternType::*;
        use ResourceType::*;
        let alice = KafkaPrincipal::user("alice");
        let bob = KafkaPrincipal::user("bob");
        let s = set(&[
            acl(Topic, "orders", Literal, "User:alice", Write, true),
            acl(Topic, "logs-", Prefixed, "User:alice", Read, true),
            acl(Topic, "logs-secret", Literal, "User:alice", Read, false),
            acl(Topic, "*", Literal, "User:bob", Describe, true),
        ]);
        let d = |who, op, name| s.decide(who, None, op, Topic, name);
        assert_eq!(d(&alice, Write, "orders"), Some(true));
        assert_eq!(d(&alice, Describe, "orders"), Some(true), "WRITE implies DESCRIBE");
        assert_eq!(d(&alice, Read, "orders"), Some(false));
        assert_eq!(d(&alice, Read, "logs-app"), Some(true), "prefixed");
        assert_eq!(d(&alice, Read, "logs-secret"), Some(false), "deny wins over the prefixed allow");
        assert_eq!(d(&alice, Describe, "logs-secret"), Some(true), "a deny of READ does not deny DESCRIBE");
        assert_eq!(d(&bob, Describe, "anything"), Some(true), "wildcard resource");
        assert_eq!(d(&bob, Write, "orders"), Some(false));
        assert_eq!(s.decide(&alice, None, Read, Group, "g"), None, "no ACL names the group");
        assert!(s.allows_some(&alice, None, Write, Topic));
        assert!(!s.allows_some(&bob, None, Write, Topic));
    }

    #[test]
    fn principals_hosts_and_super_users() {
        use AclOperation::*;
        let mut b = acl(ResourceType::Group, "g", PatternType::Literal, "User:*", Read, true);
        b.host = "10.0.0.1".into();
        let s = set(&[b]);
        let carol = KafkaPrincipal::user("carol");
        let here: Option<IpAddr> = "10.0.0.1".parse().ok();
        let there: Option<IpAddr> = "10.0.0.2".parse().ok();
        assert_eq!(s.decide(&carol, here, Read, ResourceType::Group, "g"), Some(true));
        assert_eq!(s.decide(&carol, there, Read, ResourceType::Group, "g"), Some(false));
        let keys: BTreeMap<String, String> = [
            ("authorizer.class.name".to_string(), AUTHORIZER_CLASSES[0].to_string()),
            ("super.users".to_string(), "User:admin;User:broker".to_string()),
        ]
        .into();
        let c = AuthorizerConfig::from_keys(&keys).unwrap();
        assert!(c.authorize(&s, &KafkaPrincipal::user("admin"), there, Read, ResourceType::Group, "g"));
        assert!(!c.authorize(&s, &carol, there, Read, ResourceType::Group, "g"));
        assert!(!c.authorize(&s, &carol, there, Read, ResourceType::Topic, "t"), "no ACL: denied by default");
        let open = AuthorizerConfig { allow_everyone_if_no_acl_found: true, ..c.clone() };
        assert!(open.authorize(&s, &carol, there, Read, ResourceType::Topic, "t"));
        assert!(AuthorizerConfig::default().authorize(&s, &carol, there, Read, ResourceType::Group, "g"), "disabled");
    }

    #[test]
    fn filters_match_as_kafkas_do() {
        use AclOperation::*;
        let lit = acl(ResourceType::Topic, "orders", PatternType::Literal, "User:alice", Write, true);
        let pre = acl(ResourceType::Topic, "ord", PatternType::Prefixed, "User:alice", Write, true);
        let filter = |pattern, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: name.map(String::from),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: Any,
            permission: Permission::Any,
        };
        assert!(filter(PatternType::Match, Some("orders")).matches(&lit));
        assert!(filter(PatternType::Match, Some("orders")).matches(&pre));
        assert!(!filter(PatternType::Literal, Some("orders")).matches(&pre));
        assert!(filter(PatternType::Any, None).matches(&pre));
        assert!(!filter(PatternType::Prefixed, Some("orders")).matches(&pre));
    }

    #[test]
    fn the_set_survives_serialization() {
        let s = set(&[acl(ResourceType::Topic, "t", PatternType::Literal, "User:a", AclOperation::Read, true)]);
        let back: AclSet = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        let a = KafkaPrincipal::user("a");
        assert_eq!(back.decide(&a, None, AclOperation::Read, ResourceType::Topic, "t"), Some(true));
    }
}
