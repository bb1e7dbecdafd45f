//! Request bodies: each parsed once, into the typed command of its use case.

use super::error::ApiError;
use crate::domain::{
    Actor, CallId, CallOptions, CallType, ChannelCid, Identity, NamedUser, OptionValue,
};
use crate::error::Error;
use crate::usecase::end_call::MAX_REASON_CHARS;
use crate::usecase::{CreateCall, EndCall, GetCallToken};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};

/// One field of a body as the client sent it: `null`, a value of the expected type, or
/// something else (which the command builder refuses with a message of its own).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Field<T> {
    Null(()),
    Is(T),
    Other(IgnoredAny),
}

/// A value that must be a JSON object. A derived struct also reads a JSON array positionally
/// (`["bob","admin"]` as `{id, role}`); this refuses it, so that `Field` sees something else.
#[derive(Debug)]
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Objects<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Objects<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Objects(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// The fields a server token names its user with. User tokens ignore them.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct UserFields {
    user_id: Option<Field<String>>,
    user: Option<Field<ObjectOnly<UserObject>>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct UserObject {
    id: Option<Field<String>>,
    role: Option<Field<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct CreateCallBody {
    id: Option<Field<String>>,
    #[serde(rename = "type")]
    call_type: Option<Field<String>>,
    options: Option<Field<Map<String, Value>>>,
    #[serde(flatten)]
    user: UserFields,
}

#[derive(Deserialize, Debug, Default)]
struct GetCallTokenBody {
    #[serde(flatten)]
    user: UserFields,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct EndCallBody {
    reason: Option<Field<String>>,
    #[serde(flatten)]
    user: UserFields,
}

/// Whether the actor may do what the request asks; checked before the body's fields, so a
/// refused actor learns nothing about them (the use cases' own rule: `Calls::authorize`).
pub type Authorize<'a> = &'a dyn Fn(&Actor) -> Result<(), Error>;

/// The Create Call command of a request to `/channels/{type}/{id}/call`.
pub fn create_call(
    channel_type: &str,
    channel_id: &str,
    body: &[u8],
    identity: Identity,
    authorize: Authorize<'_>,
) -> Result<CreateCall, ApiError> {
    let cid =
        ChannelCid::parse(channel_type, channel_id).map_err(|e| ApiError::input(e.to_string()))?;
    let body: CreateCallBody = parse(body, true)?;
    let actor = actor(identity, body.user)?;
    authorize(&actor)?;
    let id = match body.id {
        None | Some(Field::Null(())) => None,
        Some(Field::Is(s)) => Some(CallId::parse(&s).map_err(|e| ApiError::input(e.to_string()))?),
        Some(Field::Other(_)) => return Err(ApiError::input("id must be a string")),
    };
    let call_type = match body.call_type {
        Some(Field::Is(s)) => CallType::parse(&s)
            .ok_or_else(|| ApiError::input(format!("type must be video or audio, not {s:?}")))?,
        None | Some(Field::Null(())) => {
            return Err(ApiError::input("type is required: video or audio"));
        }
        Some(Field::Other(_)) => {
            return Err(ApiError::input("type must be the string video or audio"));
        }
    };
    let options = match body.options {
        None | Some(Field::Null(())) => CallOptions::default(),
        Some(Field::Is(map)) => CallOptions(
            map.into_iter()
                .map(|(k, v)| (k, option_value(&v)))
                .collect(),
        ),
        Some(Field::Other(_)) => return Err(ApiError::input("options must be an object")),
    };
    Ok(CreateCall {
        cid,
        id,
        call_type,
        options,
        actor,
    })
}

/// The Get Call Token command of a request to `/calls/{id}`.
pub fn get_call_token(
    call_id: &str,
    body: &[u8],
    identity: Identity,
    authorize: Authorize<'_>,
) -> Result<GetCallToken, ApiError> {
    let id = CallId::parse(call_id).map_err(|e| ApiError::input(e.to_string()))?;
    let body: GetCallTokenBody = parse(body, false)?;
    let actor = actor(identity, body.user)?;
    authorize(&actor)?;
    Ok(GetCallToken { id, actor })
}

/// The End Call command of a request to `/calls/{id}/end`: `{}` (or no body) or
/// `{"reason": "..."}`. Who may end the call depends on the call, so the use case decides.
pub fn end_call(call_id: &str, body: &[u8], identity: Identity) -> Result<EndCall, ApiError> {
    let id = CallId::parse(call_id).map_err(|e| ApiError::input(e.to_string()))?;
    let body: EndCallBody = parse(body, false)?;
    let actor = actor(identity, body.user)?;
    let reason = match body.reason {
        None | Some(Field::Null(())) => None,
        Some(Field::Is(r)) if r.chars().count() <= MAX_REASON_CHARS => Some(r),
        Some(Field::Is(_)) => {
            return Err(ApiError::input(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        Some(Field::Other(_)) => return Err(ApiError::input("reason must be a string")),
    };
    Ok(EndCall { id, reason, actor })
}

/// The acting user: the token's, or for a server token the one the body names.
fn actor(identity: Identity, fields: UserFields) -> Result<Actor, ApiError> {
    if let Identity::User { .. } = identity {
        return Ok(Actor::resolve(identity, NamedUser::default())?);
    }
    let user = match fields.user {
        Some(Field::Is(ObjectOnly(u))) => u,
        _ => UserObject::default(),
    };
    let user_id = match (fields.user_id, user.id) {
        (Some(Field::Is(a)), Some(Field::Is(b))) if a != b => {
            return Err(ApiError::input(format!(
                "user_id {a:?} and user.id {b:?} name different users; name the user once"
            )));
        }
        (Some(Field::Is(u)), _) | (None, Some(Field::Is(u))) => Some(u),
        (Some(_), _) | (None, Some(_)) => return Err(ApiError::input("user_id must be a string")),
        (None, None) => None,
    };
    let role = match user.role {
        None | Some(Field::Null(())) => None,
        Some(Field::Is(r)) => Some(r),
        Some(Field::Other(_)) => {
            return Err(ApiError::input("user.role must be a non-empty string"));
        }
    };
    Ok(Actor::resolve(identity, NamedUser { user_id, role })?)
}

/// One option value as the providers see it.
pub(crate) fn option_value(v: &Value) -> OptionValue {
    match v {
        Value::Null => OptionValue::Null,
        Value::Bool(b) => OptionValue::Bool(*b),
        Value::Number(n) => n
            .as_u64()
            .map_or(OptionValue::OtherNumber, OptionValue::Count),
        Value::String(s) => OptionValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => OptionValue::Structured,
    }
}

/// Parses a JSON object body. An empty body is the default unless `required`.
fn parse<T: DeserializeOwned + Default>(body: &[u8], required: bool) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::input(
                "request body is required: a JSON object with id and type",
            ))
        } else {
            Ok(T::default())
        };
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::input("request body is not valid UTF-8"))?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => ApiError::input("request body must be a JSON object"),
            Err(e) => ApiError::input(format!("request body is not valid JSON: {e}")),
        });
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::input(format!("request body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Identity {
        Identity::User {
            user_id: "alice".into(),
            role: "user".into(),
        }
    }

    fn allow(_: &Actor) -> Result<(), Error> {
        Ok(())
    }

    fn create(body: &str, identity: Identity) -> Result<CreateCall, String> {
        create_call("messaging", "general", body.as_bytes(), identity, &allow)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn create_call_bodies_become_commands() {
        let c = create(
            r#"{"id":"Standup","type":"audio","options":{"region":"eu","size":5,"x":[1],"n":null,"f":-1}}"#,
            user(),
        )
        .unwrap();
        assert_eq!(c.cid.as_str(), "messaging:general");
        assert_eq!(c.id.unwrap().as_str(), "standup");
        assert_eq!(c.call_type, CallType::Audio);
        assert_eq!(c.actor.user_id, "alice");
        let mut opts = c.options.0;
        opts.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            opts,
            vec![
                ("f".into(), OptionValue::OtherNumber),
                ("n".into(), OptionValue::Null),
                ("region".into(), OptionValue::Text("eu".into())),
                ("size".into(), OptionValue::Count(5)),
                ("x".into(), OptionValue::Structured),
            ]
        );
        let c = create(r#"{"id":null,"type":"video","options":null}"#, user()).unwrap();
        assert!(c.id.is_none());
        assert!(c.options.0.is_empty());
    }

    #[test]
    fn end_call_bodies() {
        let end =
            |body: &str| end_call("Standup", body.as_bytes(), user()).map_err(|e| e.to_string());
        let c = end("").unwrap();
        assert_eq!(c.id.as_str(), "standup");
        assert_eq!(c.reason, None);
        assert_eq!(c.actor.user_id, "alice");
        assert_eq!(end("{}").unwrap().reason, None);
        assert_eq!(end(r#"{"reason":null}"#).unwrap().reason, None);
        assert_eq!(
            end(r#"{"reason":"done","x":1}"#).unwrap().reason.as_deref(),
            Some("done")
        );
        let max = format!(r#"{{"reason":"{}"}}"#, "é".repeat(255));
        assert_eq!(end(&max).unwrap().reason.unwrap().chars().count(), 255);
        let long = format!(r#"{{"reason":"{}"}}"#, "a".repeat(256));
        assert!(end(&long).unwrap_err().contains("longer than 255"));
        for bad in [r#"{"reason":5}"#, r#"{"reason":["a"]}"#, r#"{"reason":{}}"#] {
            assert!(
                end(bad).unwrap_err().contains("reason must be a string"),
                "{bad}"
            );
        }
        assert!(end("[]").unwrap_err().contains("JSON object"));
        assert!(end_call("a b", b"{}", user()).is_err());
        let server = end_call("a", br#"{"user_id":"bob","reason":"r"}"#, Identity::Server).unwrap();
        assert_eq!(
            (server.actor.user_id.as_str(), server.actor.server),
            ("bob", true)
        );
        assert!(
            end_call("a", b"{}", Identity::Server)
                .unwrap_err()
                .to_string()
                .contains("must name the user")
        );
    }

    #[test]
    fn each_bad_body_names_its_problem() {
        for (body, needle) in [
            ("", "body is required"),
            ("  ", "body is required"),
            ("[1]", "must be a JSON object"),
            ("\"x\"", "must be a JSON object"),
            ("{", "not valid JSON"),
            ("nope", "not valid JSON"),
            (r#"{"type":"video","id":5}"#, "id must be a string"),
            (r#"{"type":"video","id":"a b"}"#, "allowed characters"),
            (r#"{"id":"a"}"#, "type is required"),
            (r#"{"type":null}"#, "type is required"),
            (
                r#"{"type":"screen"}"#,
                "type must be video or audio, not \"screen\"",
            ),
            (r#"{"type":1}"#, "type must be the string"),
            (
                r#"{"type":"video","options":[1]}"#,
                "options must be an object",
            ),
        ] {
            let e = create(body, user()).unwrap_err();
            assert!(e.contains(needle), "{body:?}: {e}");
        }
        let e = create_call("messaging", "a/b", b"{}", user(), &allow).unwrap_err();
        assert!(e.to_string().contains("channel id"), "{e}");
        let e = create_call("messaging", "g", &[0xff, b'{'], user(), &allow).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn server_tokens_name_their_user_and_user_tokens_ignore_it() {
        let c = create(
            r#"{"type":"video","user":{"id":"carol","role":"admin"}}"#,
            Identity::Server,
        )
        .unwrap();
        assert_eq!(
            (c.actor.user_id.as_str(), c.actor.role.as_str()),
            ("carol", "admin")
        );
        assert!(c.actor.server);
        let c = create(
            r#"{"type":"video","user_id":"dave","user":7}"#,
            Identity::Server,
        )
        .unwrap();
        assert_eq!(
            (c.actor.user_id.as_str(), c.actor.role.as_str()),
            ("dave", "user")
        );
        for (body, needle) in [
            (r#"{"type":"video"}"#, "must name the user"),
            (
                r#"{"type":"video","user_id":5}"#,
                "user_id must be a string",
            ),
            (
                r#"{"type":"video","user":{"id":5}}"#,
                "user_id must be a string",
            ),
            (
                r#"{"type":"video","user_id":"a","user":{"role":2}}"#,
                "user.role",
            ),
            (
                r#"{"type":"video","user_id":"a","user":{"role":""}}"#,
                "user.role",
            ),
        ] {
            let e = create(body, Identity::Server).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
        }
        // A list is not a user object (serde would read it positionally): ignored, as `7` is.
        let c = create(
            r#"{"type":"video","user_id":"dave","user":["bob","admin"]}"#,
            Identity::Server,
        )
        .unwrap();
        assert_eq!(
            (c.actor.user_id.as_str(), c.actor.role.as_str()),
            ("dave", "user")
        );
        let e = create(
            r#"{"type":"video","user":["bob","admin"]}"#,
            Identity::Server,
        )
        .unwrap_err();
        assert!(e.contains("must name the user"), "{e}");
        // A user token acts for its own user, whatever the body says.
        let c = create(r#"{"type":"video","user_id":5,"user":{"role":1}}"#, user()).unwrap();
        assert_eq!(c.actor.user_id, "alice");
    }

    #[test]
    fn the_actor_is_authorized_before_the_fields_are_read() {
        let deny = |_: &Actor| Err(Error::Forbidden("no".into()));
        let e = create_call(
            "messaging",
            "g",
            br#"{"id":"bad id","type":"screen"}"#,
            user(),
            &deny,
        )
        .unwrap_err();
        assert!(matches!(e, ApiError::App(Error::Forbidden(_))), "{e:?}");
        let e = get_call_token("a", b"{}", user(), &deny).unwrap_err();
        assert!(matches!(e, ApiError::App(Error::Forbidden(_))), "{e:?}");
        // The body itself and the path come first.
        let e = create_call("messaging", "g", b"[", user(), &deny).unwrap_err();
        assert!(matches!(e, ApiError::App(Error::Input(_))), "{e:?}");
    }

    #[test]
    fn get_call_token_bodies() {
        let t = get_call_token("Standup", b"", user(), &allow).unwrap();
        assert_eq!(t.id.as_str(), "standup");
        assert!(get_call_token("a", br#"{"anything":[1]}"#, user(), &allow).is_ok());
        let e = get_call_token("a", b"[]", user(), &allow).unwrap_err();
        assert!(e.to_string().contains("JSON object"));
        let e = get_call_token("", b"{}", user(), &allow).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let t = get_call_token("a", br#"{"user_id":"carol"}"#, Identity::Server, &allow).unwrap();
        assert_eq!(t.actor.user_id, "carol");
    }
}
