//! TLS for SSL and SASL_SSL listeners (rustls with ring): the server configuration built
//! from Kafka's `ssl.*` keys in the PEM forms Kafka accepts, and the principal of a client
//! certificate. A listener's `listener.name.<name>.ssl.*` keys win over the plain `ssl.*`
//! ones, as in Kafka.
use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// Asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// A client without a certificate the truststore vouches for is refused.
    Required,
}

/// Why a listener's TLS settings cannot be used: the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct TlsConfigError {
    pub key: String,
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> TlsConfigError {
    TlsConfigError { key: key.to_string(), reason: reason.into() }
}

/// The `ssl.*` settings of one listener, as given (`keys` holds every configured key).
struct Settings<'a> {
    keys: &'a BTreeMap<String, String>,
    listener: &'a str,
}

impl Settings<'_> {
    /// `listener.name.<listener>.<key>` if set, else `<key>`; and the name that was set.
    fn get(&self, key: &str) -> Option<(String, &str)> {
        super::listener_setting(self.keys, self.listener, key)
    }

    /// PEM text from `<inline>` or the file named by `<location>`.
    fn pem(&self, inline: &str, location: &str) -> Result<Option<(String, Vec<u8>)>, TlsConfigError> {
        if let Some((k, v)) = self.get(inline) {
            return Ok(Some((k, v.as_bytes().to_vec())));
        }
        match self.get(location) {
            Some((k, path)) => {
                let bytes = std::fs::read(path).map_err(|e| err(&k, format!("cannot read {path}: {e}")))?;
                Ok(Some((k, bytes)))
            }
            None => Ok(None),
        }
    }

    fn store_type(&self, key: &str) -> Result<(), TlsConfigError> {
        match self.get(key) {
            None => Ok(()),
            Some((_, v)) if v.eq_ignore_ascii_case("PEM") => Ok(()),
            Some((k, v)) => Err(err(&k, format!("{v} stores are not supported; use PEM"))),
        }
    }
}

/// The server side of TLS on `listener` (a listener whose protocol is SSL or SASL_SSL).
pub fn server_config(keys: &BTreeMap<String, String>, listener: &str) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let s = Settings { keys, listener };
    principal_mapper(keys, listener)?;
    s.store_type("ssl.keystore.type")?;
    s.store_type("ssl.truststore.type")?;
    if let Some((k, _)) = s.get("ssl.key.password") {
        return Err(err(&k, "encrypted private keys are not supported; give an unencrypted PKCS#8 or PKCS#1 key"));
    }
    let (chain, key) = match (s.get("ssl.keystore.certificate.chain"), s.get("ssl.keystore.key")) {
        (Some((ck, chain)), Some((kk, key))) => (certs(&ck, chain.as_bytes())?, private_key(&kk, key.as_bytes())?),
        (None, None) => {
            let (k, pem) = s
                .pem("ssl.keystore.certificate.chain", "ssl.keystore.location")?
                .ok_or_else(|| err("ssl.keystore.location", format!("listener {listener} needs a keystore")))?;
            (certs(&k, &pem)?, private_key(&k, &pem)?)
        }
        (Some((k, _)), None) | (None, Some((k, _))) => {
            return Err(err(&k, "ssl.keystore.certificate.chain and ssl.keystore.key go together"))
        }
    };
    let client_auth = match s.get("ssl.client.auth") {
        None => ClientAuth::None,
        Some((k, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => return Err(err(&k, format!("{v}: expected none, requested or required"))),
        },
    };
    let mut versions = Vec::new();
    let (pk, protocols) = s.get("ssl.enabled.protocols").unwrap_or(("ssl.enabled.protocols".into(), "TLSv1.2,TLSv1.3"));
    for p in protocols.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            _ => return Err(err(&pk, format!("{p} is not supported (TLSv1.2 and TLSv1.3 are)"))),
        }
    }
    if versions.is_empty() {
        return Err(err(&pk, "no protocol enabled"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| err(&pk, e.to_string()))?;
    let builder = if client_auth == ClientAuth::None {
        builder.with_no_client_auth()
    } else {
        let (tk, pem) = s.pem("ssl.truststore.certificates", "ssl.truststore.location")?.ok_or_else(|| {
            err("ssl.truststore.location", "ssl.client.auth needs a truststore (the CAs that sign client certificates)")
        })?;
        let mut roots = RootCertStore::empty();
        for c in certs(&tk, &pem)? {
            roots.add(c).map_err(|e| err(&tk, format!("not a CA certificate: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if client_auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
        builder.with_client_cert_verifier(verifier.build().map_err(|e| err(&tk, e.to_string()))?)
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("ssl.keystore.location", format!("the key does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The client side of TLS towards another broker's `listener` (the inter-broker listener
/// when its protocol is SSL or SASL_SSL), from this broker's settings for that listener:
/// the truststore verifies the other broker, and the keystore is presented in case it asks
/// for a client certificate (as Kafka brokers do).
pub fn client_config(
    keys: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let s = Settings { keys, listener };
    let (tk, pem) = s.pem("ssl.truststore.certificates", "ssl.truststore.location")?.ok_or_else(|| {
        err(
            "ssl.truststore.location",
            format!("listener {listener} carries replication: it needs a truststore to verify the other brokers"),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for c in certs(&tk, &pem)? {
        roots.add(c).map_err(|e| err(&tk, format!("not a CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&tk, e.to_string()))?
        .with_root_certificates(roots);
    let keystore = match (s.get("ssl.keystore.certificate.chain"), s.get("ssl.keystore.key")) {
        (Some((ck, chain)), Some((kk, key))) => {
            Some((certs(&ck, chain.as_bytes())?, private_key(&kk, key.as_bytes())?))
        }
        _ => match s.pem("ssl.keystore.certificate.chain", "ssl.keystore.location")? {
            Some((k, pem)) => Some((certs(&k, &pem)?, private_key(&k, &pem)?)),
            None => None,
        },
    };
    let config = match keystore {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| err("ssl.keystore.location", format!("the key does not fit the certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn certs(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(key, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err(key, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn private_key(key: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| err(key, format!("no usable PEM private key: {e}")))
}

/// The listener's `ssl.principal.mapping.rules` (DEFAULT when unset).
pub fn principal_mapper(
    keys: &BTreeMap<String, String>,
    listener: &str,
) -> Result<super::principal_mapping::PrincipalMapper, TlsConfigError> {
    match super::listener_setting(keys, listener, "ssl.principal.mapping.rules") {
        None => Ok(Default::default()),
        Some((k, v)) => super::principal_mapping::PrincipalMapper::parse(v).map_err(|e| err(&k, e)),
    }
}

/// The principal of a TLS peer: its first certificate's subject mapped by `mapper`; `None`
/// without a certificate, `Err(dn)` when no rule maps it (Kafka refuses such a client).
pub fn peer_principal(
    certs: Option<&[CertificateDer<'_>]>,
    mapper: &super::principal_mapping::PrincipalMapper,
) -> Result<Option<super::principal::KafkaPrincipal>, String> {
    let Some(dn) = certs.and_then(|c| c.first()).and_then(|c| certificate_principal(c)) else { return Ok(None) };
    mapper.map(&dn).map(|name| Some(super::principal::KafkaPrincipal::user(name))).ok_or(dn)
}

/// The principal name of a client certificate, as Kafka's default principal builder gives
/// it (`ssl.principal.mapping.rules=DEFAULT`): the subject's distinguished name in RFC 2253
/// form, most specific attribute first ("CN=alice,OU=eng,O=Acme").
pub fn certificate_principal(cert: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type();
                    let name = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                        .map(str::to_string)
                        .unwrap_or_else(|_| oid.to_id_string());
                    let value = atv.as_str().map(escape_rfc2253).unwrap_or_default();
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == v.chars().count() - 1 && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    struct Pki {
        ca: String,
        server_chain: String,
        server_key: String,
        client_chain: String,
        client_key: String,
    }

    fn pki() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::OrganizationName, "Sluice");
            p.distinguished_name.push(DnType::CommonName, cn);
            (p.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
        };
        let (server_chain, server_key) = leaf(vec!["localhost".into()], "broker");
        let (client_chain, client_key) = leaf(vec![], "alice");
        Pki { ca: ca_cert.pem(), server_chain, server_key, client_chain, client_key }
    }

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A handshake in memory: the client's certificate as the server saw it, or the error.
    fn handshake(server: Arc<ServerConfig>, pki: &Pki, client_cert: bool) -> Result<Option<Vec<u8>>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(certs("ca", pki.ca.as_bytes()).unwrap().remove(0)).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let client = if client_cert {
            let chain = certs("c", pki.client_chain.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, private_key("k", pki.client_key.as_bytes()).unwrap()).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        let mut c =
            rustls::ClientConnection::new(Arc::new(client), ServerName::try_from("localhost").unwrap()).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
        }
        Ok(s.peer_certificates().and_then(|cs| cs.first()).map(|c| c.to_vec()))
    }

    #[test]
    fn inline_and_file_keystores_and_client_auth() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("broker.pem");
        std::fs::write(&store, format!("{}{}", pki.server_key, pki.server_chain)).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &pki.ca).unwrap();
        let (store, ca) = (store.to_str().unwrap(), ca.to_str().unwrap());

        let plain = server_config(&keys(&[("ssl.keystore.type", "PEM"), ("ssl.keystore.location", store)]), "SSL");
        assert_eq!(handshake(plain.unwrap(), &pki, false).unwrap(), None);

        let inline = keys(&[
            ("listener.name.ssl.ssl.keystore.certificate.chain", &pki.server_chain),
            ("listener.name.ssl.ssl.keystore.key", &pki.server_key),
            ("ssl.truststore.location", ca),
            ("ssl.client.auth", "required"),
        ]);
        let required = server_config(&inline, "SSL").unwrap();
        assert!(handshake(required.clone(), &pki, false).is_err(), "no client certificate: refused");
        let cert = handshake(required, &pki, true).unwrap().expect("the client's certificate");
        // rcgen writes the subject as CN, then O; RFC 2253 names the last first (what
        // `openssl x509 -noout -subject -nameopt RFC2253` and Java's X500Principal print).
        assert_eq!(certificate_principal(&cert).as_deref(), Some("O=Sluice,CN=alice"));

        let mut requested = inline.clone();
        requested.insert("ssl.client.auth".into(), "requested".into());
        assert_eq!(handshake(server_config(&requested, "SSL").unwrap(), &pki, false).unwrap(), None);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let pki = pki();
        let e = server_config(&keys(&[]), "SSL").unwrap_err();
        assert_eq!(e.key, "ssl.keystore.location");
        let e = server_config(&keys(&[("ssl.keystore.type", "JKS")]), "SSL").unwrap_err();
        assert_eq!(e.key, "ssl.keystore.type");
        let e = server_config(&keys(&[("ssl.keystore.key", &pki.server_key)]), "SSL").unwrap_err();
        assert_eq!(e.key, "ssl.keystore.key");
        let base =
            [("ssl.keystore.certificate.chain", pki.server_chain.as_str()), ("ssl.keystore.key", &pki.server_key)];
        let e = server_config(&keys(&[base[0], base[1], ("ssl.enabled.protocols", "TLSv1.1")]), "SSL").unwrap_err();
        assert_eq!(e.key, "ssl.enabled.protocols");
        let e = server_config(&keys(&[base[0], base[1], ("ssl.client.auth", "required")]), "SSL").unwrap_err();
        assert_eq!(e.key, "ssl.truststore.location");
        let e = server_config(&keys(&[base[0], ("ssl.keystore.key", &pki.client_key)]), "SSL").unwrap_err();
        assert!(e.reason.contains("does not fit"), "{e}");
        assert!(server_config(&keys(&base), "SSL").is_ok());
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape_rfc2253("a,b"), "a\\,b");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("#1"), "\\#1");
    }
}
