//! Create Call: create (or reuse) the call of an id in a channel, and a join token for its
//! creator.

use super::{Calls, Naming, has_ended};
use crate::domain::call::{MAX_DURATION_SECS, MIN_DURATION_SECS};
use crate::domain::{
    Actor, Call, CallId, CallOptions, CallState, CallType, ChannelCid, OptionValue, Permission,
    ProviderKind,
};
use crate::error::Error;
use crate::providers::{JoinToken, TokenFor};
use crate::store::{CallReader, CallWriter, Inserted, Settled, Storage};

/// A request to create (or reuse) a call.
#[derive(Clone, Debug)]
pub struct CreateCall {
    pub cid: ChannelCid,
    /// `None`: a fresh random id.
    pub id: Option<CallId>,
    pub call_type: CallType,
    pub options: CallOptions,
    pub actor: Actor,
}

/// The call (new or existing) and the actor's token for it.
#[derive(Clone, Debug)]
pub struct CreatedCall {
    pub call: Call,
    pub token: JoinToken,
    /// The call was created by this request.
    pub new: bool,
}

impl<S: Storage> Calls<S> {
    /// Creates the call unless a live call with its id exists. An existing call of the same
    /// channel is answered as it is stored (type and provider included); one of another channel
    /// is refused and nothing is written.
    pub async fn create_call(&self, cmd: CreateCall, now: u64) -> Result<CreatedCall, Error> {
        let CreateCall {
            cid,
            id,
            call_type,
            options,
            actor,
        } = cmd;
        // Creating needs create-call; the answer, new call or existing, carries the actor's
        // join token, which needs join-call.
        self.authorize(&actor, Permission::CreateCall)?;
        self.authorize(&actor, Permission::JoinCall)?;
        let writer = self.store.writer().ok_or_else(|| Error::NotConfigured {
            message: "this function only issues tokens; it cannot create calls".into(),
            cause: None,
        })?;
        let id = id.unwrap_or_else(CallId::generate);
        let limit = max_duration(&options, self.rules.max_call_secs)?;
        let options = self.providers.options(&options, limit)?;
        // Before anything is written and before a provider is asked.
        self.require_member(&cid, &actor, Naming::TheChannel, now)
            .await?;
        let same_channel = |existing: Call| {
            if existing.cid != cid {
                return Err(Error::Forbidden(format!(
                    "call id {:?} is already used by a call in another channel; choose another id",
                    existing.id.as_str()
                )));
            }
            Ok(existing)
        };
        // A provider asked over the network is not asked again for an existing call (an ended
        // one is replaced by a new call, which needs the provider).
        if self.providers.prepares_remotely(&options)
            && let Some(existing) = self.store.reader().get(&id, now).await?
            && existing.state(now) == CallState::Active
        {
            let call = self.tidied(same_channel(existing)?, writer, now).await?;
            return self.answer(call, &actor, false, now);
        }
        let provider = self.providers.prepare(&id, &options, now).await?;
        let candidate = Call {
            id,
            cid: cid.clone(),
            call_type,
            provider,
            created_by: actor.user_id.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.rules.call_ttl_secs),
            // Stored as pending in the one conditional put, so that a failed announcement is
            // completed by the next Create Call of this id.
            pending_announcement: self.announcer.is_some(),
            ends_at: limit.map(|secs| now.saturating_add(secs)),
            ended: None,
            // Known only once the put answers with the call it replaced.
            stale_kick_rule: None,
            media: Default::default(),
        };
        let (mut call, new) = match writer.insert_if_absent(&candidate, now).await? {
            Inserted::New { replaced } => {
                let mut call = candidate;
                call.stale_kick_rule = replaced.as_ref().and_then(|old| left_rule(old, now));
                (call, true)
            }
            Inserted::Existing(existing) => (same_channel(existing)?, false),
        };
        if new && let Some(rule) = call.stale_kick_rule {
            // Remembered on the call only when its removal fails, so that a repeat retries.
            if let Err(e) = self.providers.remove_rule(rule).await {
                if let Err(w) = writer
                    .settle(&call.id, call.created_at, Settled::StaleKickRule(rule))
                    .await
                {
                    tracing::warn!(call = %call.id, error = %w, "the stale kicking rule could not be remembered");
                }
                return Err(e);
            }
            call.stale_kick_rule = None;
        }
        let call = self.tidied(call, writer, now).await?;
        self.answer(call, &actor, new, now)
    }

    /// Completes what an earlier request left undone for a call: an earlier call's kicking
    /// rule still to be removed, the announcement still to be made.
    async fn tidied<W: CallWriter>(
        &self,
        mut call: Call,
        writer: &W,
        now: u64,
    ) -> Result<Call, Error> {
        if let Some(rule) = call.stale_kick_rule {
            if rule.until > now {
                self.providers.remove_rule(rule).await?;
            }
            writer
                .settle(&call.id, call.created_at, Settled::StaleKickRuleRemoved)
                .await?;
            call.stale_kick_rule = None;
        }
        self.announced(call, writer, now).await
    }

    /// Tells the channel of a call still to be announced, then clears its pending state (one
    /// more write). A failure answers that the call exists and the channel was not told; the
    /// call stays pending, so repeating the request completes it.
    async fn announced<W: CallWriter>(
        &self,
        mut call: Call,
        writer: &W,
        now: u64,
    ) -> Result<Call, Error> {
        let Some(announcer) = &self.announcer else {
            return Ok(call);
        };
        if !call.pending_announcement {
            return Ok(call);
        }
        let key = format!("{}\n{}", call.id.as_str(), call.created_at);
        if !self.cleared.holds(&key, now) {
            announcer.announce(&call, now).await?;
            self.clearing
                .run(&key, || async {
                    match writer
                        .settle(&call.id, call.created_at, Settled::Announced)
                        .await
                    {
                        Ok(()) => {
                            self.cleared.keep(key.clone(), now + CLEARED_SECS, now);
                            true
                        }
                        Err(e) => {
                            // The channel was told; a later Create Call may tell it again,
                            // which a message's id makes harmless. Not the client's concern.
                            tracing::warn!(call = %call.id, error = %e, "announced, but the pending mark stays");
                            false
                        }
                    }
                })
                .await;
        }
        call.pending_announcement = false;
        Ok(call)
    }

    fn answer(&self, call: Call, actor: &Actor, new: bool, now: u64) -> Result<CreatedCall, Error> {
        // The answered call is active (ended calls are replaced); its time limit may have
        // passed since, between the put and now.
        let lifetime = self
            .token_lifetime(&call, now)
            .ok_or_else(|| has_ended(&call))?;
        let to = TokenFor {
            actor,
            lifetime,
            now,
        };
        let token = self.providers.join_token(&call, to)?;
        Ok(CreatedCall { call, token, new })
    }
}

/// Seconds a cleared announcement mark is remembered in this process.
const CLEARED_SECS: u64 = 600;

/// The time limit of a new call: `options.max_duration_seconds` (60 to 86400; `null` is
/// unset), else the deployment's default.
fn max_duration(options: &CallOptions, default: Option<u64>) -> Result<Option<u64>, Error> {
    let given = options
        .0
        .iter()
        .find(|(k, _)| k == "max_duration_seconds")
        .map(|(_, v)| v);
    match given {
        None | Some(OptionValue::Null) => Ok(default),
        Some(v) => v
            .as_count()
            .filter(|n| (MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(n))
            .map(Some)
            .ok_or_else(|| {
                Error::input(format!(
                    "options.max_duration_seconds must be a whole number of seconds from {MIN_DURATION_SECS} to {MAX_DURATION_SECS}"
                ))
            }),
    }
}

/// The Agora kicking rule an ended call left on its channel, while it has not lapsed.
fn left_rule(old: &Call, now: u64) -> Option<crate::domain::KickRule> {
    if old.provider.kind() != ProviderKind::Agora {
        return None;
    }
    old.ended
        .as_ref()
        .and_then(|e| e.kick_rule)
        .or(old.stale_kick_rule)
        .filter(|r| r.until > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProviderDetails, ProviderKind};
    use crate::providers::access_token2;
    use crate::store::memory::MemoryStore;
    use crate::usecase::testing::*;

    const GRANTS: &str = "user:create-call,join-call;viewer:join-call;maker:create-call";

    fn cmd(channel: &str, id: &str, actor: Actor) -> CreateCall {
        CreateCall {
            cid: ChannelCid::parse("messaging", channel).unwrap(),
            id: Some(CallId::parse(id).unwrap()),
            call_type: CallType::Video,
            options: CallOptions::default(),
            actor,
        }
    }

    #[tokio::test]
    async fn a_new_agora_call_is_stored_with_its_creators_token() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let out = calls
            .create_call(cmd("general", "Standup", user("alice", "user")), NOW)
            .await
            .unwrap();
        assert!(out.new);
        assert_eq!(out.call.id.as_str(), "standup");
        assert_eq!(out.call.created_by, "alice");
        assert_eq!(out.call.expires_at, NOW + 600);
        assert_eq!(
            out.call.provider,
            ProviderDetails::Agora {
                channel: "standup".into()
            }
        );
        let t = access_token2::parse(&out.token.token).unwrap();
        assert!(t.verify(AGORA_CERT));
        assert_eq!(t.content.issue_ts as u64, NOW);
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn the_same_id_is_the_same_call_and_another_channel_is_refused() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let first = calls
            .create_call(cmd("general", "standup", user("alice", "user")), NOW)
            .await
            .unwrap();
        let mut again = cmd("general", "STANDUP", user("bob", "user"));
        again.call_type = CallType::Audio;
        let second = calls.create_call(again, NOW + 1).await.unwrap();
        assert!(!second.new);
        assert_eq!(second.call, first.call);
        assert_ne!(second.token, first.token);
        let e = calls
            .create_call(cmd("random", "standup", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
        assert!(e.to_string().contains("another channel"));
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn roles_need_create_call_and_servers_do_not() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let e = calls
            .create_call(cmd("general", "a", user("v", "viewer")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("create-call"));
        assert!(calls.store().is_empty());
        // create-call alone is not enough: the answer is a join token.
        let e = calls
            .create_call(cmd("general", "a", user("m", "maker")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("join-call"), "{e}");
        assert!(calls.store().is_empty());
        let mut server = user("carol", "nobody");
        server.server = true;
        assert!(
            calls
                .create_call(cmd("general", "a", server), NOW)
                .await
                .unwrap()
                .new
        );
    }

    #[tokio::test]
    async fn a_missing_id_gets_a_fresh_one() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let mut c = cmd("general", "x", user("alice", "user"));
        c.id = None;
        let a = calls.create_call(c.clone(), NOW).await.unwrap();
        let b = calls.create_call(c, NOW).await.unwrap();
        assert_ne!(a.call.id, b.call.id);
        assert_eq!(a.call.id.as_str().len(), 36);
    }

    #[tokio::test]
    async fn an_expired_call_is_created_again() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        calls
            .create_call(cmd("general", "s", user("alice", "user")), NOW)
            .await
            .unwrap();
        let out = calls
            .create_call(cmd("random", "s", user("bob", "user")), NOW + 600)
            .await
            .unwrap();
        assert!(out.new);
        assert_eq!(out.call.cid.as_str(), "messaging:random");
    }

    #[tokio::test]
    async fn an_existing_hms_call_is_answered_without_asking_100ms() {
        // 100ms is unreachable here, so only storage can answer.
        let calls = calls(ProviderKind::Hms, GRANTS);
        let stored = Call {
            id: CallId::parse("standup").unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Audio,
            provider: ProviderDetails::Hms {
                room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
                room_name: "standup".into(),
            },
            created_by: "alice".into(),
            created_at: NOW,
            expires_at: NOW + 600,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        };
        calls.store().insert_if_absent(&stored, NOW).await.unwrap();
        let out = calls
            .create_call(cmd("general", "standup", user("bob", "user")), NOW)
            .await
            .unwrap();
        assert!(!out.new);
        assert_eq!(out.call, stored);
        assert!(out.token.agora.is_none());
        // A new id needs 100ms, which does not answer: nothing is stored.
        let e = calls
            .create_call(cmd("general", "other", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Provider { .. }), "{e:?}");
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn hms_options_are_checked_before_anything_happens() {
        let calls = calls(ProviderKind::Hms, GRANTS);
        let mut c = cmd("general", "x", user("alice", "user"));
        c.options = CallOptions(vec![(
            "region".into(),
            crate::domain::OptionValue::Text("mars".into()),
        )]);
        let e = calls.create_call(c, NOW).await.unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(e.to_string().contains("options.region"), "{e}");
        assert!(calls.store().is_empty());
    }

    #[tokio::test]
    async fn a_read_only_store_cannot_create() {
        let c = calls(ProviderKind::Agora, GRANTS);
        let read_only = Calls::new(
            c.rules().clone(),
            crate::providers::Providers::new(ProviderKind::Agora, Some(agora()), None),
            crate::store::ReadOnly(MemoryStore::new()),
        );
        let e = read_only
            .create_call(cmd("general", "x", user("alice", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotConfigured { .. }), "{e:?}");
    }
}
