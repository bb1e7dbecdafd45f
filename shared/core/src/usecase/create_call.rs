//! Create Call: create (or reuse) the call of an id in a channel, and a join token for its
//! creator.

use super::{Calls, Naming, has_ended};
use crate::domain::call::{MAX_DURATION_SECS, MIN_DURATION_SECS};
use crate::domain::{
    Actor, Call, CallId, CallOptions, CallState, CallType, ChannelCid, OptionValue, Permission,
    ProviderKind,
};
use crate::error::Error;
use crate::providers::{JoinToken, TokenFor, VideoProviders};
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

impl<S: Storage, P: VideoProviders> Calls<S, P> {
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
