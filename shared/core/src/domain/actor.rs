//! Who a request acts for: the identity its credentials prove, and the user it acts as.

use super::permissions::{Grants, Permission};
use crate::error::Error;

/// Longest user id accepted from a token or a request body.
pub const MAX_USER_ID_LEN: usize = 255;

/// Who is calling, as proven by the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A user token: its `user_id` and its role (`user` when the token has none).
    User { user_id: String, role: String },
    /// A server token (`"server": true`): holds every permission and acts for the user named
    /// in the request.
    Server,
}

/// The user a server-token request names in its body (`user_id`, or `user.id` and
/// `user.role`). User tokens ignore it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamedUser {
    pub user_id: Option<String>,
    /// `None`: no role given (the user is a `user`).
    pub role: Option<String>,
}

/// The user a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub role: String,
    /// Acting through a server token, with the app's authority: every permission.
    pub server: bool,
}

impl Actor {
    /// The actor of a request: the token's user, or for a server token the user it names.
    pub fn resolve(identity: Identity, named: NamedUser) -> Result<Actor, Error> {
        match identity {
            Identity::User { user_id, role } => Ok(Actor {
                user_id,
                role,
                server: false,
            }),
            Identity::Server => {
                let user_id = named.user_id.ok_or_else(|| {
                    Error::input(
                        "a server token must name the user it acts for: user_id or user.id",
                    )
                })?;
                validate_user_id(&user_id).map_err(|m| Error::input(format!("user_id {m}")))?;
                let role = match named.role {
                    None => "user".to_string(),
                    Some(r) if !r.is_empty() => r,
                    Some(_) => return Err(Error::input("user.role must be a non-empty string")),
                };
                Ok(Actor {
                    user_id,
                    role,
                    server: true,
                })
            }
        }
    }

    /// Refuses an actor whose role lacks `perm` (server tokens hold every permission).
    pub fn require(&self, perm: Permission, grants: &Grants) -> Result<(), Error> {
        if self.server || grants.allows(&self.role, perm) {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "user {:?} with role {:?} is not allowed to perform action {}",
            self.user_id,
            self.role,
            perm.name()
        )))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn named(user_id: Option<&str>, role: Option<&str>) -> NamedUser {
        NamedUser {
            user_id: user_id.map(str::to_string),
            role: role.map(str::to_string),
        }
    }

    #[test]
    fn user_tokens_act_for_their_user_whatever_the_body_says() {
        let a = Actor::resolve(
            Identity::User {
                user_id: "alice".into(),
                role: "admin".into(),
            },
            named(Some("bob"), Some("guest")),
        )
        .unwrap();
        assert_eq!(
            (a.user_id.as_str(), a.role.as_str(), a.server),
            ("alice", "admin", false)
        );
    }

    #[test]
    fn server_tokens_act_for_the_named_user() {
        let a = Actor::resolve(Identity::Server, named(Some("carol"), None)).unwrap();
        assert_eq!(
            (a.user_id.as_str(), a.role.as_str(), a.server),
            ("carol", "user", true)
        );
        let a = Actor::resolve(Identity::Server, named(Some("carol"), Some("guest"))).unwrap();
        assert_eq!(a.role, "guest");
        for (n, needle) in [
            (named(None, None), "must name the user"),
            (named(Some(""), None), "user_id must not be empty"),
            (named(Some("a\u{7}"), None), "control characters"),
            (named(Some(&"x".repeat(256)), None), "longer than 255"),
            (named(Some("a"), Some("")), "user.role"),
        ] {
            let e = Actor::resolve(Identity::Server, n).unwrap_err();
            assert!(matches!(e, Error::Input(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn permissions_come_from_the_grants_except_for_servers() {
        let grants = Grants::parse("user:join-call").unwrap();
        let user = |role: &str, server| Actor {
            user_id: "u".into(),
            role: role.into(),
            server,
        };
        assert!(
            user("user", false)
                .require(Permission::JoinCall, &grants)
                .is_ok()
        );
        let e = user("user", false)
            .require(Permission::CreateCall, &grants)
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("create-call"), "{e}");
        assert!(
            user("guest", true)
                .require(Permission::CreateCall, &grants)
                .is_ok()
        );
    }
}
