//! The metrics contract, in a process of its own (the recorder is process-wide): what one
//! invocation writes, as CloudWatch reads embedded metric format, and the two metrics the
//! alarms read with exactly their dimensions.

use callbridge::api::Operation;
use callbridge::domain::ProviderKind;
use callbridge::error::Error;
use callbridge::store::memory::MemoryStore;
use callbridge::telemetry::{self, METRICS};
use callbridge::{Callbridge, Config};
use callbridge_lambda::{HttpEvent, Metrics, RequestIds, invoke};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use std::time::Instant;

const SECRET: &str = "emf-test-secret";

fn config() -> Config {
    Config::from_pairs(&[
        ("STREAM_API_KEY", "emf-key"),
        ("STREAM_API_SECRET", SECRET),
        ("CALLBRIDGE_MEMBERSHIP", "off"),
        ("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33"),
        ("AGORA_APP_CERTIFICATE", "5CFd2fd1755d40ecb72977518be15d3b"),
    ])
    .unwrap()
}

fn event(request_id: &str, api_request_id: &str, path: &str, id: &str) -> LambdaEvent<HttpEvent> {
    let token = callbridge::hs256::sign_hs256(&json!({"user_id": "alice"}), SECRET.as_bytes());
    let payload: HttpEvent = serde_json::from_value(json!({
        "rawPath": path,
        "rawQueryString": "api_key=emf-key",
        "headers": {"authorization": token, "stream-auth-type": "jwt"},
        "pathParameters": if path.starts_with("/calls/") {
            json!({"id": id})
        } else {
            json!({"type": "messaging", "id": "general"})
        },
        "body": if path.starts_with("/calls/") { "{}".to_string() } else { format!(r#"{{"id":"{id}","type":"video"}}"#) },
        "isBase64Encoded": false,
        "requestContext": {"http": {"method": "POST", "path": path}, "requestId": api_request_id}
    }))
    .unwrap();
    let mut context = Context::default();
    context.request_id = request_id.into();
    context.xray_trace_id = Some("Root=1-5e1b4151-5ac6c58f3375aa3c7c6b73c9".into());
    LambdaEvent::new(payload, context)
}

fn documents(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Each (metric name, dimensions, document) in the documents, checking the EMF shape.
fn metrics_in(docs: &[Value]) -> Vec<(String, Vec<String>, Value)> {
    let mut found = Vec::new();
    for doc in docs {
        let aws = &doc["_aws"];
        assert!(
            aws["Timestamp"].as_u64().unwrap() > 1_700_000_000_000,
            "{doc}"
        );
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "Callbridge");
            let sets = directive["Dimensions"].as_array().unwrap();
            assert_eq!(sets.len(), 1, "{doc}");
            let dims: Vec<String> = sets[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            for d in &dims {
                assert!(
                    doc[d].is_string(),
                    "dimension {d} has no string value: {doc}"
                );
            }
            for m in directive["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap().to_string();
                assert!(
                    doc[&name].is_number() || doc[&name].is_array(),
                    "{name}: {doc}"
                );
                let (_, unit, labels) = METRICS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .unwrap_or_else(|| panic!("undeclared metric {name}"));
                let unit = format!("{unit:?}");
                assert_eq!(m["Unit"].as_str(), Some(unit.as_str()), "{name}");
                let mut want = vec!["FunctionName".to_string()];
                want.extend(labels.iter().map(|l| l.to_string()));
                assert_eq!(dims, want, "dimensions of {name}");
                found.push((name, dims.clone(), doc.clone()));
            }
        }
    }
    found
}

fn find<'a>(found: &'a [(String, Vec<String>, Value)], name: &str) -> Vec<&'a Value> {
    found
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, d)| d)
        .collect()
}

#[tokio::test]
async fn one_invocation_writes_its_metrics_with_its_ids() {
    let metrics = Metrics::install("callbridge-emf-test").unwrap();
    let app = Callbridge::new(config(), MemoryStore::new());

    // Create Call, new call.
    let create = event(
        "req-1",
        "api-1",
        "/channels/messaging/general/call",
        "standup",
    );
    let response = invoke(&app, Operation::CreateCall, None, &create).await;
    assert_eq!(response.status_code, 201, "{}", response.body);
    let mut out = Vec::new();
    metrics.write(&RequestIds::of(&create), &mut out);
    let docs = documents(&out);
    assert!(!docs.is_empty());
    for doc in &docs {
        assert_eq!(doc["requestId"], "req-1", "{doc}");
        assert_eq!(doc["apiRequestId"], "api-1", "{doc}");
        assert_eq!(doc["FunctionName"], "callbridge-emf-test", "{doc}");
    }
    let found = metrics_in(&docs);
    let cold = find(&found, "ColdStarts");
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0]["ColdStarts"], 1);
    let requests = find(&found, "Requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["Operation"], "CreateCall");
    assert_eq!(requests[0]["StatusClass"], "2xx");
    assert_eq!(requests[0]["Requests"], 1);
    let calls = find(&found, "Calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            &calls[0]["Provider"],
            &calls[0]["Result"],
            &calls[0]["Calls"]
        ),
        (&json!("agora"), &json!("new"), &json!(1))
    );
    assert_eq!(find(&found, "TokensIssued").len(), 1);
    assert!(find(&found, "ErrorCodes").is_empty());

    // Get Call Token, then one for a call that does not exist: nothing of the first
    // invocation is written again, and the ids are the new invocation's.
    let token = event("req-2", "api-2", "/calls/standup", "standup");
    let missing = event("req-3", "api-3", "/calls/nope", "nope");
    let response = invoke(&app, Operation::GetCallToken, None, &token).await;
    assert_eq!(response.status_code, 201, "{}", response.body);
    let response = invoke(&app, Operation::GetCallToken, None, &missing).await;
    assert_eq!(response.status_code, 404, "{}", response.body);
    let mut out = Vec::new();
    let mut ids = RequestIds::of(&missing);
    ids.api_gateway = None;
    metrics.write(&ids, &mut out);
    let docs = documents(&out);
    for doc in &docs {
        assert_eq!(doc["requestId"], "req-3", "{doc}");
        assert!(doc.get("apiRequestId").is_none(), "{doc}");
    }
    let found = metrics_in(&docs);
    assert!(find(&found, "ColdStarts").is_empty());
    assert!(find(&found, "Calls").is_empty());
    let by_class: Vec<(&Value, &Value)> = find(&found, "Requests")
        .iter()
        .map(|d| (&d["StatusClass"], &d["Requests"]))
        .collect();
    assert_eq!(by_class.len(), 2, "{by_class:?}");
    assert!(by_class.contains(&(&json!("2xx"), &json!(1))));
    assert!(by_class.contains(&(&json!("4xx"), &json!(1))));
    let codes = find(&found, "ErrorCodes");
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (&codes[0]["Code"], &codes[0]["ErrorCodes"]),
        (&json!("16"), &json!(1))
    );

    // The alarms' two metrics, exactly as template.yaml reads them.
    telemetry::request(
        Operation::GetCallToken,
        http::StatusCode::TOO_MANY_REQUESTS,
        9,
    );
    let failed = Error::Provider {
        message: "100ms did not answer".into(),
        cause: None,
    };
    telemetry::provider_prepared(
        ProviderKind::Hms,
        Instant::now(),
        Some(("unavailable", &failed)),
    );
    let throttled = Error::RateLimited {
        message: "slow down".into(),
        retry_after_secs: 1,
        cause: None,
    };
    telemetry::provider_prepared(
        ProviderKind::Hms,
        Instant::now(),
        Some(("throttled", &throttled)),
    );
    let mut out = Vec::new();
    metrics.write(&RequestIds::of(&token), &mut out);
    let found = metrics_in(&documents(&out));
    let t = find(&found, "Throttled");
    assert_eq!(t.len(), 1);
    assert_eq!(
        (&t[0]["Operation"], &t[0]["Throttled"]),
        (&json!("GetCallToken"), &json!(1))
    );
    let p = find(&found, "ProviderFailures");
    assert_eq!(p.len(), 1, "throttling is not a provider failure");
    assert_eq!(
        (&p[0]["Provider"], &p[0]["ProviderFailures"]),
        (&json!("hms"), &json!(1))
    );
    assert_eq!(find(&found, "ProviderErrors").len(), 2);
    let latency = find(&found, "ProviderLatency");
    assert_eq!(latency[0]["ProviderLatency"].as_array().unwrap().len(), 2);

    // Nothing recorded, nothing written.
    let mut out = Vec::new();
    metrics.write(&RequestIds::of(&token), &mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn the_alarm_contract_is_the_declared_one() {
    // scripts/check_template.py APP_METRICS, README "Metrics": without FunctionName.
    let dims = |name: &str| METRICS.iter().find(|(n, _, _)| *n == name).unwrap().2;
    assert_eq!(dims("ProviderFailures"), ["Provider"]);
    assert_eq!(dims("Throttled"), ["Operation"]);
    assert_eq!(telemetry::NAMESPACE, "Callbridge");
}
