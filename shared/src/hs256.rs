//! Signing HS256 JSON Web Tokens (Stream user tokens for the sandbox and tests, 100ms app and
//! management tokens) through `jsonwebtoken`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::Serialize;

/// The header every token we sign carries, base64url of `{"alg":"HS256","typ":"JWT"}`, in the
/// order 100ms's server SDK and Stream's SDKs write it (`jsonwebtoken::encode` writes `typ`
/// first, which changes the signed bytes; the 100ms reference vector pins this order).
pub const HS256_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Signs `claims` (serialised in field order) with `secret`.
pub fn sign_hs256<C: Serialize>(claims: &C, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let mut out = String::with_capacity(HS256_HEADER_B64.len() + payload.len() * 4 / 3 + 48);
    out.push_str(HS256_HEADER_B64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let key = EncodingKey::from_secret(secret).expect("an HMAC key can be any bytes");
    let signature = jsonwebtoken::crypto::sign(out.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs with any key");
    out.push('.');
    out.push_str(&signature);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    #[test]
    fn header_constant_is_the_standard_header() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HS256_HEADER_B64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn tokens_verify_with_jsonwebtoken_and_match_jwt_io() {
        let t = sign_hs256(&json!({"user_id":"u1"}), b"secret");
        let mut v = Validation::new(Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let d = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &DecodingKey::from_secret(b"secret").unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(d.claims, json!({"user_id":"u1"}));
        // jwt.io's default token (RFC 7515 A.1 uses a binary key).
        #[derive(serde::Serialize)]
        struct Claims {
            sub: &'static str,
            name: &'static str,
            iat: u64,
        }
        let t = sign_hs256(
            &Claims {
                sub: "1234567890",
                name: "John Doe",
                iat: 1516239022,
            },
            b"your-256-bit-secret",
        );
        assert_eq!(
            t,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
    }
}
