//! How this broker connects to another broker's listener (replica fetchers on the
//! `inter.broker.listener.name` listener): TCP, then TLS if the listener is SSL or
//! SASL_SSL, then SASL if it is SASL_*, all from this broker's settings for that listener,
//! as Kafka brokers do it:
//! - TLS: the listener's truststore verifies the other broker (by the address it
//!   advertises), and its keystore is presented if a client certificate is asked for;
//! - SASL: `sasl.mechanism.inter.broker.protocol` (PLAIN by default: Kafka's GSSAPI
//!   default is not served here), with the `username` and `password` of
//!   `listener.name.<l>.<mechanism>.sasl.jaas.config` (or `sasl.jaas.config`).
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::listener_setting;
use super::sasl::{ScramClient, ScramMechanism};
use crate::config::BrokerConfig;
use crate::server::stream::ConnStream;

/// Answers to SASL requests are small; anything larger is not one.
const SASL_ANSWER_MAX: usize = 1 << 20;
const CLIENT_ID: &str = "sluice-broker";

/// The SASL mechanism and credentials this broker uses on `listener`.
pub fn sasl_identity(config: &BrokerConfig, listener: &str) -> Result<(String, String, String), String> {
    let keys = &config.explicit_keys;
    let mechanism = keys
        .get("sasl.mechanism.inter.broker.protocol")
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "PLAIN".to_string());
    if mechanism != "PLAIN" && ScramMechanism::from_name(&mechanism).is_none() {
        return Err(format!(
            "sasl.mechanism.inter.broker.protocol: {mechanism} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
        ));
    }
    let scoped = format!("{}.sasl.jaas.config", mechanism.to_ascii_lowercase());
    let (key, jaas) = listener_setting(keys, listener, &scoped)
        .or_else(|| listener_setting(keys, listener, "sasl.jaas.config"))
        .ok_or_else(|| format!("listener {listener} carries replication over SASL: set listener.name.{}.{scoped} with username and password", listener.to_ascii_lowercase()))?;
    let user = super::sasl::jaas_field(jaas, "username").ok_or_else(|| format!("{key}: no username=\"…\""))?;
    let password = super::sasl::jaas_field(jaas, "password").ok_or_else(|| format!("{key}: no password=\"…\""))?;
    Ok((mechanism, user, password))
}

/// Connects to another broker at `host:port`, its listener `listener`, within `timeout`.
pub async fn connect(
    config: &BrokerConfig,
    listener: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<ConnStream, String> {
    let protocol = config.security_protocol(listener).to_string();
    let addr = format!("{host}:{port}");
    let steps = async {
        let tcp = TcpStream::connect(addr.as_str()).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match protocol.as_str() {
            "SSL" | "SASL_SSL" => {
                let tls = super::tls::client_config(&config.explicit_keys, listener).map_err(|e| e.to_string())?;
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
                let s = futures_rustls::TlsConnector::from(tls)
                    .connect(name, crate::server::stream::tls_transport(tcp))
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                ConnStream::TlsClient(Box::new(s))
            }
            _ => ConnStream::Plain(tcp),
        };
        if protocol.starts_with("SASL_") {
            let (mechanism, user, password) = sasl_identity(config, listener)?;
            authenticate(&mut stream, &mechanism, &user, &password).await?;
        }
        Ok(stream)
    };
    steps
        .or(async {
            glommio::timer::sleep(timeout).await;
            Err(format!("not connected within {timeout:?}"))
        })
        .await
}

async fn authenticate(s: &mut ConnStream, mechanism: &str, user: &str, password: &str) -> Result<(), String> {
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_string(mechanism.to_string());
    let r: SaslHandshakeResponse = call(s, ApiKey::SaslHandshake, 1, 1, CLIENT_ID, &hs, SASL_ANSWER_MAX).await?;
    if r.error_code != 0 {
        return Err(format!("SASL mechanism {mechanism} refused (error {})", r.error_code));
    }
    match ScramMechanism::from_name(mechanism) {
        None => token(s, format!("\0{user}\0{password}").into_bytes(), 2).await.map(drop),
        Some(m) => {
            let mut c = ScramClient::new(m, user, password, &super::sasl::nonce());
            let server_first = token(s, c.client_first(), 2).await?;
            let client_final = c.client_final(&server_first)?;
            let server_final = token(s, client_final, 3).await?;
            c.verify(&server_final)
        }
    }
}

/// One SaslAuthenticate round: our token out, the broker's back.
async fn token(s: &mut ConnStream, bytes: Vec<u8>, correlation: i32) -> Result<Vec<u8>, String> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from(bytes);
    let r: SaslAuthenticateResponse =
        call(s, ApiKey::SaslAuthenticate, 2, correlation, CLIENT_ID, &req, SASL_ANSWER_MAX).await?;
    if r.error_code != 0 {
        let why = r.error_message.map(|m| m.to_string()).unwrap_or_default();
        return Err(format!("SASL authentication failed (error {}): {why}", r.error_code));
    }
    Ok(r.auth_bytes.to_vec())
}

/// One request and its answer (at most `answer_max` bytes) on a connection to another
/// broker: the SASL steps here, and the replica fetcher's Fetch.
pub async fn call<Req: Encodable, Resp: Decodable>(
    s: &mut ConnStream,
    api: ApiKey,
    version: i16,
    correlation: i32,
    client_id: &str,
    req: &Req,
    answer_max: usize,
) -> Result<Resp, String> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_string(client_id.to_string()));
    let mut body = BytesMut::new();
    header.encode(&mut body, api.request_header_version(version)).map_err(|e| e.to_string())?;
    req.encode(&mut body, version).map_err(|e| e.to_string())?;
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.put_u32(body.len() as u32);
    frame.extend_from_slice(&body);
    s.write_all(&frame).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| format!("no answer to {api:?}: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > answer_max {
        return Err(format!("answer of {len} bytes to {api:?}"));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    let mut b = Bytes::from(buf);
    let h = ResponseHeader::decode(&mut b, api.response_header_version(version)).map_err(|e| e.to_string())?;
    if h.correlation_id != correlation {
        return Err(format!("answer to request {} while waiting for {correlation}", h.correlation_id));
    }
    let resp = Resp::decode(&mut b, version).map_err(|e| e.to_string())?;
    if b.has_remaining() {
        tracing::debug!(?api, left = b.remaining(), "bytes after the answer ignored");
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inter_broker_credentials_come_from_the_listeners_jaas_line() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="b-secret" user_broker="b-secret" user_alice="a";"#;
        let (mut c, _) = BrokerConfig::from_sources(
            "",
            &[("listener.name.internal.plain.sasl.jaas.config".to_string(), jaas.to_string())],
        )
        .unwrap();
        assert_eq!(sasl_identity(&c, "INTERNAL").unwrap(), ("PLAIN".into(), "broker".into(), "b-secret".into()));
        c.explicit_keys.insert("sasl.mechanism.inter.broker.protocol".into(), "GSSAPI".into());
        assert!(sasl_identity(&c, "INTERNAL").is_err());
        c.explicit_keys.insert("sasl.mechanism.inter.broker.protocol".into(), "SCRAM-SHA-512".into());
        assert!(sasl_identity(&c, "INTERNAL").unwrap_err().contains("scram-sha-512.sasl.jaas.config"));
    }
}
