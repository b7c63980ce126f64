//! The registration API (CAMARA webrtc-registration, `/sessions` under every
//! `registration.base_paths` entry): a device registers at a phone number, refreshes, is read,
//! listed by device and deleted. Under a `v0.3` base path the answers are the released r2.2
//! document's (POST 200, PUT 204), under any other the current draft's (POST 201, PUT 200 with
//! the registration); both share one set of registrations (DESIGN §10).

mod handlers;

use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Extension, Router};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::{AppState, Route, router_of};
use crate::auth::Caller;
use crate::config::RegistrationConfig;
use crate::domain::{ExpiryError, Lifetimes, Registration};

/// The API's operations, in the order of its OpenAPI document.
pub static ROUTES: [Route; 5] = [
    Route::new(Method::GET, "/sessions", || get(handlers::list)),
    Route::new(Method::POST, "/sessions", || post(handlers::register)),
    Route::new(Method::GET, "/sessions/{registrationId}", || {
        get(handlers::read)
    }),
    Route::new(Method::PUT, "/sessions/{registrationId}", || {
        put(handlers::refresh)
    }),
    Route::new(Method::DELETE, "/sessions/{registrationId}", || {
        delete(handlers::unregister)
    }),
];

/// Which document a base path answers as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The released r2.2 document (v0.3.0): POST 200, PUT 204.
    Released,
    /// The current draft: POST 201 with `Location`, PUT 200 with the registration.
    Draft,
}

impl Flavor {
    /// A base path whose last segment is `v0.3` answers as the release; any other as the draft.
    pub fn of(base: &str) -> Self {
        if base.rsplit('/').next() == Some("v0.3") {
            Flavor::Released
        } else {
            Flavor::Draft
        }
    }
}

/// The operations under `base`, each knowing its [`Flavor`], plus 400 for `PUT`/`DELETE
/// /sessions` (no id: CAMARA's feature files want 400, not 405).
pub fn router(base: &str) -> Router<AppState> {
    router_of(base, &ROUTES)
        .route(
            &format!("{base}/sessions"),
            MethodRouter::new().fallback(collection_other_method),
        )
        .layer(Extension(Flavor::of(base)))
}

/// Methods `/sessions` has no operation for: PUT and DELETE there lack an id (400); anything
/// else is 405, `Allow` listing the real operations.
async fn collection_other_method(method: Method) -> Response {
    super::collection_other_method(&method, missing_id_error)
}

/// The error for a route that needs a `registrationId` and got none.
pub fn missing_id_error() -> ApiError {
    ApiError::invalid("registrationId is missing from the path: use /sessions/{registrationId}.")
}

/// The operator's lifetimes, from `[registration]`.
pub fn lifetimes(config: &RegistrationConfig) -> Lifetimes {
    Lifetimes {
        default_seconds: config.default_ttl_seconds,
        min_seconds: config.min_ttl_seconds,
        max_seconds: config.max_ttl_seconds,
    }
}

/// The expiry that holds for `requested` (a `registrationExpireTime`) at `now_ms`, or the 400
/// naming the field.
pub fn expiry(state: &AppState, now_ms: u64, requested: Option<&str>) -> Result<u64, ApiError> {
    lifetimes(&state.config.registration)
        .expiry(now_ms, requested)
        .map_err(|e| {
            let code = match e {
                ExpiryError::TooSoon { .. } => Code::OutOfRange,
                ExpiryError::NotRfc3339 | ExpiryError::TooLong => Code::InvalidArgument,
            };
            ApiError::new(code, format!("registrationExpireTime {e}."))
        })
}

/// The registration, if it exists for this caller: active, of the caller's API consumer, and
/// (3-legged) at the caller's phone number. Anything else is 404 NOT_FOUND.
pub async fn load_owned(
    state: &AppState,
    caller: &Caller,
    id: &str,
    now_ms: u64,
) -> Result<Registration, ApiError> {
    match state.registrations.registration(id, now_ms).await? {
        Some(found) if owns(caller, &found) => Ok(found),
        _ => Err(not_found()),
    }
}

/// 404 for a registration that is not there for the caller: never was, expired, deleted, or
/// someone else's.
pub fn not_found() -> ApiError {
    ApiError::new(
        Code::NotFound,
        "The specified resource is not found: no active registration with this registrationId.",
    )
}

/// Whether `caller` may see `registration`: its consumer's, and at its number when 3-legged.
pub fn owns(caller: &Caller, registration: &Registration) -> bool {
    registration.owner == caller.consumer()
        && caller
            .phone_number()
            .is_none_or(|number| number == registration.phone_number)
}

/// CAMARA's `RegSessionResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse<'a> {
    registration_id: &'a str,
    reg_info: RegInfo<'a>,
    expires_at: String,
}

/// CAMARA's `RegistrationInformation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RegInfo<'a> {
    phone_number: &'a str,
    reg_status: &'static str,
}

impl<'a> From<&'a Registration> for RegistrationResponse<'a> {
    fn from(r: &'a Registration) -> Self {
        Self {
            registration_id: &r.id,
            reg_info: RegInfo {
                phone_number: &r.phone_number,
                reg_status: "Registered",
            },
            expires_at: r.expires_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_segment_v0_3_answers_as_the_release() {
        assert_eq!(Flavor::of("/webrtc-registration/v0.3"), Flavor::Released);
        assert_eq!(Flavor::of("/v0.3"), Flavor::Released);
        assert_eq!(Flavor::of("/webrtc-registration/vwip"), Flavor::Draft);
        assert_eq!(Flavor::of("/webrtc-registration/v0.3.1"), Flavor::Draft);
        assert_eq!(Flavor::of("/v0.3/registration"), Flavor::Draft);
    }

    #[test]
    fn a_registration_is_written_in_the_documents_shape() {
        let registration = Registration {
            id: "a1b2".into(),
            device_id: "7d444840-9dc0-11d1-b245-5ffdce74fad2".into(),
            phone_number: "+17085854000".into(),
            owner: "app".into(),
            expires_at_ms: 1_796_299_200_358,
            proven: true,
            ended: None,
        };
        assert_eq!(
            serde_json::to_string(&RegistrationResponse::from(&registration)).unwrap(),
            r#"{"registrationId":"a1b2","regInfo":{"phoneNumber":"+17085854000","regStatus":"Registered"},"expiresAt":"2026-12-03T12:00:00.358Z"}"#
        );
    }
}
