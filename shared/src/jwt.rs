//! HS256 JSON Web Tokens: the compact serialisation, signed and checked with HMAC-SHA256.
//! Only HS256 exists here; every other `alg` is refused before any key is touched.

use crate::crypto;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// The header every token we sign carries, base64url of `{"alg":"HS256","typ":"JWT"}`.
pub const HS256_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Signs `claims` (serialised in field order) with `secret`.
pub fn sign_hs256<C: Serialize>(claims: &C, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let mut out = String::with_capacity(HS256_HEADER_B64.len() + payload.len() * 4 / 3 + 48);
    out.push_str(HS256_HEADER_B64);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let sig = crypto::hmac_sha256(secret, out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    out
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is not a JWT (expected three dot-separated parts)")]
    Shape,
    #[error("token {0} is not valid base64url")]
    Base64(&'static str),
    #[error("token {0} is not a JSON object")]
    Json(&'static str),
    #[error("token algorithm {0:?} is not accepted; sign tokens with HS256 and the API secret")]
    Algorithm(String),
    #[error(
        "token signature is not valid; make sure the token is signed with the API secret of this API key"
    )]
    Signature,
}

/// A token split and decoded, signature not yet checked.
pub struct Decoded<'a> {
    /// `header.payload`, the signed bytes.
    pub signing_input: &'a str,
    pub signature_b64: &'a str,
    pub payload: Vec<u8>,
}

/// Splits a compact JWT, decodes header and payload and checks the header says HS256.
pub fn decode_hs256(token: &str) -> Result<Decoded<'_>, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Shape);
    };
    if s.contains('.') || h.is_empty() || p.is_empty() {
        return Err(JwtError::Shape);
    }
    let header = b64(h).ok_or(JwtError::Base64("header"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|_| JwtError::Json("header"))?;
    match header.get("alg") {
        Some(serde_json::Value::String(a)) if a == "HS256" => {}
        Some(serde_json::Value::String(a)) => return Err(JwtError::Algorithm(a.clone())),
        Some(other) => return Err(JwtError::Algorithm(other.to_string())),
        None => return Err(JwtError::Algorithm("(missing)".into())),
    }
    let payload = b64(p).ok_or(JwtError::Base64("payload"))?;
    if !payload.trim_ascii_start().starts_with(b"{") {
        return Err(JwtError::Json("payload"));
    }
    Ok(Decoded {
        signing_input: &token[..h.len() + 1 + p.len()],
        signature_b64: s,
        payload,
    })
}

impl Decoded<'_> {
    /// Constant-time check of the HMAC-SHA256 signature.
    pub fn verify(&self, secret: &[u8]) -> Result<(), JwtError> {
        let sig = b64(self.signature_b64).ok_or(JwtError::Signature)?;
        if crypto::hmac_sha256_verify(secret, self.signing_input.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(JwtError::Signature)
        }
    }
}

/// base64url, with or without padding.
fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_constant_is_the_standard_header() {
        assert_eq!(
            URL_SAFE_NO_PAD.decode(HS256_HEADER_B64).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }

    #[test]
    fn signs_and_verifies() {
        let t = sign_hs256(&json!({"user_id":"u1"}), b"secret");
        let d = decode_hs256(&t).unwrap();
        assert_eq!(d.payload, br#"{"user_id":"u1"}"#);
        d.verify(b"secret").unwrap();
        assert_eq!(d.verify(b"other"), Err(JwtError::Signature));
    }

    #[test]
    fn matches_jwt_io_reference_token() {
        // The HS256 example of RFC 7515 appendix A.1 uses a binary key; this is jwt.io's default.
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        decode_hs256(t)
            .unwrap()
            .verify(b"your-256-bit-secret")
            .unwrap();
    }

    #[test]
    fn refuses_other_algorithms_and_garbage() {
        let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let body = enc(json!({"user_id":"u"}));
        for alg in [
            "none", "RS256", "ES256", "HS384", "HS512", "hs256", "PS256", "EdDSA",
        ] {
            let t = format!("{}.{body}.", enc(json!({"alg": alg, "typ": "JWT"})));
            assert_eq!(
                decode_hs256(&t).err(),
                Some(JwtError::Algorithm(alg.into())),
                "{alg}"
            );
        }
        let t = format!("{}.{body}.x", enc(json!({"typ": "JWT"})));
        assert!(matches!(decode_hs256(&t), Err(JwtError::Algorithm(_))));
        assert_eq!(decode_hs256("abc").err(), Some(JwtError::Shape));
        assert_eq!(decode_hs256("a.b.c.d").err(), Some(JwtError::Shape));
        assert_eq!(
            decode_hs256("!!.b.c").err(),
            Some(JwtError::Base64("header"))
        );
        assert_eq!(
            decode_hs256(&format!("{}.b.c", enc(json!([1])))).err(),
            Some(JwtError::Json("header"))
        );
        let t = format!("{HS256_HEADER_B64}.{}.c", URL_SAFE_NO_PAD.encode("[1]"));
        assert_eq!(decode_hs256(&t).err(), Some(JwtError::Json("payload")));
    }
}
