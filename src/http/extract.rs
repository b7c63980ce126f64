//! Extractors that turn a request into checked values, or into a CAMARA error — never axum's own
//! plain-text rejections. Their order in a handler's signature is the order of the checks:
//! 401 (token) → 429 (rate) → 403 (scope) in [`Authorized`], then the path and headers, then
//! 413/415/400 (body) in [`CamaraJson`]; the handler then takes the caller (404 for a subscriber
//! not on the list) with [`Authorized::caller`].

use std::marker::PhantomData;

use axum::body::HttpBody;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::AppState;
use super::error::{ApiError, Code};
use super::middleware::RequestLog;
use crate::auth::{Caller, Scope};
use crate::domain::SessionId;
use crate::domain::session::MAX_ID_LEN;

/// The scope an operation needs, as a type, so the handler's signature shows it; `None` for an
/// operation whose scope depends on the configuration or the request (the events API), which
/// its handler checks with [`require_scope`].
pub trait Operation: Send + Sync + 'static {
    const SCOPE: Option<Scope>;
}

macro_rules! operation {
    ($name:ident, $scope:ident) => {
        #[doc = concat!("Marker for the `", stringify!($scope), "` scope.")]
        pub struct $name;
        impl Operation for $name {
            const SCOPE: Option<Scope> = Some(Scope::$scope);
        }
    };
}

/// Marker for an operation whose handler checks its scope itself ([`require_scope`]).
pub struct ScopeInHandler;
impl Operation for ScopeInHandler {
    const SCOPE: Option<Scope> = None;
}

/// 403 PERMISSION_DENIED unless `caller` holds `scope`.
pub fn require_scope(caller: &Caller, scope: &str) -> Result<(), ApiError> {
    if caller.has_scope_named(scope) {
        return Ok(());
    }
    tracing::info!(scope, "scope missing");
    Err(ApiError::new(
        Code::PermissionDenied,
        format!(
            "Client does not have sufficient permissions to perform this action: the access token lacks the scope {scope}."
        ),
    ))
}
operation!(CreateOp, Create);
operation!(ReadOp, Read);
operation!(WriteOp, Write);
operation!(DeleteOp, Delete);
operation!(NetworkOp, Network);
operation!(RegisterOp, RegistrationCreate);
operation!(ReadRegistrationOp, RegistrationRead);
operation!(RefreshOp, RegistrationWrite);
operation!(UnregisterOp, RegistrationDelete);

/// A caller with a valid token that grants the operation's scope and is within its rate limit;
/// its consumer goes on the request's log line. The handler gets the [`Caller`] only through
/// [`Authorized::caller`], which applies the subscriber list, so no handler can skip it.
pub struct Authorized<O> {
    caller: Caller,
    /// Whether the caller may use the API under `auth.subscribers`.
    listed: bool,
    operation: PhantomData<O>,
}

impl<O> Authorized<O> {
    /// The caller before the subscriber list is applied, for checks DESIGN §5 makes before it
    /// (a scope that depends on the request).
    pub fn peek(&self) -> &Caller {
        &self.caller
    }

    /// The caller, or 404 IDENTIFIER_NOT_FOUND when `auth.subscribers` is configured and a
    /// 3-legged token's subscriber is not on it. DESIGN §5 answers that 404 after the request's
    /// own 400s, so a handler asks once it has checked its path and body.
    pub fn caller(self) -> Result<Caller, ApiError> {
        if self.listed {
            Ok(self.caller)
        } else {
            Err(ApiError::plain(Code::IdentifierNotFound))
        }
    }
}

impl<O: Operation> FromRequestParts<AppState> for Authorized<O> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = state
            .verifier
            .authenticate(parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
            .await
            .map_err(|err| {
                tracing::info!(reason = err.reason(), "authentication failed");
                crate::telemetry::metrics::auth_failure(err.reason());
                ApiError::from(err)
            })?;
        let caller = Caller::from_claims(claims);
        if let Some(log) = parts.extensions.get::<RequestLog>() {
            log.caller(&caller);
        }
        state.check_rate(caller.consumer())?;
        if let Some(scope) = O::SCOPE {
            require_scope(&caller, scope.as_str())?;
        }
        let listed = caller
            .subscriber
            .as_ref()
            .is_none_or(|sub| state.subscriber_known(sub));
        Ok(Self {
            caller,
            listed,
            operation: PhantomData,
        })
    }
}

/// The value of a route's one path parameter, `name`, as text (else 400).
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let not_text = || ApiError::invalid(format!("{name} in the path is not valid UTF-8 text."));
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| not_text())?;
    let (_, raw) = params.iter().next().ok_or_else(not_text)?;
    Ok(raw.to_owned())
}

/// The `{mediaSessionId}` path parameter, checked.
pub struct SessionPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_param(parts, state, "mediaSessionId").await?;
        SessionId::parse(raw)
            .map(Self)
            .map_err(|e| ApiError::invalid(format!("mediaSessionId {e}.")))
    }
}

/// The `{registrationId}` path parameter (see [`resource_id`]).
pub struct RegistrationPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RegistrationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        resource_id(parts, state, "registrationId").await.map(Self)
    }
}

/// The `{subscriptionId}` path parameter (see [`resource_id`]).
pub struct SubscriptionPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        resource_id(parts, state, "subscriptionId").await.map(Self)
    }
}

/// A path parameter naming a resource the service made: 1 to 256 characters. The service's ids
/// are UUIDs, lower-cased here, so any case names the same one (RFC 9562); any other id is
/// simply not found.
async fn resource_id<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let raw = path_param(parts, state, name).await?;
    if raw.is_empty() || raw.chars().count() > MAX_ID_LEN {
        return Err(ApiError::invalid(format!(
            "{name} in the path must be 1 to 256 characters."
        )));
    }
    Ok(crate::domain::registration::uuid_key(&raw).unwrap_or(raw))
}

/// The `registrationId` header of `POST /sessions`: required, 1 to 256 visible ASCII characters
/// (`!` to `~`, 0x21–0x7E); a space, a tab, a control character or any non-ASCII byte is refused.
pub struct RegistrationId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RegistrationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get("registrationId")
            .ok_or_else(|| ApiError::invalid("The registrationId header is required."))?;
        let value = value
            .to_str()
            .ok()
            .filter(|v| {
                (1..=MAX_ID_LEN).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid(
                    "The registrationId header must be 1 to 256 visible ASCII characters.",
                )
            })?;
        Ok(Self(value.to_owned()))
    }
}

/// A JSON object body read into `T`. The content type must be `application/json` (any
/// parameters, and `+json` types), or absent, or curl's default form type, as the seed's own curl
/// example sends (else 415); at most `server.max_body_bytes` (else 413); not empty, valid JSON,
/// an object, and of `T`'s shape (else 400 naming the field by its path, e.g.
/// `receiverSessionStatus.answer.sdp`).
pub struct CamaraJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CamaraJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        parse(&read_body(req, state).await?).map(Self)
    }
}

/// [`CamaraJson`] for an optional body (`PUT /sessions/{registrationId}`): an empty body, or
/// only whitespace, is `T::default()`, whatever its content type says.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json_type = content_type_ok(req.headers());
        let bytes = read_limited(req, state).await?;
        if bytes.trim_ascii().is_empty() {
            return Ok(Self(T::default()));
        }
        if !json_type {
            return Err(unsupported_media_type());
        }
        parse(&bytes).map(Self)
    }
}

/// A request's body, if its content type may carry JSON (else 415) and it is within
/// `server.max_body_bytes` (else 413).
async fn read_body(req: Request, state: &AppState) -> Result<axum::body::Bytes, ApiError> {
    if !content_type_ok(req.headers()) {
        return Err(unsupported_media_type());
    }
    read_limited(req, state).await
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        Code::UnsupportedMediaType,
        "The server refuses to accept the request because the payload format is in an unsupported format: Content-Type must be application/json.",
    )
}

/// A request's body, if it is within `server.max_body_bytes` (else 413).
async fn read_limited(req: Request, state: &AppState) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.server.max_body_bytes;
    let body = req.into_body();
    // A body that declares more (Content-Length) is refused before it is read.
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::plain(Code::ContentTooLarge));
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        match err.into_inner().is::<http_body_util::LengthLimitError>() {
            true => ApiError::plain(Code::ContentTooLarge),
            false => ApiError::invalid("The request body could not be read."),
        }
    })
}

/// Reads a JSON object body into `T`, or says what is wrong with it. The whole body must be
/// UTF-8 (serde_json skips the strings of fields a DTO ignores without checking them); it is
/// checked once, and serde_json then reads it as text.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().is_empty() {
        return Err(ApiError::invalid("A JSON request body is required."));
    }
    let object = std::str::from_utf8(bytes)
        .ok()
        .filter(|text| text.trim_ascii_start().starts_with('{'));
    let Some(text) = object else {
        // Not UTF-8, or not an object: say whether it is JSON at all.
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::invalid("The request body must be a JSON object."),
            Err(e) => not_json(&e),
        });
    };
    serde_json::from_str(text).map_err(|_| explain::<T>(text))
}

/// Why `text` is not a `T`: read again, with the path of every value tracked, so the message
/// names the field at fault. Only a refused body pays for the tracking.
fn explain<T: DeserializeOwned>(text: &str) -> ApiError {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
        .map_err(|err| (err.path().to_string(), err.into_inner()))
        .and_then(|_| deserializer.end().map_err(|err| (String::new(), err)));
    let Err((path, err)) = read else {
        return ApiError::invalid("The request body is not valid.");
    };
    if !err.is_data() && serde_json::from_str::<IgnoredAny>(text).is_err() {
        return not_json(&err);
    }
    let field = match path.as_str() {
        "." | "?" | "" => "The request body",
        path => path,
    };
    field_error(field, &err)
}

/// 400 for a value at `field` that serde refused: its message, without the client's strings.
pub fn field_error(field: &str, err: &serde_json::Error) -> ApiError {
    let message = without_position(err);
    // serde_json reports a non-string where a name (an enum) belongs as a syntax error.
    let message = match message.as_str() {
        "expected value" => "invalid type, expected a string".to_owned(),
        _ => without_strings(&message),
    };
    ApiError::invalid(format!("{field}: {message}."))
}

fn not_json(err: &serde_json::Error) -> ApiError {
    ApiError::invalid(format!("The request body is not valid JSON: {err}."))
}

/// A data error's message without serde_json's ` at line L column C`, which a field path replaces.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    message
        .strip_suffix(&position)
        .map_or(message.clone(), str::to_owned)
}

/// serde's message without the string the client sent (`invalid type: string "…", expected …`,
/// `unknown variant `…`, expected …`): a wrong value may be an SDP, which is never answered.
fn without_strings(message: &str) -> String {
    let Some((found, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let found = [
        "invalid type: string",
        "invalid value: string",
        "unknown variant",
    ]
    .into_iter()
    .find(|kind| found.starts_with(kind))
    .unwrap_or(found);
    format!("{found}, expected {expected}")
}

/// Whether the request's `Content-Type` is one a JSON body may come with (see [`CamaraJson`]).
fn content_type_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return !headers.contains_key(CONTENT_TYPE);
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || subtype == "x-www-form-urlencoded" || subtype.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_repeat_a_string_the_client_sent() {
        for (serde, answered) in [
            (
                "invalid type: string \"v=0\\r\\na=ice-pwd:secret, expected x\", expected an object",
                "invalid type: string, expected an object",
            ),
            (
                "unknown variant `a=crypto:1 inline:key`, expected `Circle` or `Ellipsoid`",
                "unknown variant, expected `Circle` or `Ellipsoid`",
            ),
            (
                "invalid type: integer `5`, expected a string",
                "invalid type: integer `5`, expected a string",
            ),
            ("missing field `sdp`", "missing field `sdp`"),
        ] {
            assert_eq!(without_strings(serde), answered);
        }
    }

    #[test]
    fn json_media_types_match_case_insensitively_without_their_parameters() {
        let accepted = [
            "application/json",
            " Application/JSON ; charset=utf-8",
            "application/merge-patch+json",
            "application/PROBLEM+JSON",
            "application/x-www-form-urlencoded",
        ];
        let refused = [
            "text/plain",
            "application",
            "application/",
            "application/jsonx",
            "applicationx/json",
            "text/json",
            "application/json/x",
            "application/xjson",
            "application/é+jsoné",
            "application/é+json",
            "applicationé/json",
        ];
        for (types, expected) in [(&accepted[..], true), (&refused[..], false)] {
            for content_type in types {
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
                assert_eq!(content_type_ok(&headers), expected, "{content_type}");
            }
        }
        assert!(content_type_ok(&HeaderMap::new()));
    }
}
