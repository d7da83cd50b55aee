//! CreateAcls, DescribeAcls and DeleteAcls v0–3 (`kafka-acls.sh`, `Admin.createAcls`,
//! `sluicectl acl`): ACLs kept in the cluster metadata, as KRaft's StandardAuthorizer keeps
//! them. Without `authorizer.class.name` each answers SECURITY_DISABLED, as Kafka does.
//! Changing ACLs needs ALTER on the cluster, listing them DESCRIBE.
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::config_common::controller_error;
use super::{controller_call, respond, HandlerResult};
use crate::protocol::frame::Request;
use crate::security::acl::{AclBinding, AclFilter, PatternType, Permission};
use crate::security::operations::{AclOperation, ResourceType};
use crate::server::context::RequestContext;
use crate::shard::controller::{ControllerError, ControllerOp, ControllerResult};

pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 3;

const DISABLED: &str = "No Authorizer is configured.";
const CLUSTER_DENIED: &str = "Cluster authorization failed.";

/// v0 has no pattern type: LITERAL for bindings, LITERAL for filters (Kafka's defaults).
fn pattern(code: i8) -> Option<PatternType> {
    if code == 0 {
        Some(PatternType::Literal)
    } else {
        PatternType::from_code(code)
    }
}

fn filter(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Option<AclFilter> {
    Some(AclFilter {
        resource_type: ResourceType::from_code(resource_type)?,
        resource_name: name.as_ref().map(|n| n.to_string()),
        pattern_type: pattern(pattern_type)?,
        principal: principal.as_ref().map(|p| p.to_string()),
        host: host.as_ref().map(|h| h.to_string()),
        operation: AclOperation::from_code(operation)?,
        permission: Permission::from_code(permission)?,
    })
}

fn message(s: &str) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.to_string()))
}

/// Why every item of the request is refused, if it is: no authorizer, or `op` on the
/// cluster not allowed.
fn refusal(ctx: &RequestContext, op: AclOperation) -> Option<(ResponseError, &'static str)> {
    if !ctx.shard.config.authorizer.enabled {
        Some((ResponseError::SecurityDisabled, DISABLED))
    } else if !ctx.cluster_authorized(op) {
        Some((ResponseError::ClusterAuthorizationFailed, CLUSTER_DENIED))
    } else {
        None
    }
}

async fn call(ctx: &RequestContext, op: ControllerOp, n: usize) -> Vec<Result<(), ControllerError>> {
    match controller_call(&ctx.shard, op).await {
        Ok(ControllerResult::Changed(results)) => results,
        Ok(_) => vec![Err(ControllerError::NotAvailable("unexpected answer".into())); n],
        Err(e) => vec![Err(e); n],
    }
}

pub async fn create(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: CreateAclsRequest = req.decode()?;
    let mut results: Vec<AclCreationResult> = r.creations.iter().map(|_| AclCreationResult::default()).collect();
    let refuse_all = refusal(ctx, AclOperation::Alter);
    let mut asked = Vec::new();
    for (i, c) in r.creations.iter().enumerate() {
        if let Some((code, why)) = refuse_all {
            results[i].error_code = code.code();
            results[i].error_message = message(why);
            continue;
        }
        let binding = (|| {
            Some(AclBinding {
                resource_type: ResourceType::from_code(c.resource_type)?,
                resource_name: c.resource_name.to_string(),
                pattern_type: pattern(c.resource_pattern_type)?,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: AclOperation::from_code(c.operation)?,
                permission: Permission::from_code(c.permission_type)?,
            })
        })();
        match binding.as_ref().map(AclBinding::invalid) {
            None => {
                results[i].error_code = ResponseError::InvalidRequest.code();
                results[i].error_message = message("Unknown resource type, pattern type, operation or permission");
            }
            Some(Some(why)) => {
                results[i].error_code = ResponseError::InvalidRequest.code();
                results[i].error_message = message(&why);
            }
            Some(None) => asked.push((i, binding.expect("valid"))),
        }
    }
    if !asked.is_empty() {
        let n = asked.len();
        let acls = asked.iter().map(|(_, b)| b.clone()).collect();
        for ((i, _), outcome) in asked.iter().zip(call(ctx, ControllerOp::CreateAcls { acls }, n).await) {
            if let Err(e) = outcome {
                let (code, why) = controller_error(e);
                results[*i].error_code = code.code();
                results[*i].error_message = Some(StrBytes::from_string(why));
            }
        }
    }
    let mut resp = CreateAclsResponse::default();
    resp.results = results;
    respond(req, &resp)
}

pub fn describe(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: DescribeAclsRequest = req.decode()?;
    let mut resp = DescribeAclsResponse::default();
    if let Some((code, why)) = refusal(ctx, AclOperation::Describe) {
        resp.error_code = code.code();
        resp.error_message = message(why);
        return respond(req, &resp);
    }
    let Some(f) = filter(
        r.resource_type_filter,
        &r.resource_name_filter,
        r.pattern_type_filter,
        &r.principal_filter,
        &r.host_filter,
        r.operation,
        r.permission_type,
    ) else {
        resp.error_code = ResponseError::InvalidRequest.code();
        resp.error_message = message("Unknown resource type, pattern type, operation or permission in the filter");
        return respond(req, &resp);
    };
    let image = ctx.shard.image();
    let mut matched: Vec<&AclBinding> = image.acls.iter().map(|(_, b)| b).filter(|b| f.matches(b)).collect();
    matched.sort();
    for b in matched {
        let mut d = AclDescription::default();
        d.principal = StrBytes::from_string(b.principal.clone());
        d.host = StrBytes::from_string(b.host.clone());
        d.operation = b.operation.code();
        d.permission_type = b.permission as i8;
        match resp.resources.last_mut() {
            Some(res)
                if res.resource_type == b.resource_type.code()
                    && res.resource_name.as_str() == b.resource_name
                    && res.pattern_type == b.pattern_type as i8 =>
            {
                res.acls.push(d)
            }
            _ => {
                let mut res = DescribeAclsResource::default();
                res.resource_type = b.resource_type.code();
                res.resource_name = StrBytes::from_string(b.resource_name.clone());
                res.pattern_type = b.pattern_type as i8;
                res.acls.push(d);
                resp.resources.push(res);
            }
        }
    }
    respond(req, &resp)
}

pub async fn delete(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: DeleteAclsRequest = req.decode()?;
    let mut resp = DeleteAclsResponse::default();
    let refuse_all = refusal(ctx, AclOperation::Alter);
    let image = ctx.shard.image();
    let mut ids = Vec::new();
    let mut matched_per_filter = Vec::new();
    for f in &r.filters {
        let mut result = DeleteAclsFilterResult::default();
        let parsed = filter(
            f.resource_type_filter,
            &f.resource_name_filter,
            f.pattern_type_filter,
            &f.principal_filter,
            &f.host_filter,
            f.operation,
            f.permission_type,
        );
        match (refuse_all, parsed) {
            (Some((code, why)), _) => {
                result.error_code = code.code();
                result.error_message = message(why);
                matched_per_filter.push(None);
            }
            (None, None) => {
                result.error_code = ResponseError::InvalidRequest.code();
                result.error_message = message("Unknown resource type, pattern type, operation or permission");
                matched_per_filter.push(None);
            }
            (None, Some(filter)) => {
                let matched: Vec<(uuid::Uuid, AclBinding)> =
                    image.acls.iter().filter(|(_, b)| filter.matches(b)).map(|(id, b)| (*id, b.clone())).collect();
                ids.push(matched.iter().map(|(id, _)| *id).collect());
                matched_per_filter.push(Some(matched));
            }
        }
        resp.filter_results.push(result);
    }
    let outcomes = if ids.is_empty() {
        Vec::new()
    } else {
        let n = ids.len();
        call(ctx, ControllerOp::DeleteAcls { ids }, n).await
    };
    let mut outcomes = outcomes.into_iter();
    for (result, matched) in resp.filter_results.iter_mut().zip(matched_per_filter) {
        let Some(matched) = matched else { continue };
        if let Some(Err(e)) = outcomes.next() {
            let (code, why) = controller_error(e);
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(why));
            continue;
        }
        result.matching_acls = matched
            .into_iter()
            .map(|(_, b)| {
                let mut m = DeleteAclsMatchingAcl::default();
                m.resource_type = b.resource_type.code();
                m.resource_name = StrBytes::from_string(b.resource_name);
                m.pattern_type = b.pattern_type as i8;
                m.principal = StrBytes::from_string(b.principal);
                m.host = StrBytes::from_string(b.host);
                m.operation = b.operation.code();
                m.permission_type = b.permission as i8;
                m
            })
            .collect();
    }
    respond(req, &resp)
}
