//! The provider port: for a call, prepare its provider details when it is new, and issue join
//! tokens. Agora and 100ms stand behind it; this is the one place that tells them apart.

pub mod access_token2;
pub mod agora;
pub mod events;
pub mod hms;

use crate::domain::{Call, CallId, CallOptions, KickRule, ProviderDetails, ProviderKind};
use crate::error::Error;
use agora::Agora;
pub use callbridge_core::domain::call::{AGORA_CHANNEL, HMS_ROOM_ID, HMS_ROOM_NAME};
pub use callbridge_core::providers::{AgoraJoin, JoinToken, ProviderEnd, TokenFor, VideoProviders};
use hms::{Hms, RoomOptions};
use std::future::Future;

/// What one provider does for Callbridge.
pub trait Provider: Send + Sync {
    /// The options of a new call, validated by this provider's rules.
    type Options: Send + Sync;

    /// Validates the Create Call options. Errors are the client's to fix.
    fn options(&self, options: &CallOptions) -> Result<Self::Options, Error>;

    /// Whether [`Provider::prepare`] asks the provider over the network (then an existing call
    /// is looked up first, so the provider is not asked for it again).
    fn prepares_remotely(&self) -> bool;

    /// Where a new call with this id lives at the provider.
    fn prepare(
        &self,
        id: &CallId,
        options: &Self::Options,
        now: u64,
    ) -> impl Future<Output = Result<ProviderDetails, Error>> + Send;

    /// Tells the provider that `call` (a call of this provider) ended, so that no one stays in
    /// it. `tokens_until`: no token issued for it is valid after this (Unix seconds). Errors
    /// say what was not done, to follow "the call is ended, but".
    fn end(
        &self,
        call: &Call,
        reason: Option<&str>,
        tokens_until: u64,
        now: u64,
    ) -> impl Future<Output = Result<ProviderEnd, Error>> + Send;

    /// A join token in `call` (a call of this provider).
    fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error>;
}

/// The providers this deployment has credentials for, and the one new calls use.
#[derive(Debug)]
pub struct Providers {
    default: ProviderKind,
    agora: Option<Agora>,
    hms: Option<Hms>,
}

/// Validated options for a new call of the default provider.
#[derive(Debug)]
pub struct NewCallOptions(Prepared);

#[derive(Debug)]
enum Prepared {
    Agora(()),
    Hms(RoomOptions),
}

impl Providers {
    pub fn new(default: ProviderKind, agora: Option<Agora>, hms: Option<Hms>) -> Self {
        Providers {
            default,
            agora,
            hms,
        }
    }

    /// Validates the options of a new call for the default provider. `limit`: the call's time
    /// limit in seconds (100ms rooms are given it as their `max_duration_seconds`).
    pub fn options(
        &self,
        options: &CallOptions,
        limit: Option<u64>,
    ) -> Result<NewCallOptions, Error> {
        Ok(NewCallOptions(match self.default {
            ProviderKind::Agora => Prepared::Agora(self.agora()?.options(options)?),
            ProviderKind::Hms => {
                let mut room = self.hms()?.options(options)?;
                room.max_duration_seconds = room.max_duration_seconds.or(limit);
                Prepared::Hms(room)
            }
        }))
    }

    /// See [`Provider::prepares_remotely`].
    pub fn prepares_remotely(&self, options: &NewCallOptions) -> bool {
        match &options.0 {
            Prepared::Agora(_) => self.agora.as_ref().is_some_and(Agora::prepares_remotely),
            Prepared::Hms(_) => self.hms.as_ref().is_some_and(Hms::prepares_remotely),
        }
    }

    /// Provider details for a new call with this id.
    pub async fn prepare(
        &self,
        id: &CallId,
        options: &NewCallOptions,
        now: u64,
    ) -> Result<ProviderDetails, Error> {
        match &options.0 {
            Prepared::Agora(o) => self.agora()?.prepare(id, o, now).await,
            Prepared::Hms(o) => self.hms()?.prepare(id, o, now).await,
        }
    }

    /// Tells the call's own provider that it ended (see [`Provider::end`]).
    pub async fn end(
        &self,
        call: &Call,
        reason: Option<&str>,
        tokens_until: u64,
        now: u64,
    ) -> Result<ProviderEnd, Error> {
        match &call.provider {
            ProviderDetails::Agora { .. } => {
                self.agora()?.end(call, reason, tokens_until, now).await
            }
            ProviderDetails::Hms { .. } => self.hms()?.end(call, reason, tokens_until, now).await,
        }
    }

    /// Removes an Agora kicking rule that an earlier call with the same channel left, so that
    /// the new call can be joined.
    pub async fn remove_rule(&self, rule: KickRule) -> Result<(), Error> {
        self.agora()?.remove_rule(rule).await
    }

    /// Whether ending a call of this provider removes its participants (an Agora deployment
    /// without RESTful API credentials cannot).
    pub fn ends_remotely(&self, kind: ProviderKind) -> bool {
        match kind {
            ProviderKind::Agora => self.agora.as_ref().is_some_and(Agora::can_remove),
            ProviderKind::Hms => true,
        }
    }

    /// A join token in `call`, from the call's own provider.
    pub fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error> {
        match &call.provider {
            ProviderDetails::Agora { .. } => self.agora()?.join_token(call, to),
            ProviderDetails::Hms { .. } => self.hms()?.join_token(call, to),
        }
    }

    fn agora(&self) -> Result<&Agora, Error> {
        self.agora
            .as_ref()
            .ok_or_else(|| missing(ProviderKind::Agora))
    }

    fn hms(&self) -> Result<&Hms, Error> {
        self.hms.as_ref().ok_or_else(|| missing(ProviderKind::Hms))
    }
}

/// The port the use cases see, on the inherent methods above.
impl VideoProviders for Providers {
    type NewCall = NewCallOptions;

    fn options(&self, options: &CallOptions, limit: Option<u64>) -> Result<NewCallOptions, Error> {
        Providers::options(self, options, limit)
    }

    fn prepares_remotely(&self, options: &NewCallOptions) -> bool {
        Providers::prepares_remotely(self, options)
    }

    async fn prepare(
        &self,
        id: &CallId,
        options: &NewCallOptions,
        now: u64,
    ) -> Result<ProviderDetails, Error> {
        Providers::prepare(self, id, options, now).await
    }

    fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error> {
        Providers::join_token(self, call, to)
    }

    async fn end(
        &self,
        call: &Call,
        reason: Option<&str>,
        tokens_until: u64,
        now: u64,
    ) -> Result<ProviderEnd, Error> {
        Providers::end(self, call, reason, tokens_until, now).await
    }

    async fn remove_rule(&self, rule: KickRule) -> Result<(), Error> {
        Providers::remove_rule(self, rule).await
    }

    fn ends_remotely(&self, kind: ProviderKind) -> bool {
        Providers::ends_remotely(self, kind)
    }
}

fn missing(kind: ProviderKind) -> Error {
    let name = kind.as_str();
    Error::NotConfigured {
        message: format!(
            "this call uses {name}, and this deployment has no {name} credentials configured"
        ),
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_fields_round_trip_for_both_providers() {
        for p in [
            ProviderDetails::Agora {
                channel: "standup".into(),
            },
            ProviderDetails::Hms {
                room_id: "r1".into(),
                room_name: "standup".into(),
            },
        ] {
            let fields = p.fields();
            let back = ProviderDetails::from_fields(p.kind().as_str(), |n| {
                fields.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
            })
            .unwrap();
            assert_eq!(back, p);
        }
        assert!(
            ProviderDetails::from_fields("zoom", |_| None)
                .unwrap_err()
                .contains("zoom")
        );
        assert!(
            ProviderDetails::from_fields("hms", |n| (n == HMS_ROOM_ID).then_some("r"))
                .unwrap_err()
                .contains(HMS_ROOM_NAME)
        );
    }

    #[test]
    fn a_provider_without_credentials_is_a_configuration_error() {
        let p = Providers::new(ProviderKind::Hms, None, None);
        let e = p.options(&CallOptions::default(), None).unwrap_err();
        assert!(matches!(e, Error::NotConfigured { .. }));
        assert!(e.to_string().contains("no hms credentials"), "{e}");
    }
}
