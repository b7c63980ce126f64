//! The one error type at the edge and the one table of CAMARA codes. Every non-2xx response the
//! service gives is an [`ApiError`] rendered as CAMARA's `{"status", "code", "message"}`.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::domain::{AccessError, LocationError, TransitionError};
use crate::store::StoreError;

/// CAMARA error codes (`CAMARA_common.yaml`), each with its HTTP status and default message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    OutOfRange,
    Unauthenticated,
    PermissionDenied,
    InvalidTokenContext,
    NotFound,
    IdentifierNotFound,
    MethodNotAllowed,
    NotAcceptable,
    Aborted,
    Conflict,
    IncompatibleState,
    ContentTooLarge,
    UnsupportedMediaType,
    QuotaExceeded,
    TooManyRequests,
    Internal,
    NotImplemented,
    CallTypeEmergencyNotSupported,
    Unavailable,
    Timeout,
    AlreadyExists,
    MaxRegistrationPerMsisdn,
    MissingIdentifier,
    UnnecessaryIdentifier,
    InvalidProtocol,
    InvalidSink,
    InvalidCredential,
    InvalidToken,
}

impl Code {
    /// The table: code → (HTTP status, code string, CAMARA's default message).
    pub const fn entry(self) -> (StatusCode, &'static str, &'static str) {
        use Code::*;
        match self {
            InvalidArgument => (
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Client specified an invalid argument, request body or query param.",
            ),
            OutOfRange => (
                StatusCode::BAD_REQUEST,
                "OUT_OF_RANGE",
                "Client specified an invalid range.",
            ),
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required.",
            ),
            PermissionDenied => (
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Client does not have sufficient permissions to perform this action.",
            ),
            InvalidTokenContext => (
                StatusCode::FORBIDDEN,
                "INVALID_TOKEN_CONTEXT",
                "originator info is not consistent with access token.",
            ),
            NotFound => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The specified resource is not found.",
            ),
            IdentifierNotFound => (
                StatusCode::NOT_FOUND,
                "IDENTIFIER_NOT_FOUND",
                "Device identifier not found.",
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "The requested method is not allowed/supported on the target resource.",
            ),
            NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                "NOT_ACCEPTABLE",
                "The server cannot produce a response matching the content requested by the client through `Accept-*` headers.",
            ),
            Aborted => (
                StatusCode::CONFLICT,
                "ABORTED",
                "Resource is being modified by another operation. Please wait, and retry if appropriate.",
            ),
            Conflict => (
                StatusCode::CONFLICT,
                "CONFLICT",
                "A specified resource duplicate entry found.",
            ),
            IncompatibleState => (
                StatusCode::CONFLICT,
                "INCOMPATIBLE_STATE",
                "The session is not in a state that allows this change.",
            ),
            ContentTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "CONTENT_TOO_LARGE",
                "The request body is larger than the server accepts.",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "The server refuses to accept the request because the payload format is in an unsupported format.",
            ),
            QuotaExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "QUOTA_EXCEEDED",
                "Out of resource quota.",
            ),
            TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "Rate limit reached.",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "Unknown server error. Typically a server bug.",
            ),
            NotImplemented => (
                StatusCode::NOT_IMPLEMENTED,
                "NOT_IMPLEMENTED",
                "This functionality is not implemented yet.",
            ),
            CallTypeEmergencyNotSupported => (
                StatusCode::NOT_IMPLEMENTED,
                "CALLTYPE_EMERGENCY_NOT_SUPPORTED",
                "Server does not support call type EMERGENCY.",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "Service Unavailable.",
            ),
            Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "TIMEOUT",
                "Request timeout exceeded.",
            ),
            AlreadyExists => (
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                "The resource that a client tried to create already exists.",
            ),
            MaxRegistrationPerMsisdn => (
                StatusCode::FORBIDDEN,
                "MAX_REGISTRATION_PER_MSISDN",
                "The maximum number of service registrations per MSISDN has been reached",
            ),
            MissingIdentifier => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "MISSING_IDENTIFIER",
                "The phone number cannot be identified.",
            ),
            UnnecessaryIdentifier => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNNECESSARY_IDENTIFIER",
                "The phone number is already identified by the access token.",
            ),
            InvalidProtocol => (
                StatusCode::BAD_REQUEST,
                "INVALID_PROTOCOL",
                "Only HTTP is supported",
            ),
            InvalidSink => (
                StatusCode::BAD_REQUEST,
                "INVALID_SINK",
                "sink not valid for the specified protocol",
            ),
            InvalidCredential => (
                StatusCode::BAD_REQUEST,
                "INVALID_CREDENTIAL",
                "Only Access token is supported",
            ),
            InvalidToken => (
                StatusCode::BAD_REQUEST,
                "INVALID_TOKEN",
                "Only bearer token is supported",
            ),
        }
    }

    /// The code a bare HTTP status maps to, for responses the framework made itself.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            405 => Code::MethodNotAllowed,
            406 => Code::NotAcceptable,
            408 | 504 => Code::Timeout,
            409 => Code::Conflict,
            413 => Code::ContentTooLarge,
            415 => Code::UnsupportedMediaType,
            429 => Code::TooManyRequests,
            501 => Code::NotImplemented,
            503 => Code::Unavailable,
            _ => Code::Internal,
        }
    }
}

/// A CAMARA error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: Cow<'static, str>,
    /// `WWW-Authenticate` for 401s (RFC 6750).
    challenge: Option<String>,
    /// `Retry-After`, in seconds, for 429s.
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The error with CAMARA's default message for its code.
    pub fn plain(code: Code) -> Self {
        Self::new(code, code.entry().2)
    }

    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// A refused `locationDetails` at `path`: a value outside its range is OUT_OF_RANGE, a
    /// malformed one INVALID_ARGUMENT.
    pub fn from_location(path: impl std::fmt::Display, err: LocationError) -> Self {
        let message = format!("{path}.{err}.");
        match err {
            LocationError::OutOfRange { .. } => Self::new(Code::OutOfRange, message),
            LocationError::Invalid { .. } => Self::invalid(message),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.entry().0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, _) = self.code.entry();
        let body = ErrorBody {
            status: status.as_u16(),
            code,
            message: &self.message,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let mut error = ApiError::new(
            Code::Unauthenticated,
            format!("Request not authenticated: {err}. A new authentication is required."),
        );
        error.challenge = Some(format!(
            "Bearer realm=\"camara-webrtc\", error=\"invalid_token\", error_description=\"{err}\""
        ));
        error
    }
}

impl From<AccessError> for ApiError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::TokenContext { .. } => {
                ApiError::new(Code::InvalidTokenContext, err.to_string())
            }
            AccessError::Mismatch { .. } | AccessError::Side { .. } => {
                ApiError::invalid(err.to_string())
            }
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::NetworkOnly(_) => {
                ApiError::new(Code::OutOfRange, format!("status: {err}"))
            }
            TransitionError::NotAllowed { .. } => {
                ApiError::new(Code::IncompatibleState, format!("{err}"))
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::plain(Code::NotFound),
            StoreError::AlreadyExists => ApiError::plain(Code::Conflict),
            StoreError::VersionConflict { .. } => ApiError::plain(Code::Aborted),
            StoreError::Full(max) => ApiError::new(
                Code::QuotaExceeded,
                format!("Out of resource quota: the service holds its maximum of {max} sessions."),
            ),
            StoreError::OwnerFull(max) => ApiError::new(
                Code::QuotaExceeded,
                format!(
                    "Out of resource quota: this API consumer holds its maximum of {max} live sessions; end one to create another."
                ),
            ),
            StoreError::NumberFull(max) => ApiError::new(
                Code::MaxRegistrationPerMsisdn,
                format!(
                    "The maximum number of service registrations per MSISDN has been reached: this phone number has {max} active registrations."
                ),
            ),
            StoreError::Unavailable(cause) => {
                tracing::error!(cause = cause.as_str(), "session store unavailable");
                ApiError::new(
                    Code::Unavailable,
                    "Service Unavailable: the session store cannot be reached.",
                )
            }
        }
    }
}
