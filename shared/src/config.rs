//! Configuration: read from the environment once, at start, into types. A missing or malformed
//! setting stops the start with a message naming the variable.

use crate::chat::stream::{self, Announce, StreamConfig};
use crate::domain::call::{MAX_DURATION_SECS, MIN_DURATION_SECS};
use crate::domain::{Grants, ProviderKind};
use crate::providers::access_token2::is_hex32;
use crate::providers::agora::{self, AgoraConfig, AgoraRestConfig, AgoraRole};
use crate::providers::hms::{self, HmsConfig};
use crate::providers::hms::{HMS_MAX_DURATION_SECS, HMS_MIN_DURATION_SECS};
use crate::secret::Secret;
use std::collections::HashMap;
use std::collections::HashSet;

/// Reads one setting; empty values are `None`.
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

pub const DEFAULT_TOKEN_TTL_SECS: u32 = 3600;
pub const MAX_TOKEN_TTL_SECS: u32 = 86_400;
pub const DEFAULT_CALL_TTL_SECS: u64 = 30 * 86_400;

/// Every variable the code reads, in one place (the SAM template test checks it sets them).
pub const VARIABLES: &[&str] = &[
    "STREAM_API_KEY",
    "STREAM_API_SECRET",
    "CALLBRIDGE_PROVIDER",
    "CALLBRIDGE_GRANTS",
    "CALLBRIDGE_TOKEN_TTL_SECONDS",
    "CALLBRIDGE_CALL_TTL_SECONDS",
    "CALLBRIDGE_MAX_CALL_SECONDS",
    "CALLBRIDGE_ALLOW_DEV_TOKENS",
    "CALLBRIDGE_TABLE_NAME",
    "CALLBRIDGE_MEMBERSHIP",
    "CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS",
    "CALLBRIDGE_NOTIFY",
    "STREAM_API_BASE_URL",
    "AGORA_APP_ID",
    "AGORA_APP_CERTIFICATE",
    "AGORA_ROLE_MAP",
    "AGORA_CUSTOMER_ID",
    "AGORA_CUSTOMER_SECRET",
    "AGORA_API_BASE_URL",
    "HMS_APP_ACCESS_KEY",
    "HMS_APP_SECRET",
    "HMS_TEMPLATE_ID",
    "HMS_DEFAULT_ROLE",
    "HMS_REGION",
    "HMS_ROLE_MAP",
    "HMS_API_BASE_URL",
    "HMS_WEBHOOK_URL",
    "HMS_WEBHOOK_SECRET",
    "AGORA_NCS_SECRET",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var} {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// The error for a bad `var`.
pub fn config_error(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

use config_error as err;

/// Parses `name:value,name:value` (comma or semicolon separated, whitespace around items
/// ignored): `shape` shows one entry in the error. Empty names or values and a name listed
/// twice are refused.
pub fn parse_map(spec: &str, shape: &str) -> Result<Vec<(String, String)>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in spec
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (from, to) = item
            .split_once(':')
            .ok_or_else(|| format!("entry {item:?} must look like {shape}"))?;
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() || to.is_empty() {
            return Err(format!("entry {item:?} has an empty role"));
        }
        if !seen.insert(from) {
            return Err(format!("role {from:?} is listed twice"));
        }
        out.push((from.to_string(), to.to_string()));
    }
    Ok(out)
}

/// The whole configuration. `Debug` never shows secrets.
#[derive(Clone, Debug)]
pub struct Config {
    pub api_key: String,
    pub api_secret: Secret,
    /// Stream dev tokens (signature `devtoken`) accepted: the local sandbox only.
    pub allow_dev_tokens: bool,
    /// Provider for new calls.
    pub provider: ProviderKind,
    pub agora: Option<AgoraConfig>,
    pub hms: Option<HmsConfig>,
    pub grants: Grants,
    /// Lifetime of issued provider tokens, seconds.
    pub token_ttl_secs: u32,
    /// Lifetime of a call, seconds.
    pub call_ttl_secs: u64,
    /// Time limit of calls created without `max_duration_seconds`, seconds; `None`: no limit
    /// (`CALLBRIDGE_MAX_CALL_SECONDS`, 0 or unset).
    pub max_call_secs: Option<u64>,
    /// DynamoDB table; `None` means the in-memory store (local server only).
    pub table_name: Option<String>,
    /// Stream Chat's REST API, for membership checks and announcements.
    pub stream: StreamConfig,
    /// Calls private to their channel's members, checked against Stream Chat
    /// (`CALLBRIDGE_MEMBERSHIP=stream`, the default).
    pub membership: bool,
    /// How a new call is announced in its channel (`CALLBRIDGE_NOTIFY`, default off).
    pub notify: Notify,
    /// The secrets provider events are authenticated with; `None`: that provider's events
    /// are refused.
    pub webhooks: WebhookSecrets,
}

/// `HMS_WEBHOOK_SECRET` (the header 100ms sends with its webhooks) and `AGORA_NCS_SECRET`
/// (Agora's NCS signing secret).
#[derive(Clone, Debug, Default)]
pub struct WebhookSecrets {
    pub hms: Option<Secret>,
    pub agora: Option<Secret>,
}

/// How the channel is told of a new call: the three ways Stream's description of in-chat
/// calling names, or not at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    Off,
    /// A message in the channel, sent as the creator, with one attachment of type `call`.
    Message,
    /// A custom channel event `call.created`.
    Event,
    /// The call set in the channel's custom data (key `call`) by a partial update.
    Channel,
}

impl Notify {
    /// The way the Stream Chat client tells the channel, if any.
    pub fn announce(self) -> Option<Announce> {
        match self {
            Notify::Off => None,
            Notify::Message => Some(Announce::Message),
            Notify::Event => Some(Announce::Event),
            Notify::Channel => Some(Announce::Channel),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Notify::Off),
            "message" => Some(Notify::Message),
            "event" => Some(Notify::Event),
            "channel" => Some(Notify::Channel),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Notify::Off => "off",
            Notify::Message => "message",
            Notify::Event => "event",
            Notify::Channel => "channel",
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings from a table of variables, as the environment would hold them (tests and
    /// benches): where a name stands twice, its first value counts.
    pub fn from_pairs(vars: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, value)| value.to_string())
        })
    }

    /// Reads settings through `get` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let required = |k: &'static str| get(k).ok_or_else(|| err(k, "is not set"));

        let api_key = required("STREAM_API_KEY")?;
        let api_secret = Secret::new(required("STREAM_API_SECRET")?);

        let provider = match get("CALLBRIDGE_PROVIDER") {
            None => ProviderKind::Agora,
            Some(p) => ProviderKind::parse(p.trim())
                .ok_or_else(|| err("CALLBRIDGE_PROVIDER", format!("is {p:?}; use agora or hms")))?,
        };

        let agora = agora_settings(&get)?;
        if provider == ProviderKind::Agora && agora.is_none() {
            return Err(err(
                "AGORA_APP_ID",
                "is not set; CALLBRIDGE_PROVIDER is agora, which needs AGORA_APP_ID and AGORA_APP_CERTIFICATE",
            ));
        }

        let hms = hms_settings(&get, provider == ProviderKind::Hms)?;

        let grants = match get("CALLBRIDGE_GRANTS") {
            None => Grants::default(),
            Some(s) => Grants::parse(&s).map_err(|e| err("CALLBRIDGE_GRANTS", e))?,
        };
        let token_ttl_secs = seconds(
            &get,
            "CALLBRIDGE_TOKEN_TTL_SECONDS",
            u64::from(DEFAULT_TOKEN_TTL_SECS),
            60..=u64::from(MAX_TOKEN_TTL_SECS),
            "60 to 86400 (24 hours)",
        )? as u32;
        let call_ttl_secs = seconds(
            &get,
            "CALLBRIDGE_CALL_TTL_SECONDS",
            DEFAULT_CALL_TTL_SECS,
            60..=10 * 365 * 86_400,
            "60 to 315360000 (10 years)",
        )?;
        let max_call_secs = match seconds(
            &get,
            "CALLBRIDGE_MAX_CALL_SECONDS",
            0,
            0..=MAX_DURATION_SECS,
            "0 (no limit) or 60 to 86400",
        )? {
            0 => None,
            n if n < MIN_DURATION_SECS => {
                return Err(err(
                    "CALLBRIDGE_MAX_CALL_SECONDS",
                    format!("is {n}; use whole seconds from 0 (no limit) or 60 to 86400"),
                ));
            }
            // 100ms refuses rooms limited to less than 120 s or more than 12 hours.
            n if provider == ProviderKind::Hms
                && !(HMS_MIN_DURATION_SECS..=HMS_MAX_DURATION_SECS).contains(&n) =>
            {
                return Err(err(
                    "CALLBRIDGE_MAX_CALL_SECONDS",
                    format!(
                        "is {n}; 100ms (CALLBRIDGE_PROVIDER=hms) limits rooms to 120 to 43200 seconds, or use 0 (no limit)"
                    ),
                ));
            }
            n => Some(n),
        };
        let allow_dev_tokens = match get("CALLBRIDGE_ALLOW_DEV_TOKENS") {
            None => false,
            Some(s) => parse_bool(&s).ok_or_else(|| {
                err(
                    "CALLBRIDGE_ALLOW_DEV_TOKENS",
                    format!("is {s:?}; use true or false"),
                )
            })?,
        };
        let table_name = get("CALLBRIDGE_TABLE_NAME").map(|t| t.trim().to_string());
        if let Some(t) = &table_name {
            check_table_name(t).map_err(|e| err("CALLBRIDGE_TABLE_NAME", e))?;
        }

        let membership = match get("CALLBRIDGE_MEMBERSHIP")
            .map(|m| m.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("stream") => true,
            Some("off") => false,
            Some(other) => {
                return Err(err(
                    "CALLBRIDGE_MEMBERSHIP",
                    format!("is {other:?}; use stream or off"),
                ));
            }
        };
        let notify = match get("CALLBRIDGE_NOTIFY") {
            None => Notify::Off,
            Some(n) => Notify::parse(&n).ok_or_else(|| {
                err(
                    "CALLBRIDGE_NOTIFY",
                    format!("is {n:?}; use message, event, channel or off"),
                )
            })?,
        };
        let cache_secs = seconds(
            &get,
            "CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS",
            stream::DEFAULT_CACHE_SECS,
            0..=stream::MAX_CACHE_SECS,
            "0 (no cache) to 3600",
        )?;
        let stream = StreamConfig {
            api_key: api_key.clone(),
            api_secret: api_secret.clone(),
            api_base: http_url(&get, "STREAM_API_BASE_URL", stream::DEFAULT_API_BASE)?,
            cache_secs,
        };

        let webhooks = WebhookSecrets {
            hms: get("HMS_WEBHOOK_SECRET").map(|s| Secret::new(s.trim())),
            agora: get("AGORA_NCS_SECRET").map(|s| Secret::new(s.trim())),
        };
        let mut hms = hms;
        if let Some(url) = get("HMS_WEBHOOK_URL") {
            let url = http_url(&get, "HMS_WEBHOOK_URL", &url)?;
            let secret = webhooks.hms.clone().ok_or_else(|| {
                err(
                    "HMS_WEBHOOK_SECRET",
                    "is not set; HMS_WEBHOOK_URL is, and 100ms must send the secret with its webhooks",
                )
            })?;
            if let Some(h) = hms.as_mut() {
                h.webhook = Some(crate::providers::hms::HmsWebhook { url, secret });
            }
        }
        Ok(Config {
            api_key,
            api_secret,
            allow_dev_tokens,
            provider,
            agora,
            hms,
            grants,
            token_ttl_secs,
            call_ttl_secs,
            max_call_secs,
            table_name,
            stream,
            membership,
            notify,
            webhooks,
        })
    }
}

/// Two settings that go together: both, or neither (`None`); one alone names the other.
fn pair(
    get: &Lookup<'_>,
    a: &'static str,
    b: &'static str,
) -> Result<Option<(String, String)>, ConfigError> {
    match (get(a), get(b)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(config_error(b, format!("is not set ({a} is)"))),
        (None, Some(_)) => Err(config_error(a, format!("is not set ({b} is)"))),
        (Some(x), Some(y)) => Ok(Some((x, y))),
    }
}

/// `AGORA_APP_ID`, `AGORA_APP_CERTIFICATE`, `AGORA_ROLE_MAP` and the RESTful API credentials;
/// `None` when neither credential is set.
fn agora_settings(get: &Lookup<'_>) -> Result<Option<AgoraConfig>, ConfigError> {
    let Some((id, cert)) = pair(get, "AGORA_APP_ID", "AGORA_APP_CERTIFICATE")? else {
        return Ok(None);
    };
    let id = id.trim().to_string();
    if !is_hex32(&id) {
        return Err(config_error(
            "AGORA_APP_ID",
            "must be 32 hexadecimal characters",
        ));
    }
    if !is_hex32(cert.trim()) {
        return Err(config_error(
            "AGORA_APP_CERTIFICATE",
            "must be 32 hexadecimal characters",
        ));
    }
    let role_map = match get("AGORA_ROLE_MAP") {
        None => HashMap::new(),
        Some(s) => agora_role_map(&s).map_err(|e| config_error("AGORA_ROLE_MAP", e))?,
    };
    let rest = match pair(get, "AGORA_CUSTOMER_ID", "AGORA_CUSTOMER_SECRET")? {
        None => None,
        Some((id, secret)) => Some(AgoraRestConfig {
            customer_id: id.trim().to_string(),
            customer_secret: Secret::new(secret.trim()),
            api_base: http_url(get, "AGORA_API_BASE_URL", agora::DEFAULT_API_BASE)?,
        }),
    };
    Ok(Some(AgoraConfig {
        app_id: id,
        app_certificate: Secret::new(cert.trim()),
        role_map,
        rest,
    }))
}

/// Parses `role:publisher,role:subscriber` (comma or semicolon separated).
fn agora_role_map(spec: &str) -> Result<HashMap<String, AgoraRole>, String> {
    parse_map(spec, "role:publisher")?
        .into_iter()
        .map(|(role, agora)| match AgoraRole::parse(&agora) {
            Some(a) => Ok((role, a)),
            None => Err(format!(
                "entry {role}:{agora}: Agora role must be publisher or subscriber"
            )),
        })
        .collect()
}

/// The `HMS_*` settings. `required`: 100ms is the default provider, so its credentials
/// must be set; otherwise `None` when none of them is.
fn hms_settings(get: &Lookup<'_>, required: bool) -> Result<Option<HmsConfig>, ConfigError> {
    let creds = [
        "HMS_APP_ACCESS_KEY",
        "HMS_APP_SECRET",
        "HMS_TEMPLATE_ID",
        "HMS_DEFAULT_ROLE",
    ];
    if !required && creds.iter().all(|v| get(v).is_none()) {
        return Ok(None);
    }
    let why = if required {
        "is not set; CALLBRIDGE_PROVIDER is hms"
    } else {
        "is not set (other HMS_ settings are)"
    };
    let need = |k: &'static str| {
        get(k)
            .map(|v| v.trim().to_string())
            .ok_or_else(|| config_error(k, why))
    };
    let region = match get("HMS_REGION") {
        None => None,
        Some(r) if hms::REGIONS.contains(&r.trim()) => Some(r.trim().to_string()),
        Some(r) => {
            return Err(config_error(
                "HMS_REGION",
                format!("is {r:?}; use in, us, eu or auto"),
            ));
        }
    };
    let role_map = match get("HMS_ROLE_MAP") {
        None => HashMap::new(),
        Some(s) => parse_map(&s, "stream_role:hms_role")
            .map_err(|e| config_error("HMS_ROLE_MAP", e))?
            .into_iter()
            .collect(),
    };
    let api_base = http_url(get, "HMS_API_BASE_URL", hms::DEFAULT_API_BASE)?;
    Ok(Some(HmsConfig {
        app_access_key: need("HMS_APP_ACCESS_KEY")?,
        app_secret: Secret::new(need("HMS_APP_SECRET")?),
        template_id: need("HMS_TEMPLATE_ID")?,
        default_role: need("HMS_DEFAULT_ROLE")?,
        region,
        role_map,
        api_base,
        webhook: None,
    }))
}

/// An `http(s)` base URL setting, without its trailing slash.
pub fn http_url(get: &Lookup<'_>, var: &'static str, default: &str) -> Result<String, ConfigError> {
    let url = get(var).unwrap_or_else(|| default.to_string());
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.parse::<http::Uri>().is_err()
    {
        return Err(err(var, "must be an http(s) URL"));
    }
    Ok(url)
}

/// DynamoDB's rule for table names: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
pub fn check_table_name(t: &str) -> Result<(), &'static str> {
    let ok = (3..=255).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err("must be 3 to 255 characters of a-z A-Z 0-9 _ - .")
    }
}

/// A duration setting in whole seconds within `range` (`range_text` in the error).
fn seconds(
    get: &Lookup<'_>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    range_text: &str,
) -> Result<u64, ConfigError> {
    let Some(s) = get(var) else {
        return Ok(default);
    };
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            err(
                var,
                format!("is {s:?}; use whole seconds from {range_text}"),
            )
        })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
    pub const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("STREAM_API_KEY", "key"),
            ("STREAM_API_SECRET", "topsecret-value"),
            ("AGORA_APP_ID", APP_ID),
            ("AGORA_APP_CERTIFICATE", CERT),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let vars: Vec<_> = extra.iter().copied().chain(base()).collect();
        Config::from_pairs(&vars)
    }

    #[test]
    fn from_pairs_takes_the_first_value_of_a_name() {
        let c = with(&[("CALLBRIDGE_TOKEN_TTL_SECONDS", "120")]).unwrap();
        assert_eq!(c.token_ttl_secs, 120);
        let c = Config::from_pairs(&[
            ("CALLBRIDGE_TOKEN_TTL_SECONDS", "120"),
            ("CALLBRIDGE_TOKEN_TTL_SECONDS", "240"),
            ("STREAM_API_KEY", "key"),
            ("STREAM_API_SECRET", "s"),
            ("AGORA_APP_ID", APP_ID),
            ("AGORA_APP_CERTIFICATE", CERT),
        ])
        .unwrap();
        assert_eq!(c.token_ttl_secs, 120);
    }

    #[test]
    fn role_map() {
        let get = |k: &str| match k {
            "HMS_APP_ACCESS_KEY" => Some("k".to_string()),
            "HMS_APP_SECRET" => Some("s".to_string()),
            "HMS_TEMPLATE_ID" => Some("t".to_string()),
            "HMS_DEFAULT_ROLE" => Some("guest".to_string()),
            "HMS_ROLE_MAP" => Some("admin:host, user:speaker".to_string()),
            _ => None,
        };
        let c = super::hms_settings(&get, true).unwrap().unwrap();
        assert_eq!(c.role_for("admin"), "host");
        assert_eq!(c.role_for("user"), "speaker");
        assert_eq!(c.role_for("other"), "guest");
    }

    #[test]
    fn agora_role_maps() {
        let m = agora_role_map("guest:subscriber, host:publisher").unwrap();
        assert_eq!(m["guest"], AgoraRole::Subscriber);
        assert_eq!(m["host"], AgoraRole::Publisher);
        assert!(agora_role_map("x").is_err());
        assert!(agora_role_map("x:admin").is_err());
        assert!(agora_role_map("").unwrap().is_empty());
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.provider, ProviderKind::Agora);
        assert_eq!(c.token_ttl_secs, 3600);
        assert_eq!(c.call_ttl_secs, 30 * 86400);
        assert!(!c.allow_dev_tokens);
        assert_eq!(c.grants, Grants::default());
        assert_eq!(c.table_name, None);
        assert!(c.membership);
        assert_eq!(c.notify, Notify::Off);
        assert_eq!(c.stream.api_base, "https://chat.stream-io-api.com");
        assert_eq!(c.stream.cache_secs, 60);
        assert!(c.hms.is_none());
        assert_eq!(c.max_call_secs, None);
        assert!(c.agora.unwrap().rest.is_none());
    }

    #[test]
    fn call_time_limits_and_agora_rest_credentials() {
        let c = with(&[("CALLBRIDGE_MAX_CALL_SECONDS", "3600")]).unwrap();
        assert_eq!(c.max_call_secs, Some(3600));
        assert_eq!(
            with(&[("CALLBRIDGE_MAX_CALL_SECONDS", "0")])
                .unwrap()
                .max_call_secs,
            None
        );
        for bad in ["59", "86401", "-1", "an hour"] {
            let e = with(&[("CALLBRIDGE_MAX_CALL_SECONDS", bad)]).unwrap_err();
            assert_eq!(e.var, "CALLBRIDGE_MAX_CALL_SECONDS", "{bad}");
            assert!(e.reason.contains("60 to 86400"), "{e}");
        }
        let hms = [
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
            ("HMS_APP_SECRET", "s"),
            ("HMS_TEMPLATE_ID", "t"),
            ("HMS_DEFAULT_ROLE", "guest"),
        ];
        let mut vars = hms.to_vec();
        vars.push(("CALLBRIDGE_MAX_CALL_SECONDS", "86400"));
        let e = with(&vars).unwrap_err();
        assert!(e.reason.contains("120 to 43200"), "{e}");
        let mut vars = hms.to_vec();
        vars.push(("CALLBRIDGE_MAX_CALL_SECONDS", "43200"));
        assert_eq!(with(&vars).unwrap().max_call_secs, Some(43_200));

        let c = with(&[
            ("AGORA_CUSTOMER_ID", "cust"),
            ("AGORA_CUSTOMER_SECRET", "custsecret-value"),
        ])
        .unwrap();
        let rest = c.agora.clone().unwrap().rest.unwrap();
        assert_eq!(rest.customer_id, "cust");
        assert_eq!(rest.api_base, "https://api.agora.io");
        assert!(!format!("{c:?}").contains("custsecret-value"));
        let e = with(&[("AGORA_CUSTOMER_ID", "cust")]).unwrap_err();
        assert_eq!(e.var, "AGORA_CUSTOMER_SECRET");
        let e = with(&[("AGORA_CUSTOMER_SECRET", "x")]).unwrap_err();
        assert_eq!(e.var, "AGORA_CUSTOMER_ID");
        let e = with(&[
            ("AGORA_CUSTOMER_ID", "cust"),
            ("AGORA_CUSTOMER_SECRET", "x"),
            ("AGORA_API_BASE_URL", "ftp://x"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "AGORA_API_BASE_URL");
    }

    #[test]
    fn hms_settings() {
        let c = with(&[
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("AGORA_APP_ID", ""),
            ("AGORA_APP_CERTIFICATE", ""),
            ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
            ("HMS_APP_SECRET", "hms-secret-value"),
            ("HMS_TEMPLATE_ID", "tmpl"),
            ("HMS_DEFAULT_ROLE", "guest"),
            ("HMS_REGION", "eu"),
            ("HMS_ROLE_MAP", "admin:host"),
        ])
        .unwrap();
        assert_eq!(c.provider, ProviderKind::Hms);
        assert!(c.agora.is_none());
        let h = c.hms.as_ref().unwrap();
        assert_eq!(h.api_base, "https://api.100ms.live/v2");
        assert_eq!(h.role_for("admin"), "host");
        assert_eq!(h.role_for("user"), "guest");
        assert_eq!(h.region.as_deref(), Some("eu"));
        assert!(!format!("{c:?}").contains("hms-secret-value"));
    }

    #[test]
    fn each_bad_setting_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("STREAM_API_KEY", "")], "STREAM_API_KEY"),
            (&[("STREAM_API_SECRET", " ")], "STREAM_API_SECRET"),
            (&[("CALLBRIDGE_PROVIDER", "zoom")], "CALLBRIDGE_PROVIDER"),
            (&[("AGORA_APP_ID", "xyz")], "AGORA_APP_ID"),
            (&[("AGORA_APP_CERTIFICATE", "123")], "AGORA_APP_CERTIFICATE"),
            (&[("AGORA_ROLE_MAP", "guest=sub")], "AGORA_ROLE_MAP"),
            (
                &[("AGORA_ROLE_MAP", "guest:subscriber,guest:publisher")],
                "AGORA_ROLE_MAP",
            ),
            (&[("AGORA_ROLE_MAP", ":subscriber")], "AGORA_ROLE_MAP"),
            (&[("AGORA_ROLE_MAP", "guest:")], "AGORA_ROLE_MAP"),
            (&[("CALLBRIDGE_GRANTS", "user:fly")], "CALLBRIDGE_GRANTS"),
            (
                &[("CALLBRIDGE_TOKEN_TTL_SECONDS", "86401")],
                "CALLBRIDGE_TOKEN_TTL_SECONDS",
            ),
            (
                &[("CALLBRIDGE_TOKEN_TTL_SECONDS", "1h")],
                "CALLBRIDGE_TOKEN_TTL_SECONDS",
            ),
            (
                &[("CALLBRIDGE_CALL_TTL_SECONDS", "-1")],
                "CALLBRIDGE_CALL_TTL_SECONDS",
            ),
            (
                &[("CALLBRIDGE_ALLOW_DEV_TOKENS", "maybe")],
                "CALLBRIDGE_ALLOW_DEV_TOKENS",
            ),
            (&[("CALLBRIDGE_TABLE_NAME", "a b")], "CALLBRIDGE_TABLE_NAME"),
            (
                &[("CALLBRIDGE_MEMBERSHIP", "maybe")],
                "CALLBRIDGE_MEMBERSHIP",
            ),
            (&[("CALLBRIDGE_NOTIFY", "sms")], "CALLBRIDGE_NOTIFY"),
            (
                &[("CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS", "3601")],
                "CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS",
            ),
            (
                &[("STREAM_API_BASE_URL", "chat.example")],
                "STREAM_API_BASE_URL",
            ),
            (&[("CALLBRIDGE_PROVIDER", "hms")], "HMS_APP_ACCESS_KEY"),
            (&[("HMS_APP_ACCESS_KEY", "k")], "HMS_APP_SECRET"),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                ],
                "HMS_DEFAULT_ROLE",
            ),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                    ("HMS_DEFAULT_ROLE", "r"),
                    ("HMS_REGION", "mars"),
                ],
                "HMS_REGION",
            ),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                    ("HMS_DEFAULT_ROLE", "r"),
                    ("HMS_ROLE_MAP", "x"),
                ],
                "HMS_ROLE_MAP",
            ),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                    ("HMS_DEFAULT_ROLE", "r"),
                    ("HMS_ROLE_MAP", "admin:host;admin:guest"),
                ],
                "HMS_ROLE_MAP",
            ),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                    ("HMS_DEFAULT_ROLE", "r"),
                    ("HMS_ROLE_MAP", " :host"),
                ],
                "HMS_ROLE_MAP",
            ),
            (
                &[
                    ("HMS_APP_ACCESS_KEY", "k"),
                    ("HMS_APP_SECRET", "s"),
                    ("HMS_TEMPLATE_ID", "t"),
                    ("HMS_DEFAULT_ROLE", "r"),
                    ("HMS_API_BASE_URL", "ftp://x"),
                ],
                "HMS_API_BASE_URL",
            ),
        ];
        for (vars, var) in cases {
            let e = with(vars).unwrap_err();
            assert_eq!(e.var, *var, "{vars:?}: {e}");
            assert!(e.to_string().contains(var));
        }
        let e =
            Config::from_pairs(&[("STREAM_API_KEY", "k"), ("STREAM_API_SECRET", "s")]).unwrap_err();
        assert_eq!(e.var, "AGORA_APP_ID");
    }

    #[test]
    fn role_maps_say_what_is_wrong() {
        for (spec, needle) in [
            ("guest:subscriber,guest:publisher", "listed twice"),
            (":subscriber", "empty role"),
            ("guest:", "empty role"),
            ("guest", "must look like"),
        ] {
            let e = with(&[("AGORA_ROLE_MAP", spec)]).unwrap_err();
            assert!(e.reason.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn secrets_never_in_debug_or_errors() {
        let c = with(&[]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("topsecret-value"));
        assert!(!dbg.contains(CERT));
        let e = with(&[("AGORA_APP_CERTIFICATE", "not-hex-secret-value")]).unwrap_err();
        assert!(!e.to_string().contains("not-hex-secret-value"));
    }

    #[test]
    fn explicit_values() {
        let c = with(&[
            ("CALLBRIDGE_TOKEN_TTL_SECONDS", "86400"),
            ("CALLBRIDGE_CALL_TTL_SECONDS", "120"),
            ("CALLBRIDGE_ALLOW_DEV_TOKENS", "true"),
            ("CALLBRIDGE_TABLE_NAME", "callbridge-calls"),
            ("AGORA_ROLE_MAP", "guest:subscriber"),
        ])
        .unwrap();
        assert_eq!(c.token_ttl_secs, 86400);
        assert_eq!(c.call_ttl_secs, 120);
        assert!(c.allow_dev_tokens);
        assert_eq!(c.table_name.as_deref(), Some("callbridge-calls"));
        assert_eq!(
            c.agora.unwrap().role_for("guest"),
            crate::providers::agora::AgoraRole::Subscriber
        );
        assert_eq!(
            with(&[("AGORA_ROLE_MAP", "guest:subscriber,guest:publisher")])
                .unwrap_err()
                .var,
            "AGORA_ROLE_MAP"
        );
    }
}
