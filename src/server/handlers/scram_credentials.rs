//! AlterUserScramCredentials v0 and DescribeUserScramCredentials v0 (KIP-554;
//! `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=…]' --entity-type users`,
//! `sluicectl user scram`): SCRAM credentials kept in the cluster metadata. The client
//! sends the salted password; the broker keeps the salt, the iterations and the keys
//! derived from it, never the password. Results are per user, as Kafka gives them: a user
//! whose alterations do not all check out is left unchanged.
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::operations::{AclOperation, ResourceType};
use crate::security::sasl::{ScramCredential, ScramMechanism};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

type Refusal = (ResponseError, String);

fn refusal(code: ResponseError, message: &str) -> Option<Refusal> {
    Some((code, message.to_string()))
}

pub async fn alter(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: AlterUserScramCredentialsRequest = req.decode()?;
    let image = ctx.shard.image();
    // Users in the order they first appear, each with its first refusal (if any).
    let mut users: Vec<(String, Option<Refusal>)> = Vec::new();
    let mut seen: std::collections::BTreeSet<(String, i8)> = Default::default();
    let note = |users: &mut Vec<(String, Option<Refusal>)>, user: &str, problem: Option<Refusal>| match users
        .iter_mut()
        .find(|(u, _)| u == user)
    {
        Some((_, p)) => {
            if p.is_none() {
                *p = problem;
            }
        }
        None => users.push((user.to_string(), problem)),
    };
    let allowed = ctx.authorized(AclOperation::Alter, ResourceType::Cluster, "kafka-cluster");
    let mut check = |user: &str, mechanism: i8| -> Option<Refusal> {
        if !allowed {
            return refusal(ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.");
        }
        if user.is_empty() {
            return refusal(ResponseError::UnacceptableCredential, "Username must not be empty");
        }
        if ScramMechanism::from_code(mechanism).is_none() {
            return refusal(ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism");
        }
        if !seen.insert((user.to_string(), mechanism)) {
            return refusal(
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            );
        }
        None
    };
    let mut deletions = Vec::new();
    for d in &r.deletions {
        let user = d.name.to_string();
        let mut problem = check(&user, d.mechanism);
        if problem.is_none() {
            let mechanism = ScramMechanism::from_code(d.mechanism).expect("checked").name().to_string();
            if !image.scram.get(&user).is_some_and(|m| m.contains_key(&mechanism)) {
                problem =
                    refusal(ResponseError::ResourceNotFound, "Attempt to delete a user credential that does not exist");
            }
            deletions.push((user.clone(), mechanism));
        }
        note(&mut users, &user, problem);
    }
    let mut upsertions = Vec::new();
    for u in &r.upsertions {
        let user = u.name.to_string();
        let mut problem = check(&user, u.mechanism);
        if problem.is_none() {
            let mechanism = ScramMechanism::from_code(u.mechanism).expect("checked");
            if u.iterations < ScramMechanism::MIN_ITERATIONS {
                problem = refusal(ResponseError::UnacceptableCredential, "Too few iterations");
            } else if u.iterations > ScramMechanism::MAX_ITERATIONS {
                problem = refusal(ResponseError::UnacceptableCredential, "Too many iterations");
            } else if u.salt.is_empty() || u.salted_password.is_empty() {
                problem = refusal(ResponseError::UnacceptableCredential, "Salt and salted password must not be empty");
            } else {
                let credential =
                    ScramCredential::from_salted_password(mechanism, &u.salted_password, &u.salt, u.iterations as u32);
                upsertions.push((user.clone(), mechanism.name().to_string(), credential));
            }
        }
        note(&mut users, &user, problem);
    }
    // A user with any refusal is left as it was.
    let refused = |user: &String| users.iter().any(|(u, p)| u == user && p.is_some());
    deletions.retain(|(u, _)| !refused(u));
    upsertions.retain(|(u, _, _)| !refused(u));
    let order: Vec<String> =
        deletions.iter().map(|(u, _)| u.clone()).chain(upsertions.iter().map(|(u, ..)| u.clone())).collect();
    if !order.is_empty() {
        let n = order.len();
        let outcomes = match controller_call(&ctx.shard, ControllerOp::AlterScram { deletions, upsertions }).await {
            Ok(ControllerResult::Changed(results)) => results,
            Ok(_) => vec![Err(crate::shard::controller::ControllerError::NotAvailable("unexpected answer".into())); n],
            Err(e) => vec![Err(e); n],
        };
        for (user, outcome) in order.iter().zip(outcomes) {
            if let Err(e) = outcome {
                note(&mut users, user, Some(controller_error(e)));
            }
        }
    }
    let mut resp = AlterUserScramCredentialsResponse::default();
    for (user, problem) in users {
        let mut result = AlterUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(user);
        if let Some((code, message)) = problem {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        resp.results.push(result);
    }
    respond(req, &resp)
}

pub fn describe(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: DescribeUserScramCredentialsRequest = req.decode()?;
    let image = ctx.shard.image();
    let mut resp = DescribeUserScramCredentialsResponse::default();
    if !ctx.authorized(AclOperation::Describe, ResourceType::Cluster, "kafka-cluster") {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        return respond(req, &resp);
    }
    let info = |user: &str| -> Vec<CredentialInfo> {
        image
            .scram
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|(m, c)| {
                let mut i = CredentialInfo::default();
                i.mechanism = ScramMechanism::from_name(m)?.code();
                i.iterations = c.iterations as i32;
                Some(i)
            })
            .collect()
    };
    let asked: Vec<String> = r.users.iter().flatten().map(|u| u.name.to_string()).collect();
    if asked.is_empty() {
        for user in image.scram.keys() {
            let mut result = DescribeUserScramCredentialsResult::default();
            result.user = StrBytes::from_string(user.clone());
            result.credential_infos = info(user);
            resp.results.push(result);
        }
        return respond(req, &resp);
    }
    for (i, user) in asked.iter().enumerate() {
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(user.clone());
        if asked.iter().filter(|u| *u == user).count() > 1 {
            if asked[..i].contains(user) {
                continue;
            }
            result.error_code = ResponseError::DuplicateResource.code();
            result.error_message = Some(StrBytes::from_static_str(
                "Cannot describe SCRAM credentials for the same user twice in a single request",
            ));
        } else if !image.scram.contains_key(user) {
            result.error_code = ResponseError::ResourceNotFound.code();
            result.error_message = Some(StrBytes::from_static_str("Attempt to describe nonexistent user."));
        } else {
            result.credential_infos = info(user);
        }
        resp.results.push(result);
    }
    respond(req, &resp)
}
