//! The five operations. Checks in DESIGN §5's order: 401 → 429 rate → 403 scope (the
//! [`Authorized`] extractor) → 400 (path, query, body) → 404 subscriber list → 422 phone number
//! rule → 404 ownership → 409/403/429 from the store.

use axum::Extension;
use axum::Json;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Flavor, RegistrationResponse, expiry, load_owned};
use crate::auth::Caller;
use crate::domain::registration::{phone_number, uuid_key};
use crate::domain::{Address, Present, Registration};
use crate::http::AppState;
use crate::http::error::{ApiError, Code};
use crate::http::extract::{
    Authorized, CamaraJson, OptionalJson, ReadRegistrationOp, RefreshOp, RegisterOp,
    RegistrationPath, UnregisterOp,
};
use crate::store::{StoreError, now_ms};

/// CAMARA's `RegSessionRequest`, with the draft's `phoneNumber` for 2-legged tokens. Unknown
/// fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct RegisterBody {
    device_id: Present<String>,
    registration_expire_time: Present<String>,
    phone_number: Present<String>,
}

/// CAMARA's `RegSessionUpdate`; the whole body is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "an object")]
pub struct RefreshBody {
    registration_expire_time: Present<String>,
}

/// The query of `GET /sessions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    device_id: Option<String>,
}

/// `deviceId` as the key it is stored under, or 400 naming `field`.
fn checked_device(field: &str, raw: &str) -> Result<String, ApiError> {
    uuid_key(raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field} must be a UUID in its hyphenated form, e.g. 7d444840-9dc0-11d1-b245-5ffdce74fad2."
        ))
    })
}

/// The phone number the registration is for: a 3-legged token's own (sending one is 422
/// UNNECESSARY_IDENTIFIER), or the body's `phoneNumber` for a 2-legged token (422
/// MISSING_IDENTIFIER without one).
fn registered_number(caller: &Caller, sent: Option<String>) -> Result<String, ApiError> {
    match (caller.phone_number(), sent) {
        (Some(_), Some(_)) => Err(ApiError::new(
            Code::UnnecessaryIdentifier,
            "The phone number is already identified by the access token: phoneNumber must not be sent with a 3-legged token.",
        )),
        (Some(own), None) => Ok(own.to_owned()),
        (None, Some(sent)) => Ok(sent),
        (None, None) => Err(ApiError::new(
            Code::MissingIdentifier,
            "The phone number cannot be identified: a 2-legged access token must send phoneNumber (+E.164).",
        )),
    }
}

/// `POST /sessions`: a new registration of the caller's device at its phone number.
pub async fn register(
    State(state): State<AppState>,
    Extension(flavor): Extension<Flavor>,
    authorized: Authorized<RegisterOp>,
    OriginalUri(uri): OriginalUri,
    CamaraJson(body): CamaraJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let device = body
        .device_id
        .into_option()
        .ok_or_else(|| ApiError::invalid("deviceId is required."))?;
    let device = checked_device("deviceId", &device)?;
    let now = now_ms();
    let expires_at_ms = expiry(&state, now, body.registration_expire_time.as_deref())?;
    let sent_number = body.phone_number.into_option();
    if let Some(sent) = &sent_number
        && phone_number(sent).is_none()
    {
        return Err(ApiError::invalid(
            "phoneNumber must be +E.164: a '+' and 5 to 15 digits, not starting with 0.",
        ));
    }
    let caller = authorized.caller()?;
    let two_legged = sent_number.is_some();
    let number = registered_number(&caller, sent_number)?;
    // A 2-legged number is held to `auth.subscribers` as a 3-legged token's subscriber is.
    if two_legged
        && !Address::from_phone_number(&number).is_some_and(|n| state.subscriber_known(&n))
    {
        return Err(ApiError::plain(Code::IdentifierNotFound));
    }
    let registration = Registration {
        id: uuid::Uuid::new_v4().to_string(),
        device_id: device,
        phone_number: number,
        owner: caller.consumer().to_owned(),
        expires_at_ms,
        // Only a 3-legged token proves the number is the device's (`auth.subscribers` says
        // which numbers are served, not which consumer holds one).
        proven: !two_legged,
        ended: None,
    };
    let max_per_number = state.config.registration.max_per_phone_number;
    state
        .registrations
        .register(registration.clone(), max_per_number, now)
        .await
        .map_err(|err| match err {
            StoreError::AlreadyExists if two_legged => ApiError::new(
                Code::AlreadyExists,
                "An active registration already exists for the supplied deviceId and phoneNumber.",
            ),
            StoreError::AlreadyExists => ApiError::new(
                Code::AlreadyExists,
                "An active registration already exists for the supplied deviceId and the phoneNumber resolved from the access token.",
            ),
            StoreError::Full(max) => ApiError::new(
                Code::QuotaExceeded,
                format!("Out of resource quota: the service holds its maximum of {max} registrations."),
            ),
            StoreError::OwnerFull(max) => ApiError::new(
                Code::QuotaExceeded,
                format!("Out of resource quota: this API consumer holds its maximum of {max} registrations; delete one to create another."),
            ),
            other => other.into(),
        })?;
    tracing::info!(
        registration = registration.id.as_str(),
        expires_at_ms,
        "device registered"
    );
    state.feed.publish_registration(&registration);
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), registration.id);
    let location = HeaderValue::from_str(&location).map_err(|_| ApiError::plain(Code::Internal))?;
    let status = match flavor {
        Flavor::Released => StatusCode::OK,
        Flavor::Draft => StatusCode::CREATED,
    };
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(RegistrationResponse::from(&registration)),
    )
        .into_response())
}

/// `GET /sessions?deviceId=`: the caller's active registrations of the device (at its own
/// number when 3-legged), soonest expiry first, at most 10 (the document's `maxItems`).
pub async fn list(
    State(state): State<AppState>,
    authorized: Authorized<ReadRegistrationOp>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query = Query::<ListQuery>::try_from_uri(&uri)
        .map_err(|_| ApiError::invalid("The query is not valid: give deviceId once."))?;
    let device = query
        .0
        .device_id
        .ok_or_else(|| ApiError::invalid("deviceId is required as a query parameter."))?;
    let device = checked_device("deviceId", &device)?;
    let caller = authorized.caller()?;
    let found = state
        .registrations
        .device_registrations(caller.consumer(), &device, now_ms())
        .await?;
    let listed: Vec<RegistrationResponse<'_>> = found
        .iter()
        .filter(|r| super::owns(&caller, r))
        .take(MAX_LISTED)
        .map(RegistrationResponse::from)
        .collect();
    Ok(Json(listed).into_response())
}

/// The most registrations `GET /sessions?deviceId=` answers (the document's `maxItems`).
const MAX_LISTED: usize = 10;

/// `GET /sessions/{registrationId}`.
pub async fn read(
    State(state): State<AppState>,
    authorized: Authorized<ReadRegistrationOp>,
    RegistrationPath(id): RegistrationPath,
) -> Result<Response, ApiError> {
    let caller = authorized.caller()?;
    let found = load_owned(&state, &caller, &id, now_ms()).await?;
    Ok(Json(RegistrationResponse::from(&found)).into_response())
}

/// `PUT /sessions/{registrationId}`: a new expiry, the requested one or the default lifetime
/// from now.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(flavor): Extension<Flavor>,
    authorized: Authorized<RefreshOp>,
    RegistrationPath(id): RegistrationPath,
    OptionalJson(body): OptionalJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let expires_at_ms = expiry(&state, now, body.registration_expire_time.as_deref())?;
    let caller = authorized.caller()?;
    load_owned(&state, &caller, &id, now).await?;
    let refreshed = state
        .registrations
        .refresh(&id, expires_at_ms, now)
        .await
        .map_err(gone)?;
    tracing::info!(
        registration = id.as_str(),
        expires_at_ms,
        "registration refreshed"
    );
    state.feed.publish_registration(&refreshed);
    Ok(match flavor {
        Flavor::Released => StatusCode::NO_CONTENT.into_response(),
        Flavor::Draft => Json(RegistrationResponse::from(&refreshed)).into_response(),
    })
}

/// `DELETE /sessions/{registrationId}`: the registration ends now.
pub async fn unregister(
    State(state): State<AppState>,
    authorized: Authorized<UnregisterOp>,
    RegistrationPath(id): RegistrationPath,
) -> Result<Response, ApiError> {
    let caller = authorized.caller()?;
    let now = now_ms();
    load_owned(&state, &caller, &id, now).await?;
    state
        .registrations
        .unregister(&id, now)
        .await
        .map_err(gone)?;
    crate::telemetry::metrics::registration_ended("DELETED");
    tracing::info!(registration = id.as_str(), "registration deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A registration that ended between its read and the write (expired, deleted): 404.
fn gone(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => super::not_found(),
        other => other.into(),
    }
}
