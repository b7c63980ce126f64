//! Reading JSON request bodies field by field, so every refusal names the offending field by its
//! full path (`receiverSessionStatus.answer.sdp`), and the DTOs the session routes answer with.

use axum::response::Response;
use serde_json::{Map, Value};

use super::error::{ApiError, Code};
use super::json::{self, Object};
use crate::domain::location::{Confidence, Coordinates, Method, Number, Pdf};
use crate::domain::{Address, Location, LocationError, Sdp, SdpPolicy, Session, SessionStatus};

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

/// CAMARA's `MediaSessionResponse`: the full session, as a JSON response.
pub fn session_response(s: &Session) -> Response {
    json::response(session_json(s))
}

fn session_json(s: &Session) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = json::buffer([s.offer.as_ref(), s.answer.as_ref()]);
    let written = Object::new(&mut out)
        .str("mediaSessionId", s.id.as_str())
        .str("originatorAddress", s.originator.as_str())
        .opt_str("originatorName", s.originator_name.as_deref())
        .str("receiverAddress", s.receiver.as_str())
        .opt_str("receiverName", s.receiver_name.as_deref())
        .str("status", s.status.as_str())
        .sdp("offer", s.offer.as_ref())
        .sdp("answer", s.answer.as_ref())
        .str("callType", s.call_type.as_str())
        .serde("locationDetails", s.location.as_ref())
        .map(Object::end);
    written.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CallType;
    use crate::domain::location::Coordinates;

    fn session() -> Session {
        Session::example(SessionStatus::Initial)
    }

    fn written(session: &Session) -> String {
        String::from_utf8(session_json(session).unwrap()).unwrap()
    }

    #[test]
    fn a_session_is_written_member_by_member_in_schema_order() {
        let mut full = session();
        full.originator_name = Some("Al \"the\" caller".into());
        full.receiver_name = Some("Bob\n".into());
        full.status = SessionStatus::Connected;
        full.offer = Some(Sdp::parse("v=0\r\na=x\r\n".into(), SdpPolicy::Lenient).unwrap());
        full.answer = Some(Sdp::parse("v=0\r\n".into(), SdpPolicy::Lenient).unwrap());
        full.call_type = CallType::Emergency;
        let circle = Coordinates::Circle {
            latitude: Number(50.7),
            longitude: Number(-4.5),
            radius: Number(800.0),
        };
        full.location = Some(Location::new(circle, None, None, None).unwrap());
        assert_eq!(
            written(&full),
            r#"{"mediaSessionId":"s","originatorAddress":"tel:+17085852753","originatorName":"Al \"the\" caller","receiverAddress":"tel:+17085854000","receiverName":"Bob\n","status":"Connected","offer":{"sdp":"v=0\r\na=x\r\n"},"answer":{"sdp":"v=0\r\n"},"callType":"EMERGENCY","locationDetails":{"shape":"Circle","coordinates":{"latitude":50.7,"longitude":-4.5,"radius":800}}}"#
        );
        assert_eq!(
            written(&session()),
            r#"{"mediaSessionId":"s","originatorAddress":"tel:+17085852753","receiverAddress":"tel:+17085854000","status":"Initial","callType":"REGULAR"}"#
        );
    }

    #[test]
    fn statuses_and_call_types_are_written_as_serde_names_them() {
        for status in SessionStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for call_type in [CallType::Regular, CallType::Emergency] {
            assert_eq!(serde_json::to_value(call_type).unwrap(), call_type.as_str());
        }
    }
}
