//! Provider events: what 100ms and Agora report of a call's media session, added to the call
//! (one conditional write per new event, none for a duplicate), and the channel told when the
//! session goes live and when it closes (once per transition).

use super::Calls;
use crate::domain::{MAX_FACTS, ProviderDetails, ProviderKind};
use crate::error::Error;
use crate::providers::{ProviderEvent, VideoProviders};
use crate::store::{CallReader, CallWriter, Settled, Storage};

/// Events timed this long before their call was created belong to an earlier call with the
/// same id (100ms reuses the room): ignored.
pub const CLOCK_SKEW_MS: u64 = 10_000;

/// What became of an authenticated event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Added to its call.
    Recorded,
    /// Its call has it already (a retry or a replay).
    Duplicate,
    /// Not applied, for this reason.
    Ignored(&'static str),
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Recorded => "recorded",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Ignored(_) => "ignored",
        }
    }
}

impl<S: Storage, P: VideoProviders> Calls<S, P> {
    /// Applies one provider event to its call. Events for rooms or channels that are not the
    /// call's, or that predate it, change nothing; events after the call ended still update its
    /// session record (and nothing else).
    pub async fn provider_event(
        &self,
        event: ProviderEvent,
        now: u64,
    ) -> Result<EventOutcome, Error> {
        let writer = self.store.writer().ok_or_else(|| Error::NotConfigured {
            message: "this function cannot record provider events".into(),
            cause: None,
        })?;
        let Some(mut call) = self.store.reader().get(&event.call, now).await? else {
            return Ok(EventOutcome::Ignored("unknown_call"));
        };
        let ours = match (&call.provider, event.provider) {
            (ProviderDetails::Hms { room_id, .. }, ProviderKind::Hms) => *room_id == event.place,
            (ProviderDetails::Agora { channel }, ProviderKind::Agora) => *channel == event.place,
            _ => false,
        };
        if !ours {
            return Ok(EventOutcome::Ignored("another_room"));
        }
        let Some(main) = event.facts.first() else {
            return Ok(EventOutcome::Ignored("empty"));
        };
        if main.event.at() + CLOCK_SKEW_MS < call.created_at.saturating_mul(1000) {
            return Ok(EventOutcome::Ignored("before_this_call"));
        }
        let outcome = if call.media.has(&main.id) {
            EventOutcome::Duplicate
        } else if call.media.facts.len() >= MAX_FACTS && !main.event.is_session_event() {
            return Ok(EventOutcome::Ignored("too_many_events"));
        } else {
            let new: Vec<_> = event
                .facts
                .into_iter()
                .filter(|f| !call.media.has(&f.id))
                .collect();
            if writer.record(&call.id, call.created_at, &new).await? {
                call.media.facts.extend(new);
                EventOutcome::Recorded
            } else {
                // Recorded meanwhile by a concurrent delivery of the same event.
                EventOutcome::Duplicate
            }
        };
        self.tell_session(&mut call, writer, now).await?;
        Ok(outcome)
    }

    /// Tells the channel that the call's session went live, or closed, unless it was told.
    /// A failure answers 502, so that the provider delivers the event again and the telling is
    /// retried then.
    async fn tell_session<W: CallWriter>(
        &self,
        call: &mut crate::domain::Call,
        writer: &W,
        now: u64,
    ) -> Result<(), Error> {
        let Some(announcer) = &self.announcer else {
            return Ok(());
        };
        let record = call.media.record();
        let Some(mark) = record.transition() else {
            return Ok(());
        };
        if call.media.told.contains(&mark) {
            return Ok(());
        }
        announcer
            .announce_session(call, &mark, record.live, now)
            .await?;
        let marks = vec![mark];
        let done = Settled::Told(marks);
        if let Err(e) = writer.settle(&call.id, call.created_at, done.clone()).await {
            tracing::warn!(call = %call.id, error = %e, "session told, but the mark was not stored");
        }
        crate::store::apply(call, &done);
        Ok(())
    }
}
