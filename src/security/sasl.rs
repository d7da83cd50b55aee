//! SASL mechanisms, with no I/O: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802,
//! RFC 7677) as Kafka speaks them inside SaslAuthenticate. The connection feeds each
//! client message in and sends back what comes out; credentials come from a lookup the
//! caller gives (the JAAS-style config for PLAIN, the metadata's SCRAM credentials).
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Wrong user or password, or a proof that does not match: Kafka's
    /// SASL_AUTHENTICATION_FAILED, with a message that never names which.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {0}")]
    Failed(&'static str),
    /// A message that is not what the mechanism expects at this step.
    #[error("malformed {0} message: {1}")]
    Malformed(&'static str, &'static str),
}

/// PLAIN: `[authzid] NUL authcid NUL password`; `password_of(user)` is the configured
/// password. An authorization id other than the user is refused, as Kafka does. Returns
/// the user.
pub fn plain(message: &[u8], password_of: &dyn Fn(&str) -> Option<String>) -> Result<String, SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed("PLAIN", "not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed("PLAIN", "expected authzid NUL user NUL password"));
    };
    if user.is_empty() || (!authzid.is_empty() && authzid != user) {
        return Err(SaslError::Failed("PLAIN"));
    }
    // Compared in constant time: how much of a guess matched must not show in the timing.
    match password_of(user) {
        Some(expected) if constant_time_eq(expected.as_bytes(), password.as_bytes()) => Ok(user.to_string()),
        _ => Err(SaslError::Failed("PLAIN")),
    }
}

/// Equality whose time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The `user_<name>="<password>"` entries of a JAAS login module line.
pub fn jaas_users(jaas: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = jaas;
    while let Some(at) = rest.find("user_") {
        rest = &rest[at + 5..];
        let Some((name, after)) = rest.split_once('=') else { break };
        let Some(value) = after.trim_start().strip_prefix('"') else { continue };
        let Some((password, tail)) = value.split_once('"') else { break };
        out.push((name.trim().to_string(), password.to_string()));
        rest = tail;
    }
    out
}

/// The `username="…"` and `password="…"` of a JAAS login module line: this node's own
/// login (inter-broker and controller connections).
pub fn jaas_login(jaas: &str) -> Option<(String, String)> {
    Some((jaas_field(jaas, "username")?, jaas_field(jaas, "password")?))
}

/// A `name="value"` field of a JAAS line; `username=` and not `user_username=`: the field
/// stands alone.
pub fn jaas_field(jaas: &str, name: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(at) = rest.find(&format!("{name}=")) {
        let before = rest[..at].chars().last();
        rest = &rest[at + name.len() + 1..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        return rest.trim_start().strip_prefix('"').and_then(|v| v.split_once('"')).map(|(v, _)| v.to_string());
    }
    None
}

/// A fresh SCRAM nonce: 18 random bytes, base64 (printable, never ','), for either side.
pub fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 18];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the system random source works");
    B64.encode(bytes)
}

/// SCRAM-SHA-256 or SCRAM-SHA-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// RFC 5802's `Hi(password, salt, i)`: what a client (or `sluicectl user scram set`)
    /// sends in AlterUserScramCredentials.
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut salted = vec![0u8; self.digest().output_len()];
        let rounds = std::num::NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(self.pbkdf2(), rounds, salt, password.as_bytes(), &mut salted);
        salted
    }

    /// Kafka's `ScramMechanism` type byte in the SCRAM credential APIs.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's bounds on a credential's iterations (`ScramMechanism.minIterations()`,
    /// and the 16384 the controller allows at most).
    pub const MIN_ITERATIONS: i32 = 4096;
    pub const MAX_ITERATIONS: i32 = 16384;

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data).as_ref().to_vec()
    }
}

/// What the server keeps of a SCRAM password (RFC 5802 §3): never the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    pub fn new(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: u32) -> ScramCredential {
        ScramCredential::from_salted_password(
            mechanism,
            &mechanism.salted_password(password, salt, iterations),
            salt,
            iterations,
        )
    }

    /// From the salted password (`Hi(password, salt, i)`), which is what
    /// AlterUserScramCredentials carries: the broker never sees the password itself.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.mac(salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: digest::digest(mechanism.digest(), &client_key).as_ref().to_vec(),
            server_key: mechanism.mac(salted, b"Server Key"),
        }
    }
}

/// The server side of one SCRAM exchange: client-first → server-first, client-final →
/// server-final.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: ScramState,
}

enum ScramState {
    Initial,
    SentFirst {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// `name=value` attributes of a SCRAM message, in order.
fn attributes(msg: &str) -> Vec<(char, &str)> {
    msg.split(',')
        .filter_map(|a| {
            let mut chars = a.chars();
            let k = chars.next()?;
            a.get(1..)?.strip_prefix('=').map(|v| (k, v))
        })
        .collect()
}

fn attr<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// RFC 5802 saslname: "=2C" is ',' and "=3D" is '='.
fn unescape_name(s: &str) -> Option<String> {
    let out = s.replace("=2C", ",").replace("=3D", "=");
    (!out.contains('=')).then_some(out)
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer { mechanism, state: ScramState::Initial }
    }

    /// Whether the client-first message was taken (the next one is client-final).
    pub fn started(&self) -> bool {
        !matches!(self.state, ScramState::Initial)
    }

    /// The user the client named in client-first, once it has (for logging).
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            ScramState::SentFirst { user, .. } => Some(user),
            _ => None,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The client-first message; `credential_of(user)` looks the user up; `server_nonce`
    /// is fresh randomness (printable, no ','). Returns the server-first message. An
    /// unknown user gets a made-up challenge and fails at the proof, as Kafka does, so
    /// that user names cannot be probed.
    pub fn first(
        &mut self,
        client_first: &[u8],
        credential_of: &dyn Fn(&str) -> Option<ScramCredential>,
        server_nonce: &str,
    ) -> Result<Vec<u8>, SaslError> {
        let name = self.mechanism.name();
        if !matches!(self.state, ScramState::Initial) {
            return Err(SaslError::Malformed(name, "client-first after the exchange began"));
        }
        let text = std::str::from_utf8(client_first).map_err(|_| SaslError::Malformed(name, "not UTF-8"))?;
        // gs2-header: channel binding flag ("n" or "y": Kafka has none), then an optional
        // authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let (Some(cb), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SaslError::Malformed(name, "expected gs2-header,client-first-bare"));
        };
        if cb != "n" && cb != "y" {
            return Err(SaslError::Malformed(name, "channel binding is not supported"));
        }
        let attrs = attributes(bare);
        let user = attr(&attrs, 'n').and_then(unescape_name).ok_or(SaslError::Malformed(name, "no user name"))?;
        let client_nonce = attr(&attrs, 'r').filter(|r| !r.is_empty()).ok_or(SaslError::Malformed(name, "no nonce"))?;
        if let Some(a) = authzid.strip_prefix("a=") {
            if unescape_name(a).as_deref() != Some(user.as_str()) {
                return Err(SaslError::Failed(name));
            }
        }
        let credential = credential_of(&user).unwrap_or_else(|| {
            // Unknown: a stable fake salt per user, and a proof that can never match.
            let salt = digest::digest(&digest::SHA256, user.as_bytes()).as_ref()[..16].to_vec();
            ScramCredential { salt, iterations: 4096, stored_key: Vec::new(), server_key: Vec::new() }
        });
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        self.state = ScramState::SentFirst {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first.into_bytes())
    }

    /// The client-final message: checks the proof. Returns (server-final, user).
    pub fn finish(&mut self, client_final: &[u8]) -> Result<(Vec<u8>, String), SaslError> {
        let m = self.mechanism;
        let name = m.name();
        let ScramState::SentFirst { user, credential, client_first_bare, server_first, nonce } =
            std::mem::replace(&mut self.state, ScramState::Done)
        else {
            return Err(SaslError::Malformed(name, "client-final before client-first"));
        };
        let text = std::str::from_utf8(client_final).map_err(|_| SaslError::Malformed(name, "not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(SaslError::Malformed(name, "no proof"))?;
        let attrs = attributes(without_proof);
        if attr(&attrs, 'r') != Some(nonce.as_str()) {
            return Err(SaslError::Failed(name));
        }
        let proof = B64.decode(proof).map_err(|_| SaslError::Malformed(name, "proof is not base64"))?;
        if credential.stored_key.is_empty() || proof.len() != credential.stored_key.len() {
            return Err(SaslError::Failed(name));
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = m.mac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored = digest::digest(m.digest(), &client_key);
        if !constant_time_eq(stored.as_ref(), &credential.stored_key) {
            return Err(SaslError::Failed(name));
        }
        let server_signature = m.mac(&credential.server_key, auth_message.as_bytes());
        Ok((format!("v={}", B64.encode(server_signature)).into_bytes(), user))
    }
}

/// The client side of a SCRAM exchange, in steps (for brokers replicating over SASL,
/// `sluicectl --command-config` and tests).
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_nonce: String,
    bare: String,
    /// The signature the server must send back, once the proof is made.
    expected: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str, client_nonce: &str) -> ScramClient {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_nonce: client_nonce.to_string(),
            bare: format!("n={name},r={client_nonce}"),
            expected: None,
        }
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare).into_bytes()
    }

    /// The client-final message for the server-first one.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let m = self.mechanism;
        let server_first = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let attrs = attributes(server_first);
        let nonce = attr(&attrs, 'r')
            .filter(|r| r.starts_with(&self.client_nonce))
            .ok_or("server nonce does not extend ours")?;
        let salt = B64.decode(attr(&attrs, 's').ok_or("no salt")?).map_err(|_| "salt is not base64")?;
        let iterations: u32 = attr(&attrs, 'i').and_then(|i| i.parse().ok()).ok_or("no iteration count")?;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let client_key = m.mac(&salted, b"Client Key");
        let stored_key = digest::digest(m.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let signature = m.mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        self.expected = Some(m.mac(&m.mac(&salted, b"Server Key"), auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: a broker that does not know the password cannot
    /// sign it.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let expected = self.expected.as_ref().ok_or("no proof sent yet")?;
        match std::str::from_utf8(server_final).ok().and_then(|f| f.strip_prefix("v=")) {
            Some(v) if B64.decode(v).is_ok_and(|v| constant_time_eq(&v, expected)) => Ok(()),
            _ => Err("the broker's SCRAM signature does not match".into()),
        }
    }
}

/// A whole SCRAM exchange over `send` (one SaslAuthenticate token out, the answer back).
pub fn scram_client(
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
    client_nonce: &str,
    send: &mut dyn FnMut(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    let mut c = ScramClient::new(mechanism, user, password, client_nonce);
    let server_first = send(&c.client_first())?;
    let client_final = c.client_final(&server_first)?;
    c.verify(&send(&client_final)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_user_password_and_authzid() {
        let users = |u: &str| (u == "alice").then(|| "alice-secret".to_string());
        assert_eq!(plain(b"\0alice\0alice-secret", &users), Ok("alice".into()));
        assert_eq!(plain(b"alice\0alice\0alice-secret", &users), Ok("alice".into()));
        assert_eq!(plain(b"\0alice\0wrong", &users), Err(SaslError::Failed("PLAIN")));
        assert_eq!(plain(b"\0bob\0alice-secret", &users), Err(SaslError::Failed("PLAIN")));
        assert_eq!(plain(b"bob\0alice\0alice-secret", &users), Err(SaslError::Failed("PLAIN")));
        assert!(matches!(plain(b"alice-secret", &users), Err(SaslError::Malformed(..))));
        assert!(!SaslError::Failed("PLAIN").to_string().contains("alice-secret"));
    }

    /// RFC 7677 §3's SCRAM-SHA-256 exchange, byte for byte.
    #[test]
    fn scram_sha_256_rfc7677_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::new(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let lookup = |u: &str| (u == "user").then(|| cred.clone());
        let mut s = ScramServer::new(ScramMechanism::Sha256);
        let first = s.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &lookup, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let (server_final, user) = s.finish(fin).unwrap();
        assert_eq!(String::from_utf8(server_final).unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(user, "user");
    }

    #[test]
    fn the_client_and_server_agree() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let cred = ScramCredential::new(m, "p@ss,w=rd", b"salty", 4096);
            let lookup = |u: &str| (u == "a,b").then(|| cred.clone());
            let mut server = ScramServer::new(m);
            let mut send = |token: &[u8]| -> Result<Vec<u8>, String> {
                if server.started() {
                    server.finish(token).map(|(f, user)| {
                        assert_eq!(user, "a,b");
                        f
                    })
                } else {
                    server.first(token, &lookup, "srv")
                }
                .map_err(|e| e.to_string())
            };
            scram_client(m, "a,b", "p@ss,w=rd", "cli", &mut send).unwrap();
        }
    }

    #[test]
    fn scram_refuses_wrong_proofs_unknown_users_and_replays() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::new(ScramMechanism::Sha256, "pencil", &salt, 4096);
        let lookup = |u: &str| (u == "user").then(|| cred.clone());
        let nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let fin = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let mut wrong = ScramServer::new(ScramMechanism::Sha256);
        wrong.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &lookup, "another-nonce").unwrap();
        assert_eq!(wrong.finish(fin).unwrap_err(), SaslError::Failed("SCRAM-SHA-256"), "another server nonce");
        let mut unknown = ScramServer::new(ScramMechanism::Sha256);
        let first = unknown.first(b"n,,n=nobody,r=abc", &lookup, nonce).unwrap();
        assert!(String::from_utf8(first).unwrap().contains(",i=4096"), "a challenge like any other");
        assert_eq!(
            unknown.finish(b"c=biws,r=abc%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA").unwrap_err(),
            SaslError::Failed("SCRAM-SHA-256")
        );
        let mut twice = ScramServer::new(ScramMechanism::Sha512);
        assert!(twice.finish(fin).is_err(), "final before first");
        assert!(matches!(twice.first(b"p=tls-unique,,n=user,r=x", &lookup, nonce), Err(SaslError::Malformed(..))));
    }
}
