//! The event's headers into an `http` map, within bounds, joined as API Gateway joins repeats.

use callbridge::ApiError;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::{BTreeMap, HashMap};

/// Bounds on the headers the adapter copies from an event. API Gateway's HTTP API caps the
/// request line and header values at 10240 bytes in all ("Total combined size of request line
/// and header values", not adjustable: Quotas for configuring and running an HTTP API,
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html) and
/// documents no count; these bounds, 100 headers (as hyper serves the local server) and 32 KiB
/// of names and values, are met only by events API Gateway does not deliver (direct invokes,
/// other event sources). Over them an event is answered 431 (Stream's code 24).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The event's headers as an `http` map, within [`MAX_HEADERS`] and [`MAX_HEADER_BYTES`],
/// counted before anything is built; names or values `http` cannot hold are dropped, and
/// names that differ only in case are joined into one header.
pub(crate) fn header_map(headers: Option<&HashMap<String, String>>) -> Result<HeaderMap, ApiError> {
    let Some(headers) = headers else {
        return Ok(HeaderMap::new());
    };
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::HeadersTooLarge(format!(
            "more than {MAX_HEADERS} headers"
        )));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(format!(
            "more than {MAX_HEADER_BYTES} bytes of header names and values"
        )));
    }
    let too_many = |_| ApiError::HeadersTooLarge(format!("more than {MAX_HEADERS} headers"));
    // API Gateway (payload 2.0) lowercases every name: then no two names are one header, and
    // each goes in as it is, without the grouping below (the same map, fewer allocations).
    if headers
        .keys()
        .all(|name| !name.bytes().any(|b| b.is_ascii_uppercase()))
    {
        let mut map = HeaderMap::try_with_capacity(headers.len()).map_err(too_many)?;
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                map.try_append(name, value).map_err(too_many)?;
            }
        }
        return Ok(map);
    }
    // Names that differ only in case are one header, and the event's map iterates in no fixed
    // order, so which spelling won used to change from run to run. API Gateway (payload 2.0)
    // lowercases names and combines repeated headers with commas; an event from elsewhere
    // holding `authorization` and `Authorization` is read the same way: the values joined with
    // "," in the byte order of the names as written. Joined, two tokens are no token (401,
    // code 5), every time. Refusing such an event (400) would also be deterministic, but it
    // would answer differently from the same request through API Gateway.
    let mut grouped: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
    for (name, value) in headers {
        if HeaderValue::from_str(value).is_ok() {
            grouped
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push((name, value));
        }
    }
    let mut map = HeaderMap::try_with_capacity(grouped.len()).map_err(too_many)?;
    for (name, mut spellings) in grouped {
        spellings.sort_unstable();
        let values: Vec<&str> = spellings.iter().map(|(_, v)| *v).collect();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&values.join(",")),
        ) {
            map.try_append(name, value).map_err(too_many)?;
        }
    }
    Ok(map)
}
