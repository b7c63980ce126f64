//! The five operations. Checks in DESIGN §5's order: 401 → 429 rate (the [`Authorized`]
//! extractor) → 400 (path, body: every syntax error, unknown types included) → 403 scope (per
//! requested type for a POST) → 404 subscriber list → 400 INVALID_SINK for a sink on an internal
//! address (a DNS lookup) → 404 ownership (registration, device, subscription) → 429 quota.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Names, SubscriptionResponse, not_found};
use crate::auth::Caller;
use crate::domain::registration::{rfc3339_to_ms, uuid_key};
use crate::domain::{AccessToken, Detail, EventType, Present, PresentObject, Subscription};
use crate::http::AppState;
use crate::http::error::{ApiError, Code};
use crate::http::extract::{
    Authorized, CamaraJson, OptionalJson, ScopeInHandler, SubscriptionPath, require_scope,
};
use crate::http::registrations::owns;
use crate::store::{StoreError, SubscriptionChange, now_ms};

/// CAMARA's `SubscriptionRequest`. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct SubscribeBody {
    protocol: Present<String>,
    sink: Present<String>,
    sink_credential: PresentObject<CredentialBody>,
    types: Present<Vec<String>>,
    config: PresentObject<ConfigBody>,
}

/// CAMARA's `Config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct ConfigBody {
    subscription_detail: PresentObject<DetailBody>,
    subscription_expire_time: Present<String>,
    subscription_max_events: Present<i64>,
    initial_event: Present<bool>,
}

/// CAMARA's `WebrtcSubscriptionDetail`: r2.2's `registrationId` (and `sessionId`, or
/// `mediaSessionId` as r2.2's example writes it), or the draft's `deviceId`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct DetailBody {
    registration_id: Present<String>,
    device_id: Present<String>,
    session_id: Present<String>,
    media_session_id: Present<String>,
}

/// CAMARA's `SinkCredential` of type `ACCESSTOKEN`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct CredentialBody {
    credential_type: Present<String>,
    access_token: Present<String>,
    access_token_expires_utc: Present<String>,
    access_token_type: Present<String>,
}

/// CAMARA's `SubscriptionUpdateRequest`; the whole body is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct ChangeBody {
    sink_credential: PresentObject<CredentialBody>,
    config: PresentObject<ChangeConfigBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct ChangeConfigBody {
    subscription_expire_time: Present<String>,
}

/// The largest `subscriptionMaxEvents`.
const MAX_EVENTS: i64 = 1_000_000;

/// A credential, checked: `ACCESSTOKEN` (else 400 INVALID_CREDENTIAL), `bearer` (else 400
/// INVALID_TOKEN), a token of at most 8192 characters and an expiry in the future.
fn credential(body: CredentialBody, now_ms: u64) -> Result<AccessToken, ApiError> {
    if body.credential_type.as_deref() != Some("ACCESSTOKEN") {
        return Err(ApiError::new(
            Code::InvalidCredential,
            "Only Access token is supported: sinkCredential.credentialType must be ACCESSTOKEN.",
        ));
    }
    if body.access_token_type.as_deref() != Some("bearer") {
        return Err(ApiError::new(
            Code::InvalidToken,
            "Only bearer token is supported: sinkCredential.accessTokenType must be bearer.",
        ));
    }
    let token = body
        .access_token
        .into_option()
        .filter(|t| !t.is_empty() && t.len() <= 8192)
        .ok_or_else(|| {
            ApiError::invalid("sinkCredential.accessToken is required: 1 to 8192 characters.")
        })?;
    let expires = body
        .access_token_expires_utc
        .into_option()
        .ok_or_else(|| ApiError::invalid("sinkCredential.accessTokenExpiresUtc is required."))?;
    let expires_at_ms = time_field("sinkCredential.accessTokenExpiresUtc", &expires)?;
    if expires_at_ms <= now_ms {
        return Err(ApiError::new(
            Code::OutOfRange,
            "sinkCredential.accessTokenExpiresUtc must be in the future.",
        ));
    }
    Ok(AccessToken {
        token,
        expires_at_ms,
    })
}

/// An RFC 3339 time field as ms since the epoch, or 400 naming it (0 for a time before 1970).
fn time_field(field: &str, text: &str) -> Result<u64, ApiError> {
    rfc3339_to_ms(text)
        .map(|ms| u64::try_from(ms).unwrap_or(0))
        .map_err(|e| ApiError::invalid(format!("{field} {e}.")))
}

/// A requested `subscriptionExpireTime`: in the past → 400 OUT_OF_RANGE; beyond
/// `events.max_expire_seconds` from now → capped.
fn expiry(state: &AppState, text: &str, now_ms: u64) -> Result<u64, ApiError> {
    let field = "config.subscriptionExpireTime";
    let at = time_field(field, text)?;
    if at <= now_ms {
        return Err(ApiError::new(
            Code::OutOfRange,
            format!("{field} must be in the future."),
        ));
    }
    Ok(at.min(now_ms + state.config.events.max_expire_seconds * 1000))
}

/// A POST's body, checked for everything that needs no store and no DNS.
struct Checked {
    sink: String,
    types: Vec<EventType>,
    detail: Detail,
    credential: Option<AccessToken>,
    expires_at_ms: Option<u64>,
    max_events: Option<u32>,
    initial_event: Option<bool>,
}

fn check(state: &AppState, body: SubscribeBody, now_ms: u64) -> Result<Checked, ApiError> {
    let protocol = body
        .protocol
        .into_option()
        .ok_or_else(|| ApiError::invalid("protocol is required: HTTP."))?;
    if protocol != "HTTP" {
        return Err(ApiError::new(
            Code::InvalidProtocol,
            "Only HTTP is supported: protocol must be HTTP.",
        ));
    }
    let sink = body
        .sink
        .into_option()
        .ok_or_else(|| ApiError::invalid("sink is required."))?;
    state
        .sink_guard
        .check_form(&sink)
        .map_err(|e| ApiError::new(Code::InvalidSink, format!("sink {e}.")))?;
    let names = body
        .types
        .into_option()
        .ok_or_else(|| ApiError::invalid("types is required: 1 to 3 event types."))?;
    if !(1..=3).contains(&names.len()) {
        return Err(ApiError::invalid("types must list 1 to 3 event types."));
    }
    let prefix = &state.config.events.type_prefix;
    let mut types = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let known = EventType::from_full(prefix, name).ok_or_else(|| {
            ApiError::invalid(format!(
                "types[{i}] is not an event type of this API: {prefix}.session-invitation, .session-status or .registration-ends."
            ))
        })?;
        if types.contains(&known) {
            return Err(ApiError::invalid(format!("types[{i}] repeats a type.")));
        }
        types.push(known);
    }
    let config = body
        .config
        .into_option()
        .ok_or_else(|| ApiError::invalid("config is required, with config.subscriptionDetail."))?;
    let detail = config
        .subscription_detail
        .into_option()
        .ok_or_else(|| ApiError::invalid("config.subscriptionDetail is required."))?;
    let device = match detail.device_id.into_option() {
        Some(raw) => Some(uuid_key(&raw).ok_or_else(|| {
            ApiError::invalid(
                "config.subscriptionDetail.deviceId must be a UUID in its hyphenated form.",
            )
        })?),
        None => None,
    };
    let registration = detail.registration_id.into_option();
    if device.is_none() && registration.is_none() {
        return Err(ApiError::invalid(
            "config.subscriptionDetail needs registrationId or deviceId: whose events to send.",
        ));
    }
    let session_id = detail
        .session_id
        .into_option()
        .or(detail.media_session_id.into_option());
    let max_events = match config.subscription_max_events.into_option() {
        Some(n) if (1..=MAX_EVENTS).contains(&n) => u32::try_from(n).ok(),
        Some(_) => {
            return Err(ApiError::new(
                Code::OutOfRange,
                "config.subscriptionMaxEvents must be between 1 and 1000000.",
            ));
        }
        None => None,
    };
    let expires_at_ms = match config.subscription_expire_time.into_option() {
        Some(text) => Some(expiry(state, &text, now_ms)?),
        None => None,
    };
    let credential = match body.sink_credential.into_option() {
        Some(body) => Some(credential(body, now_ms)?),
        None => None,
    };
    Ok(Checked {
        sink,
        types,
        detail: Detail {
            registration_id: registration.map(|r| uuid_key(&r).unwrap_or(r)),
            device_id: device,
            session_id,
        },
        credential,
        expires_at_ms,
        max_events,
        initial_event: config.initial_event.into_option(),
    })
}

/// The phone numbers of the registrations `detail` names, each active and the caller's; 404
/// IDENTIFIER_NOT_FOUND when there are none.
async fn phone_numbers(
    state: &AppState,
    caller: &Caller,
    detail: &Detail,
    now_ms: u64,
) -> Result<Vec<String>, ApiError> {
    let mut numbers = Vec::new();
    if let Some(id) = &detail.registration_id {
        let found = state.registrations.registration(id, now_ms).await?;
        match found.filter(|r| owns(caller, r)) {
            Some(registration) => numbers.push(registration.phone_number),
            None => {
                return Err(ApiError::new(
                    Code::IdentifierNotFound,
                    "Device identifier not found: config.subscriptionDetail.registrationId is not an active registration of this API consumer.",
                ));
            }
        }
    } else if let Some(device) = &detail.device_id {
        let found = (state.registrations)
            .device_registrations(caller.consumer(), device, now_ms)
            .await?;
        numbers.extend(
            found
                .into_iter()
                .filter(|r| owns(caller, r))
                .map(|r| r.phone_number),
        );
        if numbers.is_empty() {
            return Err(ApiError::new(
                Code::IdentifierNotFound,
                "Device identifier not found: config.subscriptionDetail.deviceId has no active registration of this API consumer.",
            ));
        }
    }
    numbers.sort();
    numbers.dedup();
    Ok(numbers)
}

/// `POST /subscriptions`.
pub async fn subscribe(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
    OriginalUri(uri): OriginalUri,
    CamaraJson(body): CamaraJson<SubscribeBody>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let checked = check(&state, body, now)?;
    let names = Names(&state.config.events);
    let caller = authorized.peek();
    for event in &checked.types {
        require_scope(caller, &names.create_scope(*event))?;
    }
    let caller = authorized.caller()?;
    state
        .sink_guard
        .check(&checked.sink)
        .await
        .map_err(|e| ApiError::new(Code::InvalidSink, format!("sink {e}.")))?;
    let phone_numbers = phone_numbers(&state, &caller, &checked.detail, now).await?;
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        owner: caller.consumer().to_owned(),
        sink: checked.sink,
        types: checked.types,
        detail: checked.detail,
        phone_numbers,
        credential: checked.credential,
        starts_at_ms: now,
        expires_at_ms: checked.expires_at_ms,
        max_events: checked.max_events,
        initial_event: checked.initial_event,
        ended: None,
    };
    let max = state.config.events.max_subscriptions_per_consumer;
    (state.subscriptions)
        .subscribe(subscription.clone(), max, now)
        .await
        .map_err(|err| match err {
            StoreError::OwnerFull(max) => ApiError::new(
                Code::QuotaExceeded,
                format!("Out of resource quota: this API consumer holds its maximum of {max} subscriptions; delete one to create another."),
            ),
            StoreError::Full(max) => ApiError::new(
                Code::QuotaExceeded,
                format!("Out of resource quota: the service holds its maximum of {max} subscriptions."),
            ),
            other => other.into(),
        })?;
    tracing::info!(
        subscription = subscription.id.as_str(),
        types = subscription.types.len(),
        credential = subscription.credential.is_some(),
        "subscribed"
    );
    state.feed.publish_subscription(&subscription);
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), subscription.id);
    let location = HeaderValue::from_str(&location).map_err(|_| ApiError::plain(Code::Internal))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(SubscriptionResponse::new(&names, &subscription)),
    )
        .into_response())
}

/// `GET /subscriptions`: the caller's consumer's active subscriptions, oldest first.
pub async fn list(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
) -> Result<Response, ApiError> {
    let names = Names(&state.config.events);
    require_scope(authorized.peek(), &names.scope("read"))?;
    let caller = authorized.caller()?;
    let owned = state
        .subscriptions
        .owned(caller.consumer(), now_ms())
        .await?;
    let listed: Vec<SubscriptionResponse<'_>> = owned
        .iter()
        .map(|s| SubscriptionResponse::new(&names, s))
        .collect();
    Ok(Json(listed).into_response())
}

/// The subscription, if it is active and the caller's consumer's.
async fn load_owned(
    state: &AppState,
    caller: &Caller,
    id: &str,
    now_ms: u64,
) -> Result<Subscription, ApiError> {
    match state.subscriptions.subscription(id, now_ms).await? {
        Some(found) if found.owner == caller.consumer() => Ok(found),
        _ => Err(not_found()),
    }
}

/// `GET /subscriptions/{subscriptionId}`.
pub async fn read(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
    SubscriptionPath(id): SubscriptionPath,
) -> Result<Response, ApiError> {
    let names = Names(&state.config.events);
    require_scope(authorized.peek(), &names.scope("read"))?;
    let caller = authorized.caller()?;
    let found = load_owned(&state, &caller, &id, now_ms()).await?;
    Ok(Json(SubscriptionResponse::new(&names, &found)).into_response())
}

/// `PUT /subscriptions/{subscriptionId}`: a new sink credential and/or expiry.
pub async fn change(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
    SubscriptionPath(id): SubscriptionPath,
    OptionalJson(body): OptionalJson<ChangeBody>,
) -> Result<Response, ApiError> {
    let names = Names(&state.config.events);
    require_scope(authorized.peek(), &names.scope("update"))?;
    let now = now_ms();
    let change = SubscriptionChange {
        credential: match body.sink_credential.into_option() {
            Some(body) => Some(credential(body, now)?),
            None => None,
        },
        expires_at_ms: match body
            .config
            .into_option()
            .and_then(|c| c.subscription_expire_time.into_option())
        {
            Some(text) => Some(expiry(&state, &text, now)?),
            None => None,
        },
    };
    let caller = authorized.caller()?;
    load_owned(&state, &caller, &id, now).await?;
    let changed = (state.subscriptions.change(&id, change, now).await).map_err(gone)?;
    tracing::info!(subscription = id.as_str(), "subscription updated");
    state.feed.publish_subscription(&changed);
    Ok(Json(SubscriptionResponse::new(&names, &changed)).into_response())
}

/// `DELETE /subscriptions/{subscriptionId}`: it ends now.
pub async fn unsubscribe(
    State(state): State<AppState>,
    authorized: Authorized<ScopeInHandler>,
    SubscriptionPath(id): SubscriptionPath,
) -> Result<Response, ApiError> {
    let names = Names(&state.config.events);
    require_scope(authorized.peek(), &names.scope("delete"))?;
    let caller = authorized.caller()?;
    let now = now_ms();
    load_owned(&state, &caller, &id, now).await?;
    (state.subscriptions.unsubscribe(&id, now).await).map_err(gone)?;
    tracing::info!(subscription = id.as_str(), "subscription deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A subscription that ended between its read and the write: 404.
fn gone(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => not_found(),
        StoreError::VersionConflict { .. } => ApiError::plain(Code::Aborted),
        other => other.into(),
    }
}
