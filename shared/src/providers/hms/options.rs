//! The room options of a Create Call request, validated by 100ms's own rules.

use super::{HMS_MAX_DURATION_SECS, HMS_MIN_DURATION_SECS, OPTION_KEYS, REGIONS};
use crate::domain::{CallOptions, OptionValue};
use serde::Serialize;

/// Validated room options from the Create Call body.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoomOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_room: Option<bool>,
}

impl RoomOptions {
    /// Validates the Create Call options (a known key set to null is unset, as JSON clients
    /// often send optional fields). Errors are client-facing messages.
    pub fn from_options(options: &CallOptions) -> Result<Self, String> {
        let mut o = RoomOptions::default();
        for (key, value) in &options.0 {
            if *value == OptionValue::Null && OPTION_KEYS.contains(&key.as_str()) {
                continue;
            }
            let bad = |what: &str| format!("options.{key} must be {what}");
            match key.as_str() {
                "template_id" => {
                    let s = value.as_str().filter(|s| {
                        !s.is_empty()
                            && s.len() <= 64
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                    o.template_id = Some(
                        s.ok_or_else(|| {
                            bad("a template id (1 to 64 characters of a-z A-Z 0-9 - _)")
                        })?
                        .to_string(),
                    );
                }
                "region" => {
                    let s = value.as_str().filter(|s| REGIONS.contains(s));
                    o.region = Some(s.ok_or_else(|| bad("one of in, us, eu, auto"))?.to_string());
                }
                "description" => {
                    let s = value.as_str().filter(|s| s.chars().count() <= 500);
                    o.description = Some(
                        s.ok_or_else(|| bad("a string of at most 500 characters"))?
                            .to_string(),
                    );
                }
                "size" => {
                    o.size = Some(
                        value
                            .as_count()
                            .filter(|n| *n <= 20_000)
                            .ok_or_else(|| bad("an integer from 0 to 20000"))?,
                    );
                }
                "max_duration_seconds" => {
                    o.max_duration_seconds = Some(
                        value
                            .as_count()
                            .filter(|n| (HMS_MIN_DURATION_SECS..=HMS_MAX_DURATION_SECS).contains(n))
                            .ok_or_else(|| {
                                bad("an integer from 120 to 43200 (100ms's limits on a room)")
                            })?,
                    );
                }
                "large_room" => {
                    o.large_room = Some(value.as_bool().ok_or_else(|| bad("true or false"))?);
                }
                other => {
                    return Err(format!(
                        "options.{other} is not accepted; accepted keys: {}",
                        OPTION_KEYS.join(", ")
                    ));
                }
            }
        }
        if o.large_room != Some(true) && o.size.is_some_and(|s| s > 2_500) {
            return Err("options.size above 2500 needs options.large_room = true".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn options_are_validated_and_unknown_keys_named() {
        let opts = |v: &Value| {
            CallOptions(
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::api::body::option_value(v)))
                    .collect(),
            )
        };
        let parse = |v: &Value| RoomOptions::from_options(&opts(v));
        assert_eq!(
            RoomOptions::from_options(&CallOptions::default()).unwrap(),
            RoomOptions::default()
        );
        let o = parse(&json!({"template_id":"t1","region":"eu","description":"d","size":10,"max_duration_seconds":600,"large_room":false})).unwrap();
        assert_eq!(o.region.as_deref(), Some("eu"));
        assert_eq!(o.size, Some(10));
        let nulls = json!({"template_id":null,"region":null,"description":null,"size":null,"max_duration_seconds":null,"large_room":null});
        assert_eq!(parse(&nulls).unwrap(), RoomOptions::default());
        for (bad, needle) in [
            (json!({"template": null}), "accepted keys"),
            (
                json!({"template":"x"}),
                "accepted keys: template_id, region, description, size, max_duration_seconds, large_room",
            ),
            (json!({"region":"mars"}), "options.region"),
            (json!({"size":-1}), "options.size"),
            (json!({"size":3000}), "large_room"),
            (
                json!({"max_duration_seconds":60}),
                "options.max_duration_seconds",
            ),
            (json!({"template_id":""}), "options.template_id"),
            (json!({"template_id":"a/b"}), "options.template_id"),
            (json!({"large_room":"yes"}), "options.large_room"),
            (json!({"size":1.5}), "options.size"),
            (json!({"region":["eu"]}), "options.region"),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
