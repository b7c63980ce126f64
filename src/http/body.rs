//! Reading JSON request bodies field by field, so every refusal names the offending field by its
//! full path (`receiverSessionStatus.answer.sdp`), and the DTOs the session routes answer with.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ApiError, Code};
use crate::domain::location::{Confidence, Coordinates, Method, Number, Pdf};
use crate::domain::{
    Address, CallType, Location, LocationError, Sdp, SdpPolicy, Session, SessionStatus,
};

/// A JSON object being read; `prefix` is its path in the body (`""` at the top, else ending in `.`).
pub struct Fields {
    prefix: String,
    map: Map<String, Value>,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Fields {
    pub fn new(prefix: impl Into<String>, map: Map<String, Value>) -> Self {
        Self {
            prefix: prefix.into(),
            map,
        }
    }

    /// Whether the field is present at all (any value, `null` included).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn wrong_type(&self, key: &str, expected: &str, got: &Value) -> ApiError {
        ApiError::invalid(format!(
            "{} must be {expected}, not {}.",
            self.path(key),
            type_name(got)
        ))
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", &other)),
        }
    }

    pub fn required_string(&mut self, key: &str) -> Result<String, ApiError> {
        self.string(key)?
            .ok_or_else(|| ApiError::invalid(format!("{} is required.", self.path(key))))
    }

    pub fn number(&mut self, key: &str) -> Result<Option<Number>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().map(Number)),
            Some(other) => Err(self.wrong_type(key, "a number", &other)),
        }
    }

    pub fn required_number(&mut self, key: &str) -> Result<Number, ApiError> {
        self.number(key)?
            .ok_or_else(|| ApiError::invalid(format!("{} is required.", self.path(key))))
    }

    pub fn object(&mut self, key: &str) -> Result<Option<Fields>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields::new(format!("{}.", self.path(key)), map))),
            Some(other) => Err(self.wrong_type(key, "an object", &other)),
        }
    }

    /// A string field that must be one of `choices`.
    pub fn choice<T: Copy>(
        &mut self,
        key: &str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ApiError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, v)| Some(*v))
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                ApiError::invalid(format!(
                    "{} must be one of {}.",
                    self.path(key),
                    names.join(", ")
                ))
            })
    }

    /// A string field of at most 256 characters (names).
    pub fn name(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        let name = self.string(key)?;
        if name.as_ref().is_some_and(|n| n.chars().count() > 256) {
            return Err(ApiError::invalid(format!(
                "{} must be at most 256 characters.",
                self.path(key)
            )));
        }
        Ok(name)
    }

    pub fn address(&mut self, key: &str) -> Result<Option<Address>, ApiError> {
        self.string(key)?
            .map(Address::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{} {e}.", self.path(key))))
    }

    /// `{ "sdp": "..." }`, checked against the configured SDP policy.
    pub fn sdp(&mut self, key: &str, policy: SdpPolicy) -> Result<Option<Sdp>, ApiError> {
        let Some(mut descriptor) = self.object(key)? else {
            return Ok(None);
        };
        let raw = descriptor.required_string("sdp")?;
        Sdp::parse(raw, policy)
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("{} {e}.", descriptor.path("sdp"))))
    }

    /// A session status: unknown strings are INVALID_ARGUMENT.
    pub fn status(&mut self, key: &str) -> Result<SessionStatus, ApiError> {
        let raw = self.required_string(key)?;
        raw.parse().map_err(|_| {
            let names: Vec<&str> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid(format!(
                "{} must be one of {}.",
                self.path(key),
                names.join(", ")
            ))
        })
    }

    /// `locationDetails`, with CAMARA's shapes and ranges.
    pub fn location(&mut self, key: &str) -> Result<Option<Location>, ApiError> {
        let Some(mut loc) = self.object(key)? else {
            return Ok(None);
        };
        let shape = loc.choice("shape", &[("Circle", false), ("Ellipsoid", true)])?;
        let shape = shape
            .ok_or_else(|| ApiError::invalid(format!("{} is required.", loc.path("shape"))))?;
        let mut c = loc.object("coordinates")?.ok_or_else(|| {
            ApiError::invalid(format!("{} is required.", loc.path("coordinates")))
        })?;
        let coordinates = if shape {
            Coordinates::Ellipsoid {
                latitude: c.required_number("latitude")?,
                longitude: c.required_number("longitude")?,
                z_axis: c.required_number("zAxis")?,
                semi_major_axis: c.required_number("semiMajorAxis")?,
                semi_minor_axis: c.required_number("semiMinorAxis")?,
                vertical_axis: c.required_number("verticalAxis")?,
                orientation: c.required_number("orientation")?,
            }
        } else {
            Coordinates::Circle {
                latitude: c.required_number("latitude")?,
                longitude: c.required_number("longitude")?,
                radius: c.required_number("radius")?,
            }
        };
        let method = loc.choice(
            "method",
            &[
                ("GPS", Method::Gps),
                ("DBH", Method::Dbh),
                ("DBH_HELO", Method::DbhHelo),
                ("Other", Method::Other),
            ],
        )?;
        let confidence = match loc.object("confidence")? {
            None => None,
            Some(mut conf) => Some(Confidence {
                pdf: conf.choice("pdf", &[("normal", Pdf::Normal), ("uniform", Pdf::Uniform)])?,
                value: conf.number("value")?,
            }),
        };
        let timestamp = loc.string("timestamp")?;
        Location::new(coordinates, method, confidence, timestamp)
            .map(Some)
            .map_err(|e| {
                let message = format!("{}{e}.", loc.prefix);
                match e {
                    LocationError::OutOfRange { .. } => ApiError::new(Code::OutOfRange, message),
                    LocationError::Invalid { .. } => ApiError::invalid(message),
                }
            })
    }
}

/// A JSON response serialised once into a buffer sized for it: SDP bodies are most of a session
/// response, and escaping at most doubles them (CRLF becomes `\r\n`).
pub fn json_response<T: Serialize>(value: &T, sdp_bytes: usize) -> Response {
    let mut buffer = Vec::with_capacity(256 + 2 * sdp_bytes);
    match serde_json::to_writer(&mut buffer, value) {
        Ok(()) => ([(CONTENT_TYPE, "application/json")], buffer).into_response(),
        Err(err) => {
            tracing::error!(%err, "a response does not serialise");
            ApiError::plain(Code::Internal).into_response()
        }
    }
}

/// `{ "sdp": ... }` in a response, the SDP exactly as stored.
#[derive(Debug, Serialize)]
pub struct SdpBody<'a> {
    pub sdp: &'a str,
}

impl<'a> SdpBody<'a> {
    pub fn of(sdp: Option<&'a Sdp>) -> Option<Self> {
        sdp.map(|sdp| Self { sdp: sdp.as_str() })
    }
}

/// CAMARA's `MediaSessionResponse`: the full session.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody<'a> {
    pub media_session_id: &'a str,
    pub originator_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originator_name: Option<&'a str>,
    pub receiver_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_name: Option<&'a str>,
    pub status: SessionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<SdpBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<SdpBody<'a>>,
    pub call_type: CallType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_details: Option<&'a Location>,
}

impl SessionBody<'_> {
    /// The session as a JSON response.
    pub fn response(session: &Session) -> Response {
        let sdp_bytes = [&session.offer, &session.answer]
            .into_iter()
            .flatten()
            .map(Sdp::len)
            .sum();
        json_response(&SessionBody::from(session), sdp_bytes)
    }
}

impl<'a> From<&'a Session> for SessionBody<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            media_session_id: s.id.as_str(),
            originator_address: s.originator.as_str(),
            originator_name: s.originator_name.as_deref(),
            receiver_address: s.receiver.as_str(),
            receiver_name: s.receiver_name.as_deref(),
            status: s.status,
            offer: SdpBody::of(s.offer.as_ref()),
            answer: SdpBody::of(s.answer.as_ref()),
            call_type: s.call_type,
            location_details: s.location.as_ref(),
        }
    }
}
