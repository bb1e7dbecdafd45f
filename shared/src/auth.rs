//! Stream-style authentication: `api_key` query parameter, JWT in `Authorization`.

use crate::error::ApiError;
use crate::jwt::{self, JwtError};
use crate::secret::Secret;
use http::HeaderMap;
use serde::Deserialize;

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: f64 = 10.0;
/// Longest user id accepted from a token or a request body.
pub const MAX_USER_ID_LEN: usize = 255;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A user token: its `user_id` and its role (`user` when the token has none).
    User { user_id: String, role: String },
    /// A server token (`"server": true`): holds every permission and acts for the `user_id`
    /// named in the request body.
    Server,
}

/// Checks credentials against the configured API key and secret.
#[derive(Clone, Debug)]
pub struct Authenticator {
    api_key: String,
    api_secret: Secret,
    allow_dev_tokens: bool,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    user_id: Option<serde_json::Value>,
    #[serde(default)]
    role: Option<serde_json::Value>,
    #[serde(default)]
    server: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
}

impl Authenticator {
    pub fn new(api_key: String, api_secret: Secret, allow_dev_tokens: bool) -> Self {
        Authenticator {
            api_key,
            api_secret,
            allow_dev_tokens,
        }
    }

    /// Authenticates a request. `now` is Unix time in seconds.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        now: u64,
    ) -> Result<Identity, ApiError> {
        match query_param(query.unwrap_or(""), "api_key") {
            None => {
                return Err(ApiError::ApiKey(
                    "api_key query parameter is missing".into(),
                ));
            }
            Some(k) if k != self.api_key => {
                return Err(ApiError::ApiKey(format!("api_key {k:?} is not valid")));
            }
            Some(_) => {}
        }
        if let Some(kind) = headers.get("stream-auth-type") {
            let kind = kind.to_str().unwrap_or("");
            if kind.eq_ignore_ascii_case("anonymous") {
                return Err(ApiError::Unauthenticated(
                    "anonymous users cannot create or join calls; authenticate with a user token"
                        .into(),
                ));
            }
            if !kind.eq_ignore_ascii_case("jwt") {
                return Err(ApiError::Unauthenticated(
                    "stream-auth-type must be jwt".into(),
                ));
            }
        }
        let header = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated("Authorization header is missing; send the user's JWT".into())
        })?;
        let header = header.to_str().map_err(|_| {
            ApiError::Unauthenticated("Authorization header is not valid ASCII".into())
        })?;
        let token = strip_bearer(header.trim());
        if token.is_empty() {
            return Err(ApiError::Unauthenticated(
                "Authorization header is empty; send the user's JWT".into(),
            ));
        }
        self.verify_token(token, now)
    }

    fn verify_token(&self, token: &str, now: u64) -> Result<Identity, ApiError> {
        let decoded = jwt::decode_hs256(token).map_err(|e| match e {
            JwtError::Algorithm(_) | JwtError::Signature => ApiError::TokenSignature(e.to_string()),
            _ => ApiError::Unauthenticated(format!("JWTAuth error: {e}")),
        })?;
        let dev = decoded.signature_b64 == "devtoken";
        if dev && !self.allow_dev_tokens {
            return Err(ApiError::TokenSignature(
                "development tokens are not accepted by this deployment".into(),
            ));
        }
        if !dev {
            decoded
                .verify(self.api_secret.expose().as_bytes())
                .map_err(|e| ApiError::TokenSignature(e.to_string()))?;
        }
        let claims: Claims = serde_json::from_slice(&decoded.payload).map_err(|_| {
            ApiError::Unauthenticated("JWTAuth error: token payload is not a JSON object".into())
        })?;
        let now = now as f64;
        if let Some(exp) = time_claim(&claims.exp, "exp")?
            && now > exp + LEEWAY_SECS
        {
            return Err(ApiError::TokenExpired);
        }
        if let Some(nbf) = time_claim(&claims.nbf, "nbf")?
            && nbf > now + LEEWAY_SECS
        {
            return Err(ApiError::TokenNotYetValid);
        }
        if let Some(iat) = time_claim(&claims.iat, "iat")?
            && iat > now + LEEWAY_SECS
        {
            return Err(ApiError::TokenIssuedInFuture);
        }
        match &claims.server {
            None | Some(serde_json::Value::Bool(false)) | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Bool(true)) if !dev => return Ok(Identity::Server),
            Some(serde_json::Value::Bool(true)) => {
                return Err(ApiError::TokenSignature(
                    "a development token cannot be a server token".into(),
                ));
            }
            Some(_) => {
                return Err(ApiError::Unauthenticated(
                    "JWTAuth error: claim server must be a boolean".into(),
                ));
            }
        }
        let user_id = match &claims.user_id {
            Some(serde_json::Value::String(u)) => validate_user_id(u).map_err(|m| {
                ApiError::Unauthenticated(format!("JWTAuth error: claim user_id {m}"))
            })?,
            Some(_) => {
                return Err(ApiError::Unauthenticated(
                    "JWTAuth error: claim user_id must be a string".into(),
                ));
            }
            None => {
                return Err(ApiError::Unauthenticated(
                    "JWTAuth error: token has no user_id claim".into(),
                ));
            }
        };
        let role = match &claims.role {
            None | Some(serde_json::Value::Null) => "user".to_string(),
            Some(serde_json::Value::String(r)) if !r.is_empty() => r.clone(),
            Some(_) => {
                return Err(ApiError::Unauthenticated(
                    "JWTAuth error: claim role must be a non-empty string".into(),
                ));
            }
        };
        Ok(Identity::User {
            user_id: user_id.to_string(),
            role,
        })
    }
}

/// Checks a user id: non-empty, at most 255 bytes, no control characters.
pub fn validate_user_id(u: &str) -> Result<&str, &'static str> {
    if u.is_empty() {
        return Err("must not be empty");
    }
    if u.len() > MAX_USER_ID_LEN {
        return Err("is longer than 255 bytes");
    }
    if u.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(u)
}

fn strip_bearer(h: &str) -> &str {
    if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") {
        h[7..].trim_start()
    } else {
        h
    }
}

fn time_claim(v: &Option<serde_json::Value>, name: &str) -> Result<Option<f64>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(ApiError::Unauthenticated(format!(
            "JWTAuth error: claim {name} must be a number of seconds"
        ))),
    }
}

/// The first value of `name` in a query string, percent-decoded (`+` as space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(k) == name).then(|| decode_component(v))
    })
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn auth(dev: bool) -> Authenticator {
        Authenticator::new("key".into(), Secret::new("sekret"), dev)
    }

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", token.parse().unwrap());
        h.insert("stream-auth-type", "jwt".parse().unwrap());
        h
    }

    fn token(claims: serde_json::Value) -> String {
        jwt::sign_hs256(&claims, b"sekret")
    }

    fn check(claims: serde_json::Value) -> Result<Identity, ApiError> {
        auth(false).authenticate(&headers(&token(claims)), Some("api_key=key"), NOW)
    }

    fn code(r: Result<Identity, ApiError>) -> i32 {
        r.unwrap_err().status_and_code().1
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
    fn bearer_prefix_and_header_case() {
        let mut h = HeaderMap::new();
        h.insert(
            "Authorization",
            format!("Bearer {}", token(json!({"user_id":"a"})))
                .parse()
                .unwrap(),
        );
        assert!(
            auth(false)
                .authenticate(&h, Some("user_id=a&api_key=key&connection_id=c"), NOW)
                .is_ok()
        );
    }

    #[test]
    fn server_token() {
        assert_eq!(check(json!({"server":true})).unwrap(), Identity::Server);
    }

    #[test]
    fn api_key_missing_or_wrong_is_code_2() {
        let h = headers(&token(json!({"user_id":"a"})));
        assert_eq!(code(auth(false).authenticate(&h, None, NOW)), 2);
        assert_eq!(
            code(auth(false).authenticate(&h, Some("api_key=nope"), NOW)),
            2
        );
        assert_eq!(
            code(auth(false).authenticate(&h, Some("apikey=key"), NOW)),
            2
        );
    }

    #[test]
    fn missing_garbled_and_anonymous_are_code_5() {
        let a = auth(false);
        assert_eq!(
            code(a.authenticate(&HeaderMap::new(), Some("api_key=key"), NOW)),
            5
        );
        assert_eq!(
            code(a.authenticate(&headers("garbage"), Some("api_key=key"), NOW)),
            5
        );
        assert_eq!(
            code(a.authenticate(&headers("Bearer "), Some("api_key=key"), NOW)),
            5
        );
        let mut h = HeaderMap::new();
        h.insert("stream-auth-type", "anonymous".parse().unwrap());
        assert_eq!(code(a.authenticate(&h, Some("api_key=key"), NOW)), 5);
        assert_eq!(code(check(json!({"role":"user"}))), 5, "no user_id");
        assert_eq!(code(check(json!({"user_id":7}))), 5);
        assert_eq!(code(check(json!({"user_id":""}))), 5);
        assert_eq!(code(check(json!({"user_id":"a","exp":"soon"}))), 5);
        assert_eq!(code(check(json!({"user_id":"a","role":3}))), 5);
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
        assert_eq!(
            code(a.authenticate(&headers(&forged), Some("api_key=key"), NOW)),
            43
        );
        let other = jwt::sign_hs256(&json!({"user_id":"a"}), b"other-secret");
        assert_eq!(
            code(a.authenticate(&headers(&other), Some("api_key=key"), NOW)),
            43
        );
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"user_id":"a","server":true}"#);
        let a = auth(true);
        for alg in ["none", "None", "RS256", "ES256", "HS512", "PS256"] {
            let head = URL_SAFE_NO_PAD.encode(json!({"alg":alg,"typ":"JWT"}).to_string());
            for sig in ["", "devtoken", "c2lnbmF0dXJl"] {
                let t = format!("{head}.{payload}.{sig}");
                assert_eq!(
                    code(a.authenticate(&headers(&t), Some("api_key=key"), NOW)),
                    43,
                    "{alg}/{sig}"
                );
            }
        }
        // An RS256 header with an HMAC made with the secret as key is still refused.
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let input = format!("{head}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(crate::crypto::hmac_sha256(b"sekret", input.as_bytes()));
        let t = format!("{input}.{sig}");
        assert_eq!(
            code(a.authenticate(&headers(&t), Some("api_key=key"), NOW)),
            43
        );
    }

    #[test]
    fn dev_tokens_only_when_allowed_and_never_as_server() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"user_id":"dev"}"#);
        let t = format!("{}.{payload}.devtoken", jwt::HS256_HEADER_B64);
        assert_eq!(
            code(auth(false).authenticate(&headers(&t), Some("api_key=key"), NOW)),
            43
        );
        assert_eq!(
            auth(true)
                .authenticate(&headers(&t), Some("api_key=key"), NOW)
                .unwrap(),
            Identity::User {
                user_id: "dev".into(),
                role: "user".into()
            }
        );
        let payload = URL_SAFE_NO_PAD.encode(r#"{"server":true}"#);
        let t = format!("{}.{payload}.devtoken", jwt::HS256_HEADER_B64);
        assert_eq!(
            code(auth(true).authenticate(&headers(&t), Some("api_key=key"), NOW)),
            43
        );
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let a = auth(false);
        let t = jwt::sign_hs256(&json!({"user_id":"a"}), b"wrong");
        let e = a
            .authenticate(&headers(&t), Some("api_key=key"), NOW)
            .unwrap_err();
        assert!(!format!("{e} {e:?} {a:?}").contains("sekret"));
    }

    #[test]
    fn query_param_decoding() {
        assert_eq!(
            query_param("a=1&api_key=k%20x", "api_key").as_deref(),
            Some("k x")
        );
        assert_eq!(query_param("api%5Fkey=z", "api_key").as_deref(), Some("z"));
        assert_eq!(query_param("api_key", "api_key").as_deref(), Some(""));
        assert_eq!(query_param("", "api_key"), None);
    }
}
