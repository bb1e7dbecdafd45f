//! Stream-style authentication: an API key, an auth type and a JWT, checked against this
//! deployment's key and secret. Decoding and signature checks are `jsonwebtoken`'s; Stream's own
//! rules are here: HS256 only, `exp`, `nbf` and `iat` with 10 s of leeway (`iat` in the future is
//! code 42), dev tokens only when enabled and never as server tokens.

use crate::domain::actor::{Identity, validate_user_id};
use crate::error::AuthError;
use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: f64 = 10.0;

/// The credentials of one request, as the transport found them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `api_key` query parameter, decoded.
    pub api_key: Option<&'a str>,
    /// The `stream-auth-type` header.
    pub auth_type: Option<&'a [u8]>,
    /// The `Authorization` header.
    pub authorization: Option<&'a [u8]>,
}

/// Checks credentials against the configured API key and secret.
#[derive(Clone)]
pub struct Authenticator {
    api_key: String,
    key: DecodingKey,
    validation: Validation,
    allow_dev_tokens: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_key", &self.api_key)
            .field("allow_dev_tokens", &self.allow_dev_tokens)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    role: Option<Value>,
    #[serde(default)]
    server: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
}

fn unauthenticated(msg: impl Into<String>) -> AuthError {
    AuthError::Unauthenticated(msg.into())
}

impl Authenticator {
    pub fn new(api_key: String, api_secret: &Secret, allow_dev_tokens: bool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Times are checked below with Stream's rules (leeway, fractional seconds, iat).
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Authenticator {
            api_key,
            key: DecodingKey::from_secret(api_secret.expose().as_bytes())
                .expect("an HMAC key can be any bytes"),
            validation,
            allow_dev_tokens,
        }
    }

    /// Authenticates a request. `now` is Unix time in seconds.
    pub fn authenticate(&self, c: Credentials<'_>, now: u64) -> Result<Identity, AuthError> {
        match c.api_key {
            None => {
                return Err(AuthError::ApiKey(
                    "api_key query parameter is missing".into(),
                ));
            }
            Some(k) if k != self.api_key => {
                return Err(AuthError::ApiKey(format!("api_key {k:?} is not valid")));
            }
            Some(_) => {}
        }
        if let Some(kind) = c.auth_type {
            let kind = std::str::from_utf8(kind).unwrap_or("");
            if kind.eq_ignore_ascii_case("anonymous") {
                return Err(unauthenticated(
                    "anonymous users cannot create or join calls; authenticate with a user token",
                ));
            }
            if !kind.eq_ignore_ascii_case("jwt") {
                return Err(unauthenticated("stream-auth-type must be jwt"));
            }
        }
        let header = c.authorization.ok_or_else(|| {
            unauthenticated("Authorization header is missing; send the user's JWT")
        })?;
        let header = std::str::from_utf8(header)
            .ok()
            .filter(|h| h.is_ascii())
            .ok_or_else(|| unauthenticated("Authorization header is not valid ASCII"))?;
        let token = strip_bearer(header.trim());
        if token.is_empty() {
            return Err(unauthenticated(
                "Authorization header is empty; send the user's JWT",
            ));
        }
        self.verify_token(token, now)
    }

    fn verify_token(&self, token: &str, now: u64) -> Result<Identity, AuthError> {
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(shape_error());
        };
        if head.is_empty() || payload.is_empty() {
            return Err(shape_error());
        }
        match jsonwebtoken::decode_header(token) {
            Ok(h) if h.alg == Algorithm::HS256 => {}
            Ok(h) => return Err(algorithm_error(&format!("{:?}", h.alg))),
            Err(_) => return Err(header_error(head)),
        }
        let dev = signature == "devtoken";
        if dev && !self.allow_dev_tokens {
            return Err(AuthError::TokenSignature(
                "development tokens are not accepted by this deployment".into(),
            ));
        }
        let decoded = if dev {
            jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
        } else {
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
        };
        let claims = decoded.map_err(|e| decode_error(e.kind(), payload))?.claims;
        check_times(&claims, now as f64)?;
        match &claims.server {
            None | Some(Value::Bool(false)) | Some(Value::Null) => {}
            Some(Value::Bool(true)) if !dev => return Ok(Identity::Server),
            Some(Value::Bool(true)) => {
                return Err(AuthError::TokenSignature(
                    "a development token cannot be a server token".into(),
                ));
            }
            Some(_) => {
                return Err(unauthenticated(
                    "JWTAuth error: claim server must be a boolean",
                ));
            }
        }
        let user_id = match &claims.user_id {
            Some(Value::String(u)) => validate_user_id(u.as_str())
                .map_err(|m| unauthenticated(format!("JWTAuth error: claim user_id {m}")))?,
            Some(_) => {
                return Err(unauthenticated(
                    "JWTAuth error: claim user_id must be a string",
                ));
            }
            None => {
                return Err(unauthenticated("JWTAuth error: token has no user_id claim"));
            }
        };
        let role = match &claims.role {
            None | Some(Value::Null) => "user".to_string(),
            Some(Value::String(r)) if !r.is_empty() => r.clone(),
            Some(_) => {
                return Err(unauthenticated(
                    "JWTAuth error: claim role must be a non-empty string",
                ));
            }
        };
        Ok(Identity::User {
            user_id: user_id.to_string(),
            role,
        })
    }
}

fn check_times(claims: &Claims, now: f64) -> Result<(), AuthError> {
    if let Some(exp) = time_claim(&claims.exp, "exp")?
        && now > exp + LEEWAY_SECS
    {
        return Err(AuthError::TokenExpired);
    }
    if let Some(nbf) = time_claim(&claims.nbf, "nbf")?
        && nbf > now + LEEWAY_SECS
    {
        return Err(AuthError::TokenNotYetValid);
    }
    if let Some(iat) = time_claim(&claims.iat, "iat")?
        && iat > now + LEEWAY_SECS
    {
        return Err(AuthError::TokenIssuedInFuture);
    }
    Ok(())
}

fn shape_error() -> AuthError {
    unauthenticated("JWTAuth error: token is not a JWT (expected three dot-separated parts)")
}

fn algorithm_error(alg: &str) -> AuthError {
    AuthError::TokenSignature(format!(
        "token algorithm {alg:?} is not accepted; sign tokens with HS256 and the API secret"
    ))
}

/// Why `jsonwebtoken` could not read the header: names the algorithm it does not know
/// (`none`, say), else the part that is broken.
fn header_error(head: &str) -> AuthError {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(head) else {
        return unauthenticated("JWTAuth error: token header is not valid base64url");
    };
    match serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes) {
        Err(_) => unauthenticated("JWTAuth error: token header is not a JSON object"),
        Ok(h) => match h.get("alg") {
            Some(Value::String(a)) if a == "HS256" => {
                unauthenticated("JWTAuth error: token header is not a valid JWT header")
            }
            Some(Value::String(a)) => algorithm_error(a),
            Some(other) => algorithm_error(&other.to_string()),
            None => algorithm_error("(missing)"),
        },
    }
}

/// Maps what `jsonwebtoken` refused, after the header, to Stream's codes.
fn decode_error(kind: &jsonwebtoken::errors::ErrorKind, payload: &str) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload) else {
        return unauthenticated("JWTAuth error: token payload is not valid base64url");
    };
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::Base64(_) => AuthError::TokenSignature(
            "token signature is not valid; make sure the token is signed with the API secret of this API key".into(),
        ),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => algorithm_error("(unknown)"),
        _ if !bytes.trim_ascii_start().starts_with(b"{") => {
            unauthenticated("JWTAuth error: token payload is not a JSON object")
        }
        ErrorKind::Json(e) => unauthenticated(format!(
            "JWTAuth error: token payload is not valid JSON: {e}"
        )),
        other => unauthenticated(format!("JWTAuth error: token is not valid: {other:?}")),
    }
}

fn strip_bearer(h: &str) -> &str {
    if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") {
        h[7..].trim_start()
    } else {
        h
    }
}

fn time_claim(v: &Option<Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(unauthenticated(format!(
            "JWTAuth error: claim {name} must be a number of seconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hs256;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn auth(dev: bool) -> Authenticator {
        Authenticator::new("key".into(), &Secret::new("sekret"), dev)
    }

    fn creds(token: &str) -> Credentials<'_> {
        Credentials {
            api_key: Some("key"),
            auth_type: Some(b"jwt"),
            authorization: Some(token.as_bytes()),
        }
    }

    fn token(claims: Value) -> String {
        hs256::sign_hs256(&claims, b"sekret")
    }

    fn check(claims: Value) -> Result<Identity, AuthError> {
        auth(false).authenticate(creds(&token(claims)), NOW)
    }

    fn check_token(a: &Authenticator, t: &str) -> Result<Identity, AuthError> {
        a.authenticate(creds(t), NOW)
    }

    /// The Stream code each refusal becomes (the API layer's mapping, restated).
    fn code(r: Result<Identity, AuthError>) -> i32 {
        match r.unwrap_err() {
            AuthError::ApiKey(_) => 2,
            AuthError::Unauthenticated(_) => 5,
            AuthError::TokenExpired => 40,
            AuthError::TokenNotYetValid => 41,
            AuthError::TokenIssuedInFuture => 42,
            AuthError::TokenSignature(_) => 43,
        }
    }

    #[test]
    fn user_token_with_and_without_role() {
        assert_eq!(
            check(json!({"user_id":"alice"})).unwrap(),
            Identity::User {
                user_id: "alice".into(),
                role: "user".into()
            }
        );
        assert_eq!(
            check(json!({"user_id":"bob","role":"admin","exp":NOW+60,"iat":NOW,"nbf":NOW}))
                .unwrap(),
            Identity::User {
                user_id: "bob".into(),
                role: "admin".into()
            }
        );
    }

    #[test]
    fn bearer_prefix() {
        let t = format!("Bearer {}", token(json!({"user_id":"a"})));
        let c = Credentials {
            auth_type: None,
            ..creds(&t)
        };
        assert!(auth(false).authenticate(c, NOW).is_ok());
    }

    #[test]
    fn server_token() {
        assert_eq!(check(json!({"server":true})).unwrap(), Identity::Server);
    }

    #[test]
    fn api_key_missing_or_wrong_is_code_2() {
        let t = token(json!({"user_id":"a"}));
        for key in [None, Some("nope"), Some("")] {
            let c = Credentials {
                api_key: key,
                ..creds(&t)
            };
            assert_eq!(code(auth(false).authenticate(c, NOW)), 2, "{key:?}");
        }
    }

    #[test]
    fn missing_garbled_and_anonymous_are_code_5() {
        let a = auth(false);
        let none = Credentials {
            api_key: Some("key"),
            ..Default::default()
        };
        assert_eq!(code(a.authenticate(none, NOW)), 5);
        assert_eq!(code(check_token(&a, "garbage")), 5);
        assert_eq!(code(check_token(&a, "Bearer ")), 5);
        assert_eq!(code(check_token(&a, "a.b.c.d")), 5);
        let anon = Credentials {
            auth_type: Some(b"anonymous"),
            ..none
        };
        assert_eq!(code(a.authenticate(anon, NOW)), 5);
        let not_ascii = Credentials {
            authorization: Some("é".as_bytes()),
            ..none
        };
        assert_eq!(code(a.authenticate(not_ascii, NOW)), 5);
        assert_eq!(code(check(json!({"role":"user"}))), 5, "no user_id");
        assert_eq!(code(check(json!({"user_id":7}))), 5);
        assert_eq!(code(check(json!({"user_id":""}))), 5);
        assert_eq!(code(check(json!({"user_id":"a","exp":"soon"}))), 5);
        assert_eq!(code(check(json!({"user_id":"a","role":3}))), 5);
        assert_eq!(code(check(json!({"user_id":"a","server":"yes"}))), 5);
    }

    #[test]
    fn payload_problems_are_named() {
        let a = auth(false);
        let signed = |payload: &str| {
            let input = format!(
                "{}.{}",
                hs256::HS256_HEADER_B64,
                URL_SAFE_NO_PAD.encode(payload)
            );
            let sig =
                URL_SAFE_NO_PAD.encode(crate::crypto::hmac_sha256(b"sekret", input.as_bytes()));
            format!("{input}.{sig}")
        };
        let msg = |p: &str| check_token(&a, &signed(p)).unwrap_err().to_string();
        assert!(msg("[1]").contains("not a JSON object"), "{}", msg("[1]"));
        let dup = msg(r#"{"user_id":"a","user_id":"b"}"#);
        assert!(dup.contains("duplicate field"), "{dup}");
        let big = msg(r#"{"user_id":"a","exp":1e999}"#);
        assert!(big.contains("number out of range"), "{big}");
    }

    #[test]
    fn time_claims_map_to_40_41_42_with_leeway() {
        assert_eq!(code(check(json!({"user_id":"a","exp":NOW - 11}))), 40);
        assert!(check(json!({"user_id":"a","exp":NOW - 9})).is_ok());
        assert_eq!(code(check(json!({"user_id":"a","nbf":NOW + 11}))), 41);
        assert!(check(json!({"user_id":"a","nbf":NOW + 9})).is_ok());
        assert_eq!(code(check(json!({"user_id":"a","iat":NOW + 11}))), 42);
        assert!(check(json!({"user_id":"a","iat":NOW + 9})).is_ok());
        assert!(check(json!({"user_id":"a","exp":(NOW + 5) as f64 + 0.5})).is_ok());
    }

    #[test]
    fn tampered_or_foreign_signature_is_code_43() {
        let t = token(json!({"user_id":"alice"}));
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(r#"{"user_id":"admin"}"#)
        );
        let a = auth(false);
        assert_eq!(code(check_token(&a, &forged)), 43);
        let other = hs256::sign_hs256(&json!({"user_id":"a"}), b"other-secret");
        assert_eq!(code(check_token(&a, &other)), 43);
        assert_eq!(
            code(check_token(
                &a,
                &format!("{head}.{}.", &rest[..rest.len() - sig.len() - 1])
            )),
            43
        );
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"user_id":"a","server":true}"#);
        let a = auth(true);
        for alg in ["none", "None", "RS256", "ES256", "HS512", "PS256", "hs256"] {
            let head = URL_SAFE_NO_PAD.encode(json!({"alg":alg,"typ":"JWT"}).to_string());
            for sig in ["", "devtoken", "c2lnbmF0dXJl"] {
                let t = format!("{head}.{payload}.{sig}");
                let e = check_token(&a, &t);
                assert_eq!(code(e.clone()), 43, "{alg}/{sig}");
                assert!(e.unwrap_err().to_string().contains(alg), "{alg}");
            }
        }
        let head = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#);
        assert_eq!(code(check_token(&a, &format!("{head}.{payload}.x"))), 43);
        // An RS256 header with an HMAC made with the secret as key is still refused.
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let input = format!("{head}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(crate::crypto::hmac_sha256(b"sekret", input.as_bytes()));
        assert_eq!(code(check_token(&a, &format!("{input}.{sig}"))), 43);
        // Broken headers are code 5 and say which part is broken.
        let e = check_token(&a, &format!("!!.{payload}.x")).unwrap_err();
        assert!(
            e.to_string().contains("header is not valid base64url"),
            "{e}"
        );
        let head = URL_SAFE_NO_PAD.encode("[1]");
        let e = check_token(&a, &format!("{head}.{payload}.x")).unwrap_err();
        assert!(e.to_string().contains("header is not a JSON object"), "{e}");
    }

    #[test]
    fn dev_tokens_only_when_allowed_and_never_as_server() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"user_id":"dev"}"#);
        let t = format!("{}.{payload}.devtoken", hs256::HS256_HEADER_B64);
        assert_eq!(code(check_token(&auth(false), &t)), 43);
        assert_eq!(
            check_token(&auth(true), &t).unwrap(),
            Identity::User {
                user_id: "dev".into(),
                role: "user".into()
            }
        );
        let payload = URL_SAFE_NO_PAD.encode(r#"{"server":true}"#);
        let t = format!("{}.{payload}.devtoken", hs256::HS256_HEADER_B64);
        assert_eq!(code(check_token(&auth(true), &t)), 43);
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let a = auth(false);
        let t = hs256::sign_hs256(&json!({"user_id":"a"}), b"wrong");
        let e = check_token(&a, &t).unwrap_err();
        assert!(!format!("{e} {e:?} {a:?}").contains("sekret"));
    }
}
