//! What the DynamoDB client reports of each operation, through [`crate::telemetry`]: an
//! interceptor that classifies DynamoDB's own errors (the store maps its errors by the same
//! [`storage_error_kind`], so the metrics and the answers agree).

use crate::telemetry;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::time::Instant;

/// The DynamoDB client's interceptor: latency, retries and failures of every operation.
#[derive(Debug, Default)]
pub struct StorageMetrics;

#[derive(Debug)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// A DynamoDB error code as a failure kind: `throttled` (429), `misconfigured` (a refusal of
/// this deployment's configuration, which no retry fixes) or `unavailable` (service failures,
/// conflicts, codes unknown today). The store maps its errors by it (`store::dynamodb`), so the
/// metrics and the answers agree.
pub fn storage_error_kind(code: Option<&str>) -> &'static str {
    match code {
        Some(
            "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException",
        ) => "throttled",
        Some(
            "ResourceNotFoundException"
            | "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "IncompleteSignatureException"
            | "ValidationException",
        ) => "misconfigured",
        _ => "unavailable",
    }
}

impl Intercept for StorageMetrics {
    fn name(&self) -> &'static str {
        "CallbridgeStorageMetrics"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op: metrics::SharedString = match cfg.load::<Metadata>().map(Metadata::name) {
            Some("GetItem") => "GetItem".into(),
            Some("PutItem") => "PutItem".into(),
            Some("UpdateItem") => "UpdateItem".into(),
            Some(other) => other.to_string().into(),
            None => "unknown".into(),
        };
        let started = cfg.load::<Started>().map(|s| s.0);
        let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let failed = match context.output_or_error() {
            Some(Err(e)) => failure_kind(e),
            _ => None,
        };
        telemetry::storage_operation(op, started, attempts, failed);
        Ok(())
    }
}

/// The `Kind` of a failed operation; `None` for answers that are not failures (a conditional
/// write that finds the call there, ended or replaced).
fn failure_kind(
    e: &aws_smithy_runtime_api::client::orchestrator::OrchestratorError<
        aws_smithy_runtime_api::client::interceptors::context::Error,
    >,
) -> Option<&'static str> {
    if let Some(e) = e.as_operation_error() {
        let code = if let Some(e) = e.downcast_ref::<PutItemError>() {
            if e.is_conditional_check_failed_exception() {
                return None;
            }
            e.code()
        } else if let Some(e) = e.downcast_ref::<UpdateItemError>() {
            if e.is_conditional_check_failed_exception() {
                return None;
            }
            e.code()
        } else if let Some(e) = e.downcast_ref::<GetItemError>() {
            e.code()
        } else {
            None
        };
        Some(storage_error_kind(code))
    } else if e.is_timeout_error() {
        Some("timeout")
    } else {
        Some("unavailable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_error_kinds() {
        assert_eq!(
            storage_error_kind(Some("ProvisionedThroughputExceededException")),
            "throttled"
        );
        assert_eq!(
            storage_error_kind(Some("AccessDeniedException")),
            "misconfigured"
        );
        assert_eq!(
            storage_error_kind(Some("InternalServerError")),
            "unavailable"
        );
        assert_eq!(storage_error_kind(None), "unavailable");
    }
}
