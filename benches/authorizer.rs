//! What an ACL check costs on the produce and fetch paths: `AuthorizerConfig::authorize`
//! against ACL sets of growing size (literal, prefixed and wildcard bindings for many
//! users), for an allowed and a denied principal. It allocates nothing and takes no lock;
//! this measures the time.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice::security::acl::{AclBinding, AclSet, AuthorizerConfig, PatternType, Permission};
use sluice::security::operations::{AclOperation, ResourceType};
use sluice::security::principal::KafkaPrincipal;

fn acls(users: usize) -> AclSet {
    let mut set = AclSet::default();
    for u in 0..users {
        for (name, pattern, op) in [
            (format!("orders-{u}"), PatternType::Literal, AclOperation::Write),
            (format!("logs-{u}-"), PatternType::Prefixed, AclOperation::Read),
            (format!("group-{u}"), PatternType::Literal, AclOperation::Read),
        ] {
            let t = if name.starts_with("group") { ResourceType::Group } else { ResourceType::Topic };
            set.insert(
                uuid::Uuid::new_v4(),
                AclBinding {
                    resource_type: t,
                    resource_name: name,
                    pattern_type: pattern,
                    principal: format!("User:user{u}"),
                    host: "*".into(),
                    operation: op,
                    permission: Permission::Allow,
                },
            );
        }
    }
    set
}

fn bench(c: &mut Criterion) {
    let config = AuthorizerConfig { enabled: true, super_users: Vec::new(), allow_everyone_if_no_acl_found: false };
    let host = Some("10.0.0.7".parse().unwrap());
    for users in [10, 1000] {
        let set = acls(users);
        let who = KafkaPrincipal::user("user7");
        let stranger = KafkaPrincipal::user("mallory");
        c.bench_function(&format!("authorize produce, {} ACLs, allowed", users * 3), |b| {
            b.iter(|| {
                black_box(config.authorize(
                    &set,
                    black_box(&who),
                    host,
                    AclOperation::Write,
                    ResourceType::Topic,
                    black_box("orders-7"),
                ))
            })
        });
        c.bench_function(&format!("authorize fetch via prefix, {} ACLs, denied", users * 3), |b| {
            b.iter(|| {
                black_box(config.authorize(
                    &set,
                    black_box(&stranger),
                    host,
                    AclOperation::Read,
                    ResourceType::Topic,
                    black_box("logs-7-app"),
                ))
            })
        });
    }
    let off = AuthorizerConfig::default();
    let set = acls(10);
    let who = KafkaPrincipal::user("user7");
    c.bench_function("authorize with no authorizer configured", |b| {
        b.iter(|| black_box(off.authorize(&set, &who, host, AclOperation::Write, ResourceType::Topic, "orders-7")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
