//! Which roles may create and join calls: a grant table, configurable per deployment.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    CreateCall,
    JoinCall,
    /// End any call (a call's creator may end it without this).
    EndCall,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::CreateCall => "create-call",
            Permission::JoinCall => "join-call",
            Permission::EndCall => "end-call",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "create-call" => Some(Permission::CreateCall),
            "join-call" => Some(Permission::JoinCall),
            "end-call" => Some(Permission::EndCall),
            _ => None,
        }
    }
    fn bit(self) -> u8 {
        match self {
            Permission::CreateCall => 1,
            Permission::JoinCall => 2,
            Permission::EndCall => 4,
        }
    }
}

/// Role name -> permissions. Server tokens bypass the table (they hold every permission).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    roles: HashMap<String, u8>,
}

impl Default for Grants {
    /// `user` and `admin` may create and join calls; `admin` may end any call.
    fn default() -> Self {
        Grants::parse(Self::DEFAULT).expect("default grants parse")
    }
}

impl Grants {
    pub const DEFAULT: &'static str =
        "user:create-call,join-call;admin:create-call,join-call,end-call";

    /// Parses `role:perm,perm;role:perm`. A role listed with nothing after the colon has no
    /// permissions. Whitespace around items is ignored.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut roles = HashMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (role, perms) = entry.split_once(':').ok_or_else(|| {
                format!("entry {entry:?} must look like role:create-call,join-call")
            })?;
            let role = role.trim();
            if role.is_empty() {
                return Err(format!("entry {entry:?} has an empty role"));
            }
            let mut bits = 0u8;
            for p in perms.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let perm = Permission::parse(p).ok_or_else(|| {
                    format!("unknown permission {p:?} (known: create-call, join-call, end-call)")
                })?;
                bits |= perm.bit();
            }
            if roles.insert(role.to_string(), bits).is_some() {
                return Err(format!("role {role:?} is listed twice"));
            }
        }
        Ok(Grants { roles })
    }

    pub fn allows(&self, role: &str, perm: Permission) -> bool {
        self.roles.get(role).is_some_and(|b| b & perm.bit() != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grants() {
        let g = Grants::default();
        for role in ["user", "admin"] {
            assert!(g.allows(role, Permission::CreateCall));
            assert!(g.allows(role, Permission::JoinCall));
        }
        assert!(!g.allows("guest", Permission::JoinCall));
        assert!(!g.allows("User", Permission::JoinCall));
        assert!(g.allows("admin", Permission::EndCall));
        assert!(!g.allows("user", Permission::EndCall));
    }

    #[test]
    fn custom_grants() {
        let g =
            Grants::parse(" user: join-call ; moderator:create-call,join-call; banned: ").unwrap();
        assert!(g.allows("user", Permission::JoinCall));
        assert!(!g.allows("user", Permission::CreateCall));
        assert!(g.allows("moderator", Permission::CreateCall));
        assert!(!g.allows("banned", Permission::JoinCall));
        assert!(!g.allows("admin", Permission::JoinCall));
        let g = Grants::parse("host:end-call").unwrap();
        assert!(g.allows("host", Permission::EndCall));
        assert!(!g.allows("host", Permission::JoinCall));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        assert!(Grants::parse("user").unwrap_err().contains("role:"));
        assert!(
            Grants::parse("user:fly")
                .unwrap_err()
                .contains("unknown permission")
        );
        assert!(
            Grants::parse(":join-call")
                .unwrap_err()
                .contains("empty role")
        );
        assert!(
            Grants::parse("a:join-call;a:create-call")
                .unwrap_err()
                .contains("twice")
        );
    }
}
