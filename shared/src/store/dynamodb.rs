//! DynamoDB adapter: one table keyed by the canonical call id.
//!
//! Item layout (all plain attributes, readable with the AWS CLI):
//!
//! | attribute       | type | value                                             |
//! |-----------------|------|---------------------------------------------------|
//! | `pk`            | S    | canonical call id (partition key)                 |
//! | `cid`           | S    | channel, `type:id`                                |
//! | `call_type`     | S    | `video` or `audio`                                |
//! | `provider`      | S    | `agora` or `hms`                                  |
//! | `agora_channel` | S    | Agora channel (Agora calls)                       |
//! | `hms_room_id`   | S    | 100ms room id (100ms calls)                       |
//! | `hms_room_name` | S    | 100ms room name (100ms calls)                     |
//! | `created_by`    | S    | user id of the creator                            |
//! | `created_at`    | N    | Unix seconds                                      |
//! | `expires_at`    | N    | Unix seconds; the table's TTL attribute           |
//! | `announce_pending` | BOOL | `true` while the channel is still to be told (only then present) |
//! | `ends_at`       | N    | Unix seconds: the call's time limit (calls with one)  |
//! | `ended_at`      | N    | Unix seconds: when End Call ended it (ended calls)    |
//! | `ended_by`      | S    | user id of whoever ended it (ended calls)             |
//! | `ended_reason`  | S    | the reason End Call was given (when one was)          |
//! | `end_provider_pending` | BOOL | `true` while the provider is still to be told of the end |
//! | `end_announce_pending` | BOOL | `true` while the channel is still to be told of the end |
//! | `kick_rule_id`, `kick_rule_until` | N | Agora's kicking rule that removed everyone, and when it lapses |
//! | `stale_kick_rule_id`, `stale_kick_rule_until` | N | an earlier call's rule still to be removed |
//! | `ev_<32 hex digits>` | S | one provider event (JSON), named by SHA-256 of its id |
//! | `told`          | SS   | session transitions the channel was told of        |
//!
//! Create is one conditional `PutItem` (`attribute_not_exists(pk) OR expires_at <= :now OR
//! attribute_exists(ended_at) OR ends_at <= :now`, with `ReturnValues = ALL_OLD` and
//! `ReturnValuesOnConditionCheckFailure = ALL_OLD`): a lost race or an existing call is answered
//! from the failed put itself, and a replaced (expired or ended) call from the put's answer. End
//! is one conditional `UpdateItem` on the call's `created_at`. Get is one consistent `GetItem`.
//! Expiry and time limits are decided here, in code: DynamoDB's TTL deletes late.

use super::{CallReader, CallWriter, EndWrite, Inserted, Settled, StoreError};
use crate::domain::{
    Call, CallId, CallState, CallType, ChannelCid, Ended, Fact, KickRule, Media, MediaEvent,
    ProviderDetails,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::StalledStreamProtectionConfig;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use std::collections::HashMap;
use std::time::Duration;

/// Bounds on every DynamoDB call. Worst case for one request: 3 attempts of at most 1 s each
/// plus back-off, cut at 3 s by the operation timeout, well inside the functions' timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
pub const MAX_ATTEMPTS: u32 = 3;

/// The table's partition key (a string: the canonical call id).
pub const KEY_ATTRIBUTE: &str = "pk";
/// The table's TTL attribute (a number: Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The IAM actions on the table each operation uses: Create Call reads an existing call and
/// puts a new one; Get Call Token only reads.
pub const CREATE_CALL_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];
/// Present (true) on a call whose announcement into its channel is still to be made.
pub const PENDING_ATTRIBUTE: &str = "announce_pending";
pub const GET_CALL_TOKEN_ACTIONS: &[&str] = &["dynamodb:GetItem"];
/// End Call reads the call and updates it (the end, then what was done about it).
pub const END_CALL_ACTIONS: &[&str] = &["dynamodb:GetItem", "dynamodb:UpdateItem"];
/// Provider events read the call and add events to it (and the transitions told).
pub const PROVIDER_EVENTS_ACTIONS: &[&str] = &["dynamodb:GetItem", "dynamodb:UpdateItem"];
/// Prefix of the attributes that hold provider events.
pub const EVENT_PREFIX: &str = "ev_";

/// The put succeeds only where no live, active call has the id (`KEY_ATTRIBUTE`,
/// `TTL_ATTRIBUTE`, and the end attributes).
const CREATE_CONDITION: &str = "attribute_not_exists(pk) OR expires_at <= :now OR attribute_exists(ended_at) OR ends_at <= :now";
/// The end is written only on the call that was read (same `created_at`), while it exists and
/// has not ended.
const END_CONDITION: &str = "created_at = :created AND expires_at > :now AND attribute_not_exists(ended_at) AND (attribute_not_exists(ends_at) OR ends_at > :now)";

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// Applies Callbridge's timeouts, retries and storage metrics to a DynamoDB client
/// configuration.
pub fn tune(builder: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    builder
        .interceptor(super::dynamodb_metrics::StorageMetrics)
        // Answers are a few hundred bytes and every attempt has a deadline; the stalled-stream
        // monitor would only add per-request work.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(400)),
        )
}

/// A client from the environment (region, credentials, `AWS_ENDPOINT_URL_DYNAMODB`), tuned.
/// Build it once per process.
pub async fn client_from_env() -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::http_client::aws_http_client())
        .load()
        .await;
    Client::from_conf(config_from(&shared))
}

/// The DynamoDB client's configuration from the shared one (what aws-config loaded), tuned.
pub fn config_from(shared: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Config {
    tune(aws_sdk_dynamodb::config::Builder::from(shared)).build()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The table's name (tests and tools; no function asks).
    #[cfg(any(test, feature = "test-support"))]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as template.yaml declares it (key `pk`, on-demand, TTL on
    /// `expires_at`), for local use and tests. Succeeds if the table exists.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY_ATTRIBUTE)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| StoreError::Internal(Box::new(e)))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY_ATTRIBUTE)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| StoreError::Internal(Box::new(e)))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => {}
            Err(e) => return Err(StoreError::Unavailable(Box::new(e))),
        }
        let enabled = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Internal(Box::new(e)))?,
            )
            .send()
            .await;
        let Err(e) = enabled else {
            return Ok(());
        };
        // Enabling TTL twice is refused (ValidationException): ask DynamoDB whether the table
        // already has it, on our attribute, rather than reading the error's text.
        if e.as_service_error().and_then(|se| se.code()) != Some("ValidationException") {
            return Err(StoreError::Unavailable(Box::new(e)));
        }
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|d| StoreError::Unavailable(Box::new(d)))?;
        let ttl = described.time_to_live_description();
        let on = matches!(
            ttl.and_then(|t| t.time_to_live_status()),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on && ttl.and_then(|t| t.attribute_name()) == Some(TTL_ATTRIBUTE) {
            Ok(())
        } else {
            Err(StoreError::Misconfigured(Box::new(e)))
        }
    }
}

callbridge_core::read_write_storage!(DynamoStore);

impl CallWriter for DynamoStore {
    async fn settle(&self, id: &CallId, created_at: u64, done: Settled) -> Result<(), StoreError> {
        let (expression, values) = settle_expression(&done);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(id.as_str().to_string()))
            .update_expression(expression)
            .condition_expression("created_at = :created")
            .expression_attribute_values(":created", n(created_at));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        if let Settled::Told(key) = &done {
            update = update.expression_attribute_values(":told", AttributeValue::Ss(key.clone()));
        }
        match update.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(SdkError::ServiceError(ctx)) => Err(unconfirmed(by_code(ctx.into_err()))),
            Err(e) => Err(unconfirmed(transport(e))),
        }
    }

    async fn record(
        &self,
        id: &CallId,
        created_at: u64,
        facts: &[Fact],
    ) -> Result<bool, StoreError> {
        if facts.is_empty() {
            return Ok(false);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(id.as_str()))
            .condition_expression("created_at = :created AND attribute_not_exists(#ev0)")
            .expression_attribute_values(":created", n(created_at));
        let mut set = Vec::with_capacity(facts.len());
        for (i, fact) in facts.iter().enumerate() {
            set.push(format!("#ev{i} = :ev{i}"));
            update = update
                .expression_attribute_names(format!("#ev{i}"), event_attribute(&fact.id))
                .expression_attribute_values(format!(":ev{i}"), s(encode_fact(fact)));
        }
        let result = update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(SdkError::ServiceError(ctx)) => Err(unconfirmed(by_code(ctx.into_err()))),
            Err(e) => Err(unconfirmed(transport(e))),
        }
    }

    async fn end(&self, call: &Call, ended: &Ended, now: u64) -> Result<EndWrite, StoreError> {
        let mut set = vec!["ended_at = :at", "ended_by = :by"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(call.id.as_str()))
            .condition_expression(END_CONDITION)
            .expression_attribute_values(":created", n(call.created_at))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":at", n(ended.at))
            .expression_attribute_values(":by", s(ended.by.as_str()));
        if let Some(reason) = &ended.reason {
            set.push("ended_reason = :reason");
            update = update.expression_attribute_values(":reason", s(reason.as_str()));
        }
        if ended.provider_pending {
            set.push("end_provider_pending = :pending");
        }
        if ended.announce_pending {
            set.push("end_announce_pending = :pending");
        }
        if ended.provider_pending || ended.announce_pending {
            update = update.expression_attribute_values(":pending", AttributeValue::Bool(true));
        }
        let result = update
            .update_expression(format!("SET {}", set.join(", ")))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes() {
                Some(item) => Ok(EndWrite::Ended(from_item(item)?)),
                None => Err(StoreError::Corrupt(
                    "the end was written, but DynamoDB returned no item".into(),
                )),
            },
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                UpdateItemError::ConditionalCheckFailedException(e) => {
                    let Some(item) = e.item() else {
                        return Ok(EndWrite::Gone);
                    };
                    let stored = from_item(item)?;
                    Ok(
                        if stored.created_at != call.created_at || stored.is_expired(now) {
                            EndWrite::Gone
                        } else if stored.state(now) == CallState::Ended {
                            EndWrite::AlreadyEnded(stored)
                        } else {
                            EndWrite::Gone
                        },
                    )
                }
                e => Err(unconfirmed(by_code(e))),
            },
            Err(e) => Err(unconfirmed(transport(e))),
        }
    }

    async fn insert_if_absent(&self, call: &Call, now: u64) -> Result<Inserted, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(call)))
            .condition_expression(CREATE_CONDITION)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Inserted::New {
                // An unreadable replaced item only loses what was to be tidied up after it.
                replaced: out.attributes().and_then(|item| from_item(item).ok()),
            }),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                PutItemError::ConditionalCheckFailedException(e) => {
                    let item = e.item().ok_or_else(|| {
                        StoreError::Corrupt("conditional check failed without the old item".into())
                    })?;
                    Ok(Inserted::Existing(from_item(item)?))
                }
                e => Err(unconfirmed(by_code(e))),
            },
            Err(e) => Err(unconfirmed(transport(e))),
        }
    }
}

/// The update expression and its values for `done` (the condition's `:created` aside).
fn settle_expression(done: &Settled) -> (String, Vec<(&'static str, AttributeValue)>) {
    let rule = |id: &'static str, until: &'static str, r: &KickRule| {
        vec![(id, n(r.id)), (until, n(r.until))]
    };
    match done {
        // `:told` is a string set, added by the caller.
        Settled::Told(_) => ("ADD told :told".into(), vec![]),
        Settled::Announced => (format!("REMOVE {PENDING_ATTRIBUTE}"), vec![]),
        Settled::ProviderEnded { kick_rule: None } => {
            ("REMOVE end_provider_pending".into(), vec![])
        }
        Settled::ProviderEnded { kick_rule: Some(r) } => (
            "REMOVE end_provider_pending SET kick_rule_id = :rule, kick_rule_until = :until".into(),
            rule(":rule", ":until", r),
        ),
        Settled::EndAnnounced => ("REMOVE end_announce_pending".into(), vec![]),
        Settled::StaleKickRule(r) => (
            "SET stale_kick_rule_id = :rule, stale_kick_rule_until = :until".into(),
            rule(":rule", ":until", r),
        ),
        Settled::StaleKickRuleRemoved => (
            "REMOVE stale_kick_rule_id, stale_kick_rule_until".into(),
            vec![],
        ),
    }
}

/// A failed put whose outcome is unknown: the SDK retries attempts that timed out or failed
/// after sending, and DynamoDB may have applied one of them. Only refusals that DynamoDB makes
/// before writing (throttling, configuration, validation) are known to have written nothing.
fn unconfirmed(e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(cause) => StoreError::Unconfirmed(cause),
        other => other,
    }
}

impl CallReader for DynamoStore {
    async fn get(&self, id: &CallId, now: u64) -> Result<Option<Call>, StoreError> {
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(id.as_str().to_string()))
            .consistent_read(true)
            .send()
            .await;
        match result {
            Ok(out) => match out.item() {
                None => Ok(None),
                Some(item) => Ok(Some(from_item(item)?).filter(|c| !c.is_expired(now))),
            },
            Err(SdkError::ServiceError(ctx)) => Err(by_code(ctx.into_err())),
            Err(e) => Err(transport(e)),
        }
    }
}

/// Errors DynamoDB answered with, by their code (modelled by the SDK or not): throttling (429);
/// refusals of this deployment's configuration, which no retry fixes (503 without
/// `Retry-After`); the rest (service failures, conflicts, codes unknown today) are transient
/// (503 with `Retry-After`).
fn by_code<E>(e: E) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match super::dynamodb_metrics::storage_error_kind(e.code()) {
        "throttled" => StoreError::Throttled(Box::new(e)),
        "misconfigured" => StoreError::Misconfigured(Box::new(e)),
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

/// Failures before DynamoDB answered: nothing was written.
fn transport<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match e {
        // We built a request the SDK refused: a bug here, not an outage.
        SdkError::ConstructionFailure(_) => StoreError::Internal(Box::new(e)),
        // No answer in time, no connection, or an unreadable answer.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(Box::new(e))
        }
        SdkError::ServiceError(_) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn to_item(call: &Call) -> Item {
    let mut item = HashMap::with_capacity(10);
    item.insert(KEY_ATTRIBUTE.into(), s(call.id.as_str()));
    item.insert("cid".into(), s(call.cid.as_str()));
    item.insert("call_type".into(), s(call.call_type.as_str()));
    item.insert("provider".into(), s(call.provider.kind().as_str()));
    for (name, value) in call.provider.fields() {
        item.insert(name.into(), s(value));
    }
    item.insert("created_by".into(), s(call.created_by.as_str()));
    item.insert("created_at".into(), n(call.created_at));
    item.insert(TTL_ATTRIBUTE.into(), n(call.expires_at));
    if call.pending_announcement {
        item.insert(PENDING_ATTRIBUTE.into(), AttributeValue::Bool(true));
    }
    if let Some(end) = call.ends_at {
        item.insert("ends_at".into(), n(end));
    }
    if let Some(e) = &call.ended {
        item.insert("ended_at".into(), n(e.at));
        item.insert("ended_by".into(), s(e.by.as_str()));
        if let Some(r) = &e.reason {
            item.insert("ended_reason".into(), s(r.as_str()));
        }
        if e.provider_pending {
            item.insert("end_provider_pending".into(), AttributeValue::Bool(true));
        }
        if e.announce_pending {
            item.insert("end_announce_pending".into(), AttributeValue::Bool(true));
        }
        if let Some(r) = e.kick_rule {
            item.insert("kick_rule_id".into(), n(r.id));
            item.insert("kick_rule_until".into(), n(r.until));
        }
    }
    if let Some(r) = call.stale_kick_rule {
        item.insert("stale_kick_rule_id".into(), n(r.id));
        item.insert("stale_kick_rule_until".into(), n(r.until));
    }
    for fact in &call.media.facts {
        item.insert(event_attribute(&fact.id), s(encode_fact(fact)));
    }
    if !call.media.told.is_empty() {
        item.insert(
            "told".into(),
            AttributeValue::Ss(call.media.told.iter().cloned().collect()),
        );
    }
    item
}

/// The attribute that holds the event with this id.
fn event_attribute(id: &str) -> String {
    let digest = crate::crypto::sha256(id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{EVENT_PREFIX}{hex}")
}

/// One stored event: `{"id", "k" (open, close, join, leave), "s"?, "p"?, "at", "q"?}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredFact {
    id: String,
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<u64>,
}

fn encode_fact(fact: &Fact) -> String {
    let (k, s, p, at, q) = match &fact.event {
        MediaEvent::Opened { session, at } => ("open", session, None, *at, None),
        MediaEvent::Closed { session, at } => ("close", session, None, *at, None),
        MediaEvent::Joined {
            session,
            peer,
            at,
            seq,
        } => ("join", session, Some(peer), *at, Some(*seq)),
        MediaEvent::Left {
            session,
            peer,
            at,
            seq,
        } => ("leave", session, Some(peer), *at, Some(*seq)),
    };
    serde_json::to_string(&StoredFact {
        id: fact.id.clone(),
        k: k.into(),
        s: s.clone(),
        p: p.cloned(),
        at,
        q,
    })
    .expect("a fact serialises")
}

fn decode_fact(text: &str) -> Result<Fact, StoreError> {
    let f: StoredFact = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("a stored event is not readable: {e}")))?;
    let peer = || {
        f.p.clone()
            .ok_or_else(|| StoreError::Corrupt("a stored join or leave has no peer".into()))
    };
    let (session, at, seq) = (f.s.clone(), f.at, f.q.unwrap_or(0));
    let event = match f.k.as_str() {
        "open" => MediaEvent::Opened { session, at },
        "close" => MediaEvent::Closed { session, at },
        "join" => MediaEvent::Joined {
            session,
            peer: peer()?,
            at,
            seq,
        },
        "leave" => MediaEvent::Left {
            session,
            peer: peer()?,
            at,
            seq,
        },
        other => {
            return Err(StoreError::Corrupt(format!(
                "a stored event of kind {other:?}"
            )));
        }
    };
    Ok(Fact { id: f.id, event })
}

pub(crate) fn from_item(item: &Item) -> Result<Call, StoreError> {
    let get_s = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.as_str()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {k} missing or not a string"
        ))),
    };
    let get_n = |k: &str| match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| StoreError::Corrupt(format!("attribute {k} is not a whole number"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {k} missing or not a number"
        ))),
    };
    let flag = |k: &str| matches!(item.get(k), Some(AttributeValue::Bool(true)));
    let optional_n = |k: &str| item.get(k).map(|_| get_n(k)).transpose();
    let rule = |id: &str, until: &str| -> Result<Option<KickRule>, StoreError> {
        Ok(match (optional_n(id)?, optional_n(until)?) {
            (Some(id), Some(until)) => Some(KickRule { id, until }),
            _ => None,
        })
    };
    let ended = match optional_n("ended_at")? {
        None => None,
        Some(at) => Some(Ended {
            at,
            by: get_s("ended_by")?.to_string(),
            reason: match item.get("ended_reason") {
                None => None,
                Some(_) => Some(get_s("ended_reason")?.to_string()),
            },
            provider_pending: flag("end_provider_pending"),
            announce_pending: flag("end_announce_pending"),
            kick_rule: rule("kick_rule_id", "kick_rule_until")?,
        }),
    };
    let id = CallId::parse(get_s("pk")?).map_err(|e| StoreError::Corrupt(format!("pk: {e}")))?;
    let call_type = CallType::parse(get_s("call_type")?)
        .ok_or_else(|| StoreError::Corrupt("call_type is not video or audio".into()))?;
    let provider = ProviderDetails::from_fields(get_s("provider")?, |name| match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    })
    .map_err(StoreError::Corrupt)?;
    Ok(Call {
        id,
        cid: ChannelCid::from_stored(get_s("cid")?.to_string()),
        call_type,
        provider,
        created_by: get_s("created_by")?.to_string(),
        created_at: get_n("created_at")?,
        expires_at: get_n("expires_at")?,
        pending_announcement: flag(PENDING_ATTRIBUTE),
        ends_at: optional_n("ends_at")?,
        ended,
        stale_kick_rule: rule("stale_kick_rule_id", "stale_kick_rule_until")?,
        media: Media {
            facts: item
                .iter()
                .filter(|(k, _)| k.starts_with(EVENT_PREFIX))
                .map(|(k, v)| match v {
                    AttributeValue::S(text) => decode_fact(text),
                    _ => Err(StoreError::Corrupt(format!(
                        "attribute {k} is not a string"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            told: match item.get("told") {
                None => Default::default(),
                Some(AttributeValue::Ss(keys)) => keys.iter().cloned().collect(),
                Some(_) => {
                    return Err(StoreError::Corrupt(
                        "attribute told is not a string set".into(),
                    ));
                }
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(provider: ProviderDetails) -> Call {
        Call {
            id: CallId::parse("standup").unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Video,
            provider,
            created_by: "alice".into(),
            created_at: 1_800_000_000,
            expires_at: 1_802_592_000,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        }
    }

    #[test]
    fn the_create_condition_names_the_key_and_ttl_attributes() {
        assert_eq!(
            CREATE_CONDITION,
            format!(
                "attribute_not_exists({KEY_ATTRIBUTE}) OR {TTL_ATTRIBUTE} <= :now OR attribute_exists(ended_at) OR ends_at <= :now"
            )
        );
    }

    #[test]
    fn items_round_trip_for_both_providers() {
        for p in [
            ProviderDetails::Agora {
                channel: "standup".into(),
            },
            ProviderDetails::Hms {
                room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
                room_name: "standup".into(),
            },
        ] {
            let c = call(p);
            assert_eq!(from_item(&to_item(&c)).unwrap(), c);
        }
        let mut c = call(ProviderDetails::Agora {
            channel: "standup".into(),
        });
        c.ends_at = Some(1_800_003_600);
        c.stale_kick_rule = Some(KickRule {
            id: 7,
            until: 1_800_000_900,
        });
        c.ended = Some(Ended {
            at: 1_800_000_100,
            by: "bob".into(),
            reason: Some("done".into()),
            provider_pending: true,
            announce_pending: true,
            kick_rule: Some(KickRule {
                id: 9,
                until: 1_800_003_700,
            }),
        });
        assert_eq!(from_item(&to_item(&c)).unwrap(), c);
        c.media.facts = vec![
            Fact {
                id: "o".into(),
                event: MediaEvent::Opened {
                    session: Some("s1".into()),
                    at: 5,
                },
            },
            Fact {
                id: "c".into(),
                event: MediaEvent::Closed {
                    session: None,
                    at: 6,
                },
            },
            Fact {
                id: "j".into(),
                event: MediaEvent::Joined {
                    session: None,
                    peer: "7".into(),
                    at: 7,
                    seq: 3,
                },
            },
            Fact {
                id: "l".into(),
                event: MediaEvent::Left {
                    session: Some("s".into()),
                    peer: "p".into(),
                    at: 8,
                    seq: 0,
                },
            },
        ];
        c.media.told = ["started:s1".to_string()].into();
        let mut back = from_item(&to_item(&c)).unwrap();
        back.media.facts.sort();
        let mut sorted = c.clone();
        sorted.media.facts.sort();
        assert_eq!(back, sorted);
        c.media = Media::default();
        c.ended = Some(Ended {
            at: 1_800_000_100,
            by: "bob".into(),
            reason: None,
            provider_pending: false,
            announce_pending: false,
            kick_rule: None,
        });
        assert_eq!(from_item(&to_item(&c)).unwrap(), c);
    }

    #[test]
    fn the_end_condition_names_the_attributes_it_writes() {
        assert!(END_CONDITION.contains(&format!("{TTL_ATTRIBUTE} > :now")));
        assert!(CREATE_CONDITION.contains("attribute_exists(ended_at)"));
        for done in [
            Settled::Told(vec!["started:s".into()]),
            Settled::Announced,
            Settled::ProviderEnded { kick_rule: None },
            Settled::ProviderEnded {
                kick_rule: Some(KickRule { id: 1, until: 2 }),
            },
            Settled::EndAnnounced,
            Settled::StaleKickRule(KickRule { id: 1, until: 2 }),
            Settled::StaleKickRuleRemoved,
        ] {
            let (expression, values) = settle_expression(&done);
            for (name, _) in &values {
                assert!(expression.contains(name), "{expression} {name}");
            }
        }
    }

    #[test]
    fn malformed_items_are_corrupt_not_panics() {
        let good = to_item(&call(ProviderDetails::Agora {
            channel: "standup".into(),
        }));
        for (k, v) in [
            ("pk", AttributeValue::S("bad id!".into())),
            ("pk", AttributeValue::N("1".into())),
            ("call_type", s("screen")),
            ("provider", s("zoom")),
            ("created_at", AttributeValue::N("-1".into())),
            ("expires_at", s("soon")),
            ("ends_at", s("later")),
            ("ended_at", AttributeValue::N("x".into())),
        ] {
            let mut item = good.clone();
            item.insert(k.into(), v);
            assert!(
                matches!(from_item(&item), Err(StoreError::Corrupt(_))),
                "{k}"
            );
        }
        let mut item = good.clone();
        item.remove("agora_channel");
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(_))));
    }
}
