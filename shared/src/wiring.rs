//! Wiring: the one place where the application's parts are built from the configuration and
//! put together (the HTTPS client, the authenticator, the providers, Stream Chat, the use
//! cases). The HTTP layer (`crate::api`) receives them built and knows no concrete adapter.

use crate::api::StartError;
use crate::auth::Authenticator;
use crate::chat::stream::{Announcing, StreamChat};
use crate::config::{Config, Notify};
use crate::http_client;
use crate::providers::Providers;
use crate::providers::agora::Agora;
use crate::providers::hms::{self, Hms};
use crate::usecase::{Calls, Rules};
use std::sync::Arc;

/// The authenticator and the use cases on `store`, as `config` says; the process builds them
/// once, at start.
pub fn wire<S>(
    config: &Config,
    store: S,
) -> Result<(Authenticator, Calls<S, Providers>), StartError> {
    // One HTTPS client for every outbound call, built only when something needs it.
    let chat = config.membership || config.notify != Notify::Off;
    let agora_rest = config.agora.as_ref().is_some_and(|a| a.rest.is_some());
    let client = if config.hms.is_some() || chat || agora_rest {
        Some(http_client::https_client(hms::CONNECT_TIMEOUT)?)
    } else {
        None
    };
    let auth = Authenticator::new(
        config.api_key.clone(),
        &config.api_secret,
        config.allow_dev_tokens,
    );
    let providers = Providers::new(
        config.provider,
        config
            .agora
            .clone()
            .map(|cfg| Agora::new(cfg, client.clone())),
        config
            .hms
            .clone()
            .zip(client.clone())
            .map(|(cfg, client)| Hms::new(cfg, client)),
    );
    let rules = Rules {
        grants: config.grants.clone(),
        token_ttl_secs: config.token_ttl_secs,
        call_ttl_secs: config.call_ttl_secs,
        max_call_secs: config.max_call_secs,
    };
    let mut calls = Calls::new(rules, providers, store);
    if let Some(client) = client.filter(|_| chat) {
        let stream = Arc::new(StreamChat::new(config.stream.clone(), client));
        if config.membership {
            calls = calls.with_members(stream.clone());
        }
        if let Some(mode) = config.notify.announce() {
            calls = calls.with_announcer(Arc::new(Announcing { stream, mode }));
        }
    }
    Ok((auth, calls))
}
