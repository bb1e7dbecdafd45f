//! 100ms's tokens: app tokens for clients to join a room, management tokens for the REST API,
//! HS256 with the app secret, claims in the order 100ms's server SDK writes them.

use crate::hs256;
use crate::secret::Secret;
use serde::Serialize;

/// The claims of a 100ms token, in the order 100ms's server SDK writes them; app tokens add
/// their room, role and user before `jti`.
#[derive(Serialize)]
struct Claims<'a> {
    access_key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u8,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    app: Option<AppClaims<'a>>,
    jti: &'a str,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    room_id: &'a str,
    role: &'a str,
    user_id: &'a str,
}

/// A 100ms token: `kind` is `app` or `management`; valid from `issued_at` for `lifetime` s.
fn signed(
    access_key: &str,
    secret: &Secret,
    kind: &'static str,
    app: Option<AppClaims<'_>>,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    let claims = Claims {
        access_key,
        kind,
        version: 2,
        iat: issued_at,
        nbf: issued_at,
        exp: issued_at + lifetime,
        app,
        jti,
    };
    hs256::sign_hs256(&claims, secret.expose().as_bytes())
}

/// An app token: a client joins `room_id` with it as `user_id` in `role`.
#[allow(clippy::too_many_arguments)]
pub fn app_token(
    access_key: &str,
    secret: &Secret,
    room_id: &str,
    role: &str,
    user_id: &str,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    let app = AppClaims {
        room_id,
        role,
        user_id,
    };
    signed(
        access_key,
        secret,
        "app",
        Some(app),
        issued_at,
        lifetime,
        jti,
    )
}

/// A management token for the REST API.
pub fn management_token(
    access_key: &str,
    secret: &Secret,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    signed(
        access_key,
        secret,
        "management",
        None,
        issued_at,
        lifetime,
        jti,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_token_matches_the_reference_vector() {
        let t = app_token(
            "6470b7a5e3f47d5e9a1c0f11",
            &Secret::new("test-secret-0123456789"),
            "6470b7a5e3f47d5e9a1c0f22",
            "host",
            "user-1",
            1_700_000_000,
            3600,
            "00000000-0000-4000-8000-000000000000",
        );
        assert_eq!(
            t.rsplit('.').next().unwrap(),
            "bik00cas5saAXA-Gg_EWmoPG7uaB55Hx1idO9gPkNJI"
        );
    }
}
