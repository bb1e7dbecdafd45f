//! Routing: which operation a request is for, and its path parameters, percent-decoded once.

use super::error::{ApiError, Operation};
use super::{ApiRequest, PathParams};
use crate::domain::ProviderKind;

pub const CREATE_CALL_ROUTE: &str = "/channels/{type}/{id}/call";
pub const GET_CALL_TOKEN_ROUTE: &str = "/calls/{id}";
pub const END_CALL_ROUTE: &str = "/calls/{id}/end";
pub const HMS_EVENTS_ROUTE: &str = "/webhooks/100ms";
pub const AGORA_EVENTS_ROUTE: &str = "/webhooks/agora";

/// A matched route with its decoded parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CreateCall {
        channel_type: String,
        channel_id: String,
    },
    GetCallToken {
        call_id: String,
    },
    EndCall {
        call_id: String,
    },
    ProviderEvent {
        provider: ProviderKind,
    },
}

impl Route {
    pub fn operation(&self) -> Operation {
        match self {
            Route::CreateCall { .. } => Operation::CreateCall,
            Route::GetCallToken { .. } => Operation::GetCallToken,
            Route::EndCall { .. } => Operation::EndCall,
            Route::ProviderEvent { .. } => Operation::ProviderEvent,
        }
    }
}

/// The route template of an operation, `(none)` for none (the log line's `route`).
pub fn route_name(op: Option<Operation>) -> &'static str {
    match op {
        Some(Operation::CreateCall) => CREATE_CALL_ROUTE,
        Some(Operation::GetCallToken) => GET_CALL_TOKEN_ROUTE,
        Some(Operation::EndCall) => END_CALL_ROUTE,
        Some(Operation::ProviderEvent) => "/webhooks/{provider}",
        None => "(none)",
    }
}

/// The operation a path that matches no route was most likely meant for; its error names it.
/// A path with a `calls` segment and no `channels` one was meant for Get Call Token, even when
/// its id was lost on the way (`/calls`, `/calls/a/b`, a dot segment a client resolved away);
/// with an `end` segment after it, for End Call.
pub fn likely_operation(path: &str) -> Operation {
    let path = path.split('?').next().unwrap_or("").to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').collect();
    if segs.contains(&"webhooks") {
        return Operation::ProviderEvent;
    }
    let calls = segs.iter().position(|seg| *seg == "calls");
    match calls {
        Some(at) if !segs.contains(&"channels") => {
            if segs[at + 1..].contains(&"end") {
                Operation::EndCall
            } else {
                Operation::GetCallToken
            }
        }
        _ => Operation::CreateCall,
    }
}

/// The operation whose route `path` matches, if any.
pub fn route_of(path: &str) -> Option<Operation> {
    route_from_path(path).map(|r| r.operation())
}

/// Finds the route from API Gateway's path parameters (for the operation the entry point
/// serves) or, failing that, from the raw path. An entry point serving one operation refuses
/// the other's path as no route.
pub fn resolve(req: &ApiRequest<'_>) -> Result<Route, ApiError> {
    let from_params = req
        .params
        .and_then(|p: PathParams<'_>| match req.operation {
            Some(Operation::CreateCall) => Some(Route::CreateCall {
                channel_type: decode(p.channel_type?),
                channel_id: decode(p.id?),
            }),
            Some(Operation::GetCallToken) => Some(Route::GetCallToken {
                call_id: decode(p.id?),
            }),
            Some(Operation::EndCall) => Some(Route::EndCall {
                call_id: decode(p.id?),
            }),
            // Its two routes have no parameters: the path says which provider.
            Some(Operation::ProviderEvent) | None => None,
        });
    let route = match from_params {
        Some(r) => r,
        None => route_from_path(req.path).ok_or_else(|| no_route(req))?,
    };
    match req.operation {
        Some(op) if op != route.operation() => Err(no_route(req)),
        _ => Ok(route),
    }
}

fn no_route(req: &ApiRequest<'_>) -> ApiError {
    ApiError::NoRoute {
        method: super::shown_method(req.method),
        path: req.path.chars().take(200).collect(),
    }
}

/// Matches `.../channels/{type}/{id}/call`, `.../calls/{id}` or `.../calls/{id}/end` at the end
/// of the path (a stage prefix such as `/prod` may stand before it).
pub fn route_from_path(path: &str) -> Option<Route> {
    let path = path.split('?').next().unwrap_or("");
    // `/calls/` is Get Call Token with an empty id (a 400 that says so), not a missing route.
    if path.ends_with("/calls/") {
        return Some(Route::GetCallToken {
            call_id: String::new(),
        });
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        [.., "channels", t, id, "call"] => Some(Route::CreateCall {
            channel_type: decode(t),
            channel_id: decode(id),
        }),
        [.., "calls", id, "end"] => Some(Route::EndCall {
            call_id: decode(id),
        }),
        [.., "webhooks", "100ms"] => Some(Route::ProviderEvent {
            provider: ProviderKind::Hms,
        }),
        [.., "webhooks", "agora"] => Some(Route::ProviderEvent {
            provider: ProviderKind::Agora,
        }),
        [.., "calls", id] => Some(Route::GetCallToken {
            call_id: decode(id),
        }),
        _ => None,
    }
}

/// Percent-decodes one path segment. Undecodable UTF-8 keeps its replacement characters, which
/// no id accepts, so the id check reports it.
fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_raw_paths() {
        assert_eq!(
            route_from_path("/channels/messaging/general/call"),
            Some(Route::CreateCall {
                channel_type: "messaging".into(),
                channel_id: "general".into()
            })
        );
        assert_eq!(
            route_from_path("/prod/calls/call-messaging%3Ageneral/"),
            Some(Route::GetCallToken {
                call_id: "call-messaging:general".into()
            })
        );
        assert_eq!(route_from_path("/calls"), None);
        assert_eq!(route_from_path("/channels/a/b"), None);
        assert_eq!(route_from_path("/"), None);
        assert_eq!(route_of("/x/calls/a"), Some(Operation::GetCallToken));
        assert_eq!(
            route_from_path("/prod/calls/call-messaging%3Ageneral/end"),
            Some(Route::EndCall {
                call_id: "call-messaging:general".into()
            })
        );
        assert_eq!(route_of("/calls/a/end/"), Some(Operation::EndCall));
        assert_eq!(
            route_from_path("/prod/webhooks/100ms"),
            Some(Route::ProviderEvent {
                provider: ProviderKind::Hms
            })
        );
        assert_eq!(
            route_from_path("/webhooks/agora/"),
            Some(Route::ProviderEvent {
                provider: ProviderKind::Agora
            })
        );
        assert_eq!(route_from_path("/webhooks/zoom"), None);
        assert_eq!(likely_operation("/webhooks/zoom"), Operation::ProviderEvent);
        // A call whose id is `end` is Get Call Token's.
        assert_eq!(route_of("/calls/end"), Some(Operation::GetCallToken));
        for lost in ["/calls//end", "/calls/a/b/end", "/calls/end/x/end"] {
            assert_eq!(likely_operation(lost), Operation::EndCall, "{lost}");
        }
        for lost in [
            "/calls",
            "/prod/calls",
            "/calls/a/b",
            "/calls/a/ending",
            "/CALLS/x",
            "/calls/../",
            "/calls?id=x",
        ] {
            assert_eq!(likely_operation(lost), Operation::GetCallToken, "{lost}");
        }
        for other in [
            "/channels/x",
            "/",
            "",
            "/channels/t/calls/call/x",
            "/callsx/y",
        ] {
            assert_eq!(likely_operation(other), Operation::CreateCall, "{other}");
        }
    }
}
