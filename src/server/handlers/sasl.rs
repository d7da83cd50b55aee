//! SaslHandshake v1 and SaslAuthenticate v0–2 on SASL_PLAINTEXT and SASL_SSL listeners:
//! the client picks a mechanism from `sasl.enabled.mechanisms`, then its tokens go to
//! that mechanism (`security::sasl`). A failed authentication is answered with
//! SASL_AUTHENTICATION_FAILED and the connection is closed; the attempt is logged with the
//! user name, never the password. PLAIN checks the users of the listener's
//! `plain.sasl.jaas.config` (`user_<name>="<password>"`, as Kafka's PlainLoginModule);
//! SCRAM-SHA-256/512 the credentials in the cluster metadata (AlterUserScramCredentials).
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{respond, HandlerResult, Reply};
use crate::protocol::frame::Request;
use crate::security::principal::KafkaPrincipal;
use crate::security::sasl::{self, ScramMechanism, ScramServer};
use crate::server::context::{RequestContext, SaslState};

/// A listener's setting: `listener.name.<listener>.<key>`, else `<key>`.
fn setting<'a>(ctx: &'a RequestContext, key: &str) -> Option<&'a str> {
    crate::security::listener_setting(&ctx.shard.config.explicit_keys, &ctx.connection.listener, key).map(|(_, v)| v)
}

fn enabled_mechanisms(ctx: &RequestContext) -> Vec<String> {
    setting(ctx, "sasl.enabled.mechanisms")
        .unwrap_or("PLAIN")
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

pub fn handshake(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: SaslHandshakeRequest = req.decode()?;
    let enabled = enabled_mechanisms(ctx);
    let mut resp = SaslHandshakeResponse::default();
    resp.mechanisms = enabled.iter().map(|m| StrBytes::from_string(m.clone())).collect();
    let mut state = ctx.connection.sasl.borrow_mut();
    // Done: a re-authentication (KIP-368) starts with a new handshake.
    if !matches!(*state, SaslState::Handshake | SaslState::Done) {
        resp.error_code = ResponseError::IllegalSaslState.code();
        return respond(req, &resp);
    }
    let mechanism = r.mechanism.to_string();
    match (mechanism.as_str(), ScramMechanism::from_name(&mechanism)) {
        _ if !enabled.contains(&mechanism) => resp.error_code = ResponseError::UnsupportedSaslMechanism.code(),
        ("PLAIN", _) => *state = SaslState::Plain,
        (_, Some(m)) => *state = SaslState::Scram(ScramServer::new(m)),
        _ => resp.error_code = ResponseError::UnsupportedSaslMechanism.code(),
    }
    respond(req, &resp)
}

pub fn authenticate(ctx: &RequestContext, req: &Request) -> HandlerResult {
    let r: SaslAuthenticateRequest = req.decode()?;
    let mut resp = SaslAuthenticateResponse::default();
    let state = std::mem::replace(&mut *ctx.connection.sasl.borrow_mut(), SaslState::Handshake);
    // The user the attempt named, for the log (never the password).
    let mut named_user = String::new();
    let outcome = match state {
        SaslState::Plain => {
            let users = setting(ctx, "plain.sasl.jaas.config").map(sasl::jaas_users).unwrap_or_default();
            let password_of = |u: &str| users.iter().find(|(n, _)| n == u).map(|(_, p)| p.clone());
            named_user =
                std::str::from_utf8(&r.auth_bytes).ok().and_then(|t| t.split('\0').nth(1)).unwrap_or("?").to_string();
            sasl::plain(&r.auth_bytes, &password_of).map(|user| (user, Bytes::new()))
        }
        SaslState::Scram(mut server) if !server.started() => {
            let image = ctx.shard.image();
            let mechanism = server.mechanism().name();
            let credential_of = |u: &str| image.scram.get(u).and_then(|m| m.get(mechanism)).cloned();
            match server.first(&r.auth_bytes, &credential_of, &sasl::nonce()) {
                Ok(server_first) => {
                    // Not done yet: the client answers the challenge.
                    *ctx.connection.sasl.borrow_mut() = SaslState::Scram(server);
                    resp.auth_bytes = Bytes::from(server_first);
                    return respond(req, &resp);
                }
                Err(e) => Err(e),
            }
        }
        SaslState::Scram(mut server) => {
            named_user = server.user().unwrap_or("?").to_string();
            server.finish(&r.auth_bytes).map(|(server_final, user)| (user, Bytes::from(server_final)))
        }
        other => {
            *ctx.connection.sasl.borrow_mut() = other;
            resp.error_code = ResponseError::IllegalSaslState.code();
            resp.error_message = Some(StrBytes::from_static_str("SaslAuthenticate before a SaslHandshake"));
            return close_after(respond(req, &resp));
        }
    };
    match outcome {
        Ok((user, final_message)) => {
            let again = ctx.connection.sasl_authenticated_once.get();
            if again && ctx.connection.principal().name != user {
                // Kafka refuses a re-authentication as someone else.
                tracing::info!(%user, peer = ?ctx.connection.peer, "SASL re-authentication as another principal; closing the connection");
                resp.error_code = ResponseError::SaslAuthenticationFailed.code();
                resp.error_message =
                    Some(StrBytes::from_static_str("Cannot change principals during re-authentication"));
                return close_after(respond(req, &resp));
            }
            if again {
                tracing::info!(%user, peer = ?ctx.connection.peer, "SASL re-authentication succeeded");
            } else {
                tracing::debug!(%user, peer = ?ctx.connection.peer, "SASL authentication succeeded");
            }
            ctx.connection.set_principal(KafkaPrincipal::user(user));
            ctx.connection.sasl_authenticated_once.set(true);
            *ctx.connection.sasl.borrow_mut() = SaslState::Done;
            resp.auth_bytes = final_message;
            // KIP-368: v1+ clients are told how long the session lasts and re-authenticate
            // before it ends; older ones keep theirs (as in Kafka).
            let lifetime = setting(ctx, "connections.max.reauth.ms").and_then(|v| v.trim().parse::<i64>().ok());
            match lifetime.filter(|ms| *ms > 0 && req.version() >= 1) {
                Some(ms) => {
                    resp.session_lifetime_ms = ms;
                    ctx.connection
                        .session_expires
                        .set(Some(std::time::Instant::now() + std::time::Duration::from_millis(ms as u64)));
                }
                None => ctx.connection.session_expires.set(None),
            }
            respond(req, &resp)
        }
        Err(e) => {
            let user = named_user;
            tracing::info!(%user, peer = ?ctx.connection.peer, error = %e, "SASL authentication failed; closing the connection");
            resp.error_code = ResponseError::SaslAuthenticationFailed.code();
            resp.error_message = Some(StrBytes::from_string(e.to_string()));
            close_after(respond(req, &resp))
        }
    }
}

fn close_after(r: HandlerResult) -> HandlerResult {
    r.map(|reply| match reply {
        Reply::Frame(bytes) => Reply::FrameThenClose(bytes),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_users_are_read_as_plain_login_module_writes_them() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice = "a=b c";"#;
        assert_eq!(
            sasl::jaas_users(jaas),
            vec![("admin".to_string(), "admin-secret".to_string()), ("alice".to_string(), "a=b c".to_string())]
        );
    }
}
