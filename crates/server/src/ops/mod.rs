//! The operator API, `/ops/v1`: log in, the exceptions queue, corrections (maker-checker),
//! discrepancy resolutions, result-file uploads, batches, audit verification, dead webhooks.
//! Every action is attributed to the logged-in operator; roles come from `operators`, and a role
//! that may not do something gets 403 before the engine is asked.

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use disburse_core::correction::CorrectionKind;
use disburse_core::correction::Role;
use disburse_core::{Currency, MerchantId, Money, OperatorName, OrderNo, PayoutNo};
use disburse_engine::{Actor, CorrectionView, ExceptionItem, Resolution};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{self, ClientAddr, OperatorCaller};
use crate::credentials::{self, SessionInfo};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::merchant::{discrepancy_dto, load_withdrawal, Discrepancy, Withdrawal};
use crate::schema::{CorrectionStatus, CurrencyCode, DeliveryStatus, RoleName};
use crate::webhooks::{self, DeadLetterSummary, Delivery};
use crate::AppState;

// One room per resource; they share the imports above (`use super::*`) and are re-exported
// whole, so routes and the OpenAPI document name `ops::<handler>` as before.
mod audit;
mod batches;
mod corrections;
mod deliveries;
mod discrepancies;
mod exceptions;
mod operators;
mod orders;
mod results;
mod session;

pub use audit::*;
pub use batches::*;
pub use corrections::*;
pub use deliveries::*;
pub use discrepancies::*;
pub use exceptions::*;
pub use operators::*;
pub use orders::*;
pub use results::*;
pub use session::*;
