//! Call ids and channel ids: parsed once, valid from then on.

use std::fmt;

/// A call id in canonical form: 1 to 64 characters of `a-z 0-9 . - : _` (ASCII lowercase of
/// what the client sent). Uniqueness, storage keys and responses all use this form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(String);

/// Why a call id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallIdError {
    #[error("call id must not be empty")]
    Empty,
    #[error("call id is {0} characters long; the limit is 64")]
    TooLong(usize),
    #[error("call id contains {0:?}; allowed characters are a-z A-Z 0-9 . - : _")]
    BadChar(char),
    #[error(
        "call id {0:?} is made only of dots; URLs drop . and .. path segments, so no client could address the call; use another id"
    )]
    OnlyDots(String),
}

impl CallId {
    pub const MAX_LEN: usize = 64;

    /// Validates `raw` and returns its canonical (ASCII-lowercase) form.
    pub fn parse(raw: &str) -> Result<Self, CallIdError> {
        if raw.is_empty() {
            return Err(CallIdError::Empty);
        }
        if let Some(c) = raw.chars().find(|c| !is_call_id_char(*c)) {
            return Err(CallIdError::BadChar(c));
        }
        // Only ASCII is left, so bytes == chars.
        if raw.len() > Self::MAX_LEN {
            return Err(CallIdError::TooLong(raw.len()));
        }
        if raw.bytes().all(|b| b == b'.') {
            return Err(CallIdError::OnlyDots(raw.to_string()));
        }
        Ok(CallId(raw.to_ascii_lowercase()))
    }

    /// A fresh random id: a lowercase UUIDv4, as the seed promises for a missing id.
    pub fn generate() -> Self {
        CallId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_call_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({:?})", self.0)
    }
}

/// A chat channel, `type:id`, as Stream names it (`cid`). Case is kept: Stream channel ids are
/// case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelCid {
    cid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel type must be 1 to 64 characters of a-z A-Z 0-9 _ -")]
    BadType,
    #[error("channel id must be 1 to 64 characters of a-z A-Z 0-9 ! @ . : _ -")]
    BadId,
}

impl ChannelCid {
    pub const MAX_LEN: usize = 64;

    pub fn parse(channel_type: &str, channel_id: &str) -> Result<Self, ChannelError> {
        let ok_len = |s: &str| !s.is_empty() && s.len() <= Self::MAX_LEN;
        if !ok_len(channel_type)
            || !channel_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(ChannelError::BadType);
        }
        if !ok_len(channel_id)
            || !channel_id.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '!' | '@' | '.' | ':' | '_' | '-')
            })
        {
            return Err(ChannelError::BadId);
        }
        Ok(ChannelCid {
            cid: format!("{channel_type}:{channel_id}"),
        })
    }

    /// Rebuilds a cid read back from storage (already validated when it was written).
    pub fn from_stored(cid: String) -> Self {
        ChannelCid { cid }
    }

    pub fn as_str(&self) -> &str {
        &self.cid
    }

    /// `(type, id)`. The type never holds a `:`, so the first one separates them.
    pub fn parts(&self) -> (&str, &str) {
        self.cid.split_once(':').unwrap_or((&self.cid, ""))
    }
}

impl fmt::Display for ChannelCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_ascii_lowercase() {
        let id = CallId::parse("StandUp:Team_1.A-b").unwrap();
        assert_eq!(id.as_str(), "standup:team_1.a-b");
        assert_eq!(id, CallId::parse("STANDUP:TEAM_1.A-B").unwrap());
    }

    #[test]
    fn length_bounds() {
        assert_eq!(CallId::parse(""), Err(CallIdError::Empty));
        let max = "a".repeat(64);
        assert_eq!(CallId::parse(&max).unwrap().as_str(), max);
        assert_eq!(
            CallId::parse(&"a".repeat(65)),
            Err(CallIdError::TooLong(65))
        );
        assert_eq!(CallId::parse("x").unwrap().as_str(), "x");
    }

    #[test]
    fn refuses_every_character_outside_the_set() {
        for bad in [
            " ", "/", "%", "é", "a b", "a/b", "a#b", "\u{0}", "ǅ", "\u{212A}",
        ] {
            let err = CallId::parse(bad).unwrap_err();
            assert!(matches!(err, CallIdError::BadChar(_)), "{bad:?} -> {err:?}");
        }
        // Every allowed ASCII character is accepted.
        let all: String = ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain(".-:_".chars())
            .collect();
        assert_eq!(all.len(), 66);
        assert!(CallId::parse(&all[..64]).is_ok());
        assert!(CallId::parse(&all[2..]).is_ok());
    }

    #[test]
    fn ids_of_dots_alone_are_refused_as_unaddressable() {
        for dots in [".", "..", "..."] {
            let e = CallId::parse(dots).unwrap_err();
            assert_eq!(e, CallIdError::OnlyDots(dots.into()));
            assert!(e.to_string().contains("URLs drop . and .."), "{e}");
        }
        assert_eq!(CallId::parse(".a.").unwrap().as_str(), ".a.");
        assert_eq!(CallId::parse("a..b").unwrap().as_str(), "a..b");
    }

    #[test]
    fn error_messages_name_the_rule() {
        assert_eq!(
            CallId::parse("a b").unwrap_err().to_string(),
            "call id contains ' '; allowed characters are a-z A-Z 0-9 . - : _"
        );
    }

    #[test]
    fn generated_ids_are_lowercase_uuid_v4_and_valid() {
        let a = CallId::generate();
        let b = CallId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(&a.as_str()[14..15], "4");
        assert_eq!(CallId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn channel_cid() {
        assert_eq!(
            ChannelCid::parse("messaging", "General!1")
                .unwrap()
                .as_str(),
            "messaging:General!1"
        );
        assert_eq!(
            ChannelCid::parse("team", "a:b:c").unwrap().parts(),
            ("team", "a:b:c")
        );
        assert_eq!(ChannelCid::parse("", "x"), Err(ChannelError::BadType));
        assert_eq!(ChannelCid::parse("a:b", "x"), Err(ChannelError::BadType));
        assert_eq!(ChannelCid::parse("t", ""), Err(ChannelError::BadId));
        assert_eq!(ChannelCid::parse("t", "a/b"), Err(ChannelError::BadId));
        assert_eq!(
            ChannelCid::parse("t", &"x".repeat(65)),
            Err(ChannelError::BadId)
        );
    }
}
