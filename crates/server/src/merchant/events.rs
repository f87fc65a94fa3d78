//! The merchant's messages (the outbox), a page at a time.

use super::*;

/// One message to the merchant (also delivered by webhook).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: i64,
    /// `order.accepted`, `payout.succeeded`, `order.cancelled`, ...
    pub topic: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    /// When the webhook receiver acknowledged it, if it did.
    pub delivered_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<Event>,
    pub next_cursor: Option<String>,
}

/// The merchant's messages (the outbox), oldest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/events", tag = "merchant",
    params(PageQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("merchant_api_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: MerchantCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = page_limit(q.limit)?;
    let after = parse_cursor(q.cursor.as_deref())?;
    let mut events = state
        .engine()
        .db()
        .outbox_page_of_merchant(caller.0.as_str(), after, limit + 1)
        .await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next_cursor = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(EventPage {
        data: events
            .into_iter()
            .map(|e| Event {
                id: e.id,
                topic: e.topic,
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                created_at: e.created_at,
                delivered_at: e.delivered_at,
            })
            .collect(),
        next_cursor,
    }))
}
