//! Extractors that turn a request into checked values, or into a CAMARA error — never axum's own
//! plain-text rejections. Their order in a handler's signature is the order of the checks:
//! 401 (token) → 403 (scope) → 413/415/400 (body) in [`Authorized`] then [`JsonBody`].

use std::marker::PhantomData;

use axum::body::{Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::AppState;
use super::error::{ApiError, Code};
use crate::auth::{Caller, Scope};
use crate::domain::SessionId;
use crate::domain::session::MAX_ID_LEN;

/// The scope an operation needs, as a type, so the handler's signature shows it.
pub trait Operation: Send + Sync + 'static {
    const SCOPE: Scope;
}

macro_rules! operation {
    ($name:ident, $scope:ident) => {
        #[doc = concat!("Marker for the `", stringify!($scope), "` scope.")]
        pub struct $name;
        impl Operation for $name {
            const SCOPE: Scope = Scope::$scope;
        }
    };
}
operation!(CreateOp, Create);
operation!(ReadOp, Read);
operation!(WriteOp, Write);
operation!(DeleteOp, Delete);

/// A caller with a valid token that grants the operation's scope.
pub struct Authorized<O>(pub Caller, pub PhantomData<O>);

impl<O: Operation> FromRequestParts<AppState> for Authorized<O> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = state
            .verifier
            .verify_header(parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes()))
            .map_err(|err| {
                tracing::info!(reason = err.reason(), "authentication failed");
                super::metrics::auth_failure(err.reason());
                ApiError::from(err)
            })?;
        let caller = Caller::from_claims(claims);
        super::middleware::record_caller(&caller);
        state.limits.check_rate(caller.consumer())?;
        if !caller.has_scope(O::SCOPE) {
            tracing::info!(scope = O::SCOPE.as_str(), "scope missing");
            return Err(ApiError::new(
                Code::PermissionDenied,
                format!(
                    "Client does not have sufficient permissions to perform this action: the access token lacks the scope {}.",
                    O::SCOPE.as_str()
                ),
            ));
        }
        Ok(Self(caller, PhantomData))
    }
}

/// The `{mediaSessionId}` path parameter, checked.
pub struct SessionPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The raw (percent-decoded) parameter: no deserializer, no intermediate String.
        let not_text = || ApiError::invalid("mediaSessionId in the path is not valid UTF-8 text.");
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_text())?;
        let (_, raw) = params.iter().next().ok_or_else(not_text)?;
        SessionId::parse(raw)
            .map(Self)
            .map_err(|e| ApiError::invalid(format!("mediaSessionId {e}.")))
    }
}

/// The `registrationId` header of `POST /sessions`: required, at most 256 characters.
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
            .filter(|v| !v.is_empty() && v.len() <= MAX_ID_LEN)
            .ok_or_else(|| {
                ApiError::invalid(
                    "The registrationId header must be 1 to 256 visible ASCII characters.",
                )
            })?;
        Ok(Self(value.to_owned()))
    }
}

/// A request body sent as `application/json` (or `+json`), or with no `Content-Type` or curl's
/// default form type, as the seed's own curl example does; not empty. [`json_object`] reads it.
pub struct JsonBody(pub Bytes);

/// The body as a JSON object, or a 400 that says why it is not one.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("The request body must be a JSON object.")),
        Err(e) => Err(ApiError::invalid(format!(
            "The request body is not valid JSON: {e}."
        ))),
    }
}

fn content_type_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return true;
    };
    // Read as bytes: the media type before any parameter, without its spaces, ASCII only.
    let value = value.as_bytes();
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if !essence.is_ascii() {
        return false;
    }
    // Media types are case-insensitive; compared without lowercasing a copy.
    let (kind, subtype) = match essence.iter().position(|&b| b == b'/') {
        Some(slash) => (&essence[..slash], &essence[slash + 1..]),
        None => (essence, &b""[..]),
    };
    kind.eq_ignore_ascii_case(b"application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || subtype.eq_ignore_ascii_case(b"x-www-form-urlencoded")
            || subtype
                .get(subtype.len().saturating_sub(5)..)
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case(b"+json")))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    /// Reads at most `server.max_body_bytes` (413 beyond). The limit is applied here rather than
    /// by axum's `DefaultBodyLimit` layer, which stored it in every request's extensions.
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !content_type_ok(req.headers()) {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "The server refuses to accept the request because the payload format is in an unsupported format: Content-Type must be application/json.",
            ));
        }
        let limit = state.config.server.max_body_bytes;
        let mut body = req.into_body();
        // A body that declares more (Content-Length) is refused before it is read.
        if body.size_hint().lower() > limit as u64 {
            return Err(ApiError::plain(Code::ContentTooLarge));
        }
        // A body that arrives in one piece, as hyper hands over one it has already buffered, is
        // kept without a copy; pieces are joined.
        let (mut first, mut joined, mut len) = (Bytes::new(), None::<Vec<u8>>, 0);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| ApiError::invalid("The request body could not be read."))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            len += data.len();
            if len > limit {
                return Err(ApiError::plain(Code::ContentTooLarge));
            }
            match &mut joined {
                Some(joined) => joined.extend_from_slice(&data),
                None if first.is_empty() => first = data,
                None => joined = Some([&first[..], &data[..]].concat()),
            }
        }
        let bytes = joined.map_or(first, Bytes::from);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("A JSON request body is required."));
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
