//! Session responses written straight into their buffer. serde_json escapes a string through its
//! formatter a byte at a time; an SDP body, most of every session response with a line break
//! every thirty bytes or so, cost about 15 instructions a byte that way. [`string`] copies the
//! runs between escapes instead. The output is byte for byte serde_json's: a unit test compares
//! the two on every kind of string.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, Code};
use crate::domain::Sdp;

/// `s` as a JSON string, escaped exactly as serde_json escapes it: `"`, `\` and the C0 controls
/// (`\b \t \n \f \r` short, the others as `\u00XX`); everything else, DEL and non-ASCII included,
/// as it is.
pub fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let at = next_escape(bytes, start);
        out.extend_from_slice(&bytes[start..at]);
        let Some(&b) = bytes.get(at) else { break };
        // SDP's line ends, in one step.
        if bytes[at..].starts_with(b"\r\n") {
            out.extend_from_slice(b"\\r\\n");
            start = at + 2;
            continue;
        }
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]),
        }
        start = at + 1;
    }
    out.push(b'"');
}

/// The index of the first byte at or after `from` that needs escaping (`bytes.len()` if none),
/// eight bytes at a time: a byte below 0x20, or equal to `"` or `\`, sets its high bit in `hits`
/// (the classic has-zero-byte tests; a borrow can only mark bytes after a true hit).
fn next_escape(bytes: &[u8], mut from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = bytes[from..].first_chunk::<8>() {
        let word = u64::from_le_bytes(*chunk);
        let hits = (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
            | zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    bytes[from..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map_or(bytes.len(), |at| from + at)
}

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
            Object::new(self.out).str("sdp", sdp.as_str()).end();
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

/// A buffer sized for a session response: SDP bodies are most of it, and escaping at most about
/// doubles them (CRLF becomes `\r\n`).
pub fn buffer(sdps: [Option<&Sdp>; 2]) -> Vec<u8> {
    let sdp_bytes: usize = sdps.into_iter().flatten().map(Sdp::len).sum();
    Vec::with_capacity(256 + 2 * sdp_bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every_byte: String = (0u8..0x80).map(char::from).collect();
        every_byte.push_str("é Ω \u{80}\u{9F}\u{A0}\u{2028}\u{2029}\u{FEFF} 😀");
        let samples = [
            "",
            "plain",
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n",
            "\"quoted\" and \\back\\slashed\\",
            "\u{0}\u{1}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{1f}\u{7f}",
            "ends with an escape\n",
            "\r\r\n\n\r\n\r",
            "\nstarts with one",
            &every_byte,
        ];
        // Each kind of byte at every position of a string longer than two words, so the
        // eight-byte scan meets it at every offset and in the tail.
        let mut placed = Vec::new();
        for special in ['"', '\\', '\n', '\r', '\u{1}', '\u{1f}', '\u{7f}', ' ', 'é'] {
            for at in 0..20 {
                let mut text: Vec<char> = "abcdefghijklmnopqrs".chars().collect();
                text.insert(at, special);
                placed.push(text.into_iter().collect::<String>());
            }
        }
        for sample in samples
            .iter()
            .copied()
            .chain(placed.iter().map(String::as_str))
        {
            let mut ours = Vec::new();
            string(&mut ours, sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(sample).unwrap(),
                "{sample:?}"
            );
        }
    }
}
