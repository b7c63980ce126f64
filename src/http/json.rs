//! Session responses written straight into their buffer, byte for byte as serde_json would write
//! them: strings through [`crate::json_string`], SDP bodies copied as they are held, already
//! escaped.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, Code};
use crate::domain::Sdp;

pub use crate::json_string::escape as string;

/// A JSON object being written; members are written in the order they are added.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        string(self.out, key);
        self.out.push(b':');
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        string(self.out, value);
        self
    }

    /// Leaves the member out when `value` is `None`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    /// `"key":{"sdp":"..."}`, left out when `sdp` is `None`.
    pub fn sdp(&mut self, key: &str, sdp: Option<&Sdp>) -> &mut Self {
        if let Some(sdp) = sdp {
            self.key(key);
            self.out.extend_from_slice(b"{\"sdp\":\"");
            self.out.extend_from_slice(sdp.json().as_bytes());
            self.out.extend_from_slice(b"\"}");
        }
        self
    }

    /// A member serialised by serde (rare shapes such as `locationDetails`); left out when `None`.
    pub fn serde<T: Serialize>(
        &mut self,
        key: &str,
        value: Option<&T>,
    ) -> Result<&mut Self, serde_json::Error> {
        if let Some(value) = value {
            self.key(key);
            serde_json::to_writer(&mut *self.out, value)?;
        }
        Ok(self)
    }

    /// A nested object as the value of `key`.
    pub fn object(&mut self, key: &str) -> Object<'_> {
        self.key(key);
        Object::new(self.out)
    }

    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// A buffer sized for a session response: SDP bodies, held escaped, are most of it.
pub fn buffer(sdps: [Option<&Sdp>; 2]) -> Vec<u8> {
    let sdp_bytes: usize = sdps.into_iter().flatten().map(|sdp| sdp.json().len()).sum();
    Vec::with_capacity(256 + sdp_bytes)
}

/// A written body as an `application/json` response; a body that could not be written is a 500.
pub fn response(body: Result<Vec<u8>, serde_json::Error>) -> Response {
    match body {
        Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(err) => {
            tracing::error!(%err, "a response does not serialise");
            ApiError::plain(Code::Internal).into_response()
        }
    }
}
