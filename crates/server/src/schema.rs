//! What the OpenAPI document says beyond what the handlers' types say: the enumerations and
//! patterns of text fields (the wire types keep `String`, the schema names the values), and the
//! answers every operation can give because of the layers around it (401 without credentials,
//! 400/413/415/422/408 for a body, 404 for a path, 409/422 for an Idempotency-Key), added to each
//! operation so the document lists every status the service answers with.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::ToSchema;

use crate::error::PROBLEM_JSON;

/// ISO 4217 codes the system pays in.
#[derive(ToSchema)]
#[schema(rename_all = "UPPERCASE")]
#[allow(dead_code)]
pub enum CurrencyCode {
    Eur,
    Usd,
    Gbp,
    Chf,
    Cny,
    Hkd,
    Sgd,
    Mmk,
    Jpy,
    Kwd,
    Bhd,
}

/// The state of a withdrawal order.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OrderStateName {
    Open,
    Paying,
    Paid,
    ActionRequired,
    Cancelled,
}

/// The state of a payout.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PayoutStateName {
    Pending,
    Submitted,
    Succeeded,
    Failed,
    Returned,
    Expired,
    Cancelled,
}

/// The status of a correction.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum CorrectionStatus {
    Proposed,
    Applied,
    Rejected,
}

/// An operator's role.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RoleName {
    Viewer,
    Operator,
    Approver,
    Admin,
}

/// The status of a webhook delivery, as listed.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DeliveryStatus {
    Dead,
    Held,
    Pending,
    Delivered,
    Unrouted,
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

/// Adds to every operation the answers its layers give.
pub fn complete_responses(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                add(op, "401", "No, unknown, expired or revoked credentials");
            }
            let params: Vec<(ParameterIn, String)> = op
                .parameters
                .iter()
                .flatten()
                .map(|p| (p.parameter_in.clone(), p.name.clone()))
                .collect();
            if params.iter().any(|(at, _)| matches!(at, ParameterIn::Path)) {
                add(op, "404", "No such resource (or a malformed identifier)");
            }
            if params
                .iter()
                .any(|(at, _)| matches!(at, ParameterIn::Query))
            {
                add(op, "400", "A query parameter is wrong");
            }
            if params
                .iter()
                .any(|(at, n)| matches!(at, ParameterIn::Header) && n == "Idempotency-Key")
            {
                add(
                    op,
                    "400",
                    "The Idempotency-Key is not 1 to 255 visible ASCII characters",
                );
                add(
                    op,
                    "409",
                    "A request with this Idempotency-Key is still being processed",
                );
                add(
                    op,
                    "422",
                    "The Idempotency-Key was used for another request",
                );
            }
            if op.request_body.is_some() {
                add(op, "400", "Malformed JSON, or a key given twice");
                add(op, "408", "The body did not arrive in time");
                add(op, "413", "The body is too large");
                add(op, "415", "The body is not of the documented content type");
                add(op, "422", "A field is not acceptable; `field` names it");
            }
            if path.starts_with("/ops/v1/") && secured && op.request_body.is_some() {
                add(op, "403", "Not allowed for this role");
            }
        }
    }
}
