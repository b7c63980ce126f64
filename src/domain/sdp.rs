//! SDP bodies: stored verbatim, accepted after a lenient or a strict (RFC 8866) check.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most characters an `sdp` value may have (CAMARA's `maxLength`).
pub const MAX_SDP_CHARS: usize = 65_536;

/// How hard SDP is checked (`sdp.validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpPolicy {
    /// Non-empty, bounded, no stray control characters, starts with `v=0` once double encoding is undone.
    #[default]
    Lenient,
    /// A real RFC 8866 grammar check plus the attributes WebRTC relies on.
    Strict,
}

/// An SDP body exactly as the client sent it; it exists only if it passed the configured check.
/// Shared, not copied: a session moves through several copies of itself on every update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp(Arc<str>);

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_SDP_CHARS} characters (got {0})")]
    TooLong(usize),
    #[error("contains a control character (U+{0:04X}) at character {1}")]
    ControlCharacter(u32, usize),
    #[error("is not an SDP body: it must start with v=0")]
    NotSdp,
    #[error("line {line}: {reason}")]
    Grammar { line: usize, reason: String },
}

impl Sdp {
    /// The SDP body `raw`, if it passes `policy`.
    pub fn parse(raw: String, policy: SdpPolicy) -> Result<Self, SdpError> {
        check(&raw, policy)?;
        Ok(Self(raw.into()))
    }

    /// The SDP text itself, byte for byte as it was sent.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The text's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Written as the JSON string of its text.
impl Serialize for Sdp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Read back from the store, where only checked bodies are written; a request's SDP is read as
/// a string and checked with [`Sdp::parse`] against the configured policy.
impl<'de> Deserialize<'de> for Sdp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(text.into()))
    }
}

/// Whether `raw` passes `policy`, and if not, why.
fn check(raw: &str, policy: SdpPolicy) -> Result<(), SdpError> {
    if raw.is_empty() {
        return Err(SdpError::Empty);
    }
    // Count characters only when the byte length could exceed the limit.
    if raw.len() > MAX_SDP_CHARS {
        let chars = raw.chars().count();
        if chars > MAX_SDP_CHARS {
            return Err(SdpError::TooLong(chars));
        }
    }
    // A byte scan first: C0 controls and DEL are single bytes, and the C1 controls
    // U+0080–U+009F start with 0xC2 (as do a few printable characters, which the character
    // walk then clears). Each 32-byte chunk is folded without an early exit, so it vectorises.
    let suspect = raw.as_bytes().chunks(32).any(|chunk| {
        chunk.iter().fold(false, |seen, &b| {
            seen | ((b < 0x20) & (b != b'\r') & (b != b'\n') & (b != b'\t'))
                | (b == 0x7F)
                | (b == 0xC2)
        })
    });
    let culprit = suspect
        .then(|| {
            raw.chars()
                .enumerate()
                .find(|(_, c)| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
        })
        .flatten();
    if let Some((index, c)) = culprit {
        return Err(SdpError::ControlCharacter(c as u32, index + 1));
    }
    match policy {
        SdpPolicy::Lenient => {
            if !undo_double_encoding(raw).starts_with("v=0") {
                return Err(SdpError::NotSdp);
            }
        }
        SdpPolicy::Strict => check_rfc8866(raw)?,
    }
    Ok(())
}

/// Clients often JSON-encode the SDP twice: the value arrives wrapped in quotes, with literal `\r\n`.
/// Only the start matters to the lenient check, so the leading quote is all there is to undo.
fn undo_double_encoding(raw: &str) -> &str {
    raw.strip_prefix('"').unwrap_or(raw)
}

fn grammar(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Grammar {
        line,
        reason: reason.into(),
    }
}

/// RFC 8866 §9 line order at session level, as the index of each type in `SESSION_ORDER`.
const SESSION_ORDER: &str = "vosiuepcbtrzka";
/// Line order inside a media section.
const MEDIA_ORDER: &str = "micbka";

struct Media {
    line: usize,
    formats: Vec<String>,
    has_connection: bool,
}

fn check_rfc8866(raw: &str) -> Result<(), SdpError> {
    let body = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(raw);
    let mut session_has_connection = false;
    let mut session_pos = 0;
    let mut media: Vec<Media> = Vec::new();
    let mut media_pos = 0;
    let mut seen_time = false;
    for (index, text) in body.split('\n').enumerate() {
        let n = index + 1;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let bytes = text.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(grammar(
                n,
                format!("expected <type>=<value>, got {:?}", truncate(text)),
            ));
        }
        let kind = bytes[0] as char;
        let value = &text[2..];
        match (n, kind) {
            (1, 'v') if value == "0" => {}
            (1, _) => return Err(grammar(1, "the first line must be v=0")),
            (2, 'o') => check_origin(n, value)?,
            (2, _) => return Err(grammar(2, "the second line must be the o= origin line")),
            (3, 's') if !value.is_empty() => {}
            (3, _) => {
                return Err(grammar(
                    3,
                    "the third line must be a non-empty s= session name",
                ));
            }
            _ => {}
        }
        if n <= 3 {
            session_pos = n - 1;
            continue;
        }
        if kind == 'm' {
            if !seen_time {
                return Err(grammar(n, "a t= line must come before the first m= line"));
            }
            media.push(check_media(n, value)?);
            media_pos = 0;
            continue;
        }
        if let Some(current) = media.last_mut() {
            let pos = MEDIA_ORDER
                .find(kind)
                .ok_or_else(|| grammar(n, format!("{kind}= is not allowed in a media section")))?;
            if pos < media_pos {
                return Err(grammar(
                    n,
                    format!("{kind}= is out of order in the media section"),
                ));
            }
            media_pos = pos;
            match kind {
                'c' => {
                    check_connection(n, value)?;
                    current.has_connection = true;
                }
                'a' => check_attribute(n, value, Some(&current.formats))?,
                _ => {}
            }
        } else {
            let pos = SESSION_ORDER
                .find(kind)
                .ok_or_else(|| grammar(n, format!("{kind}= is not a session-level line type")))?;
            // t= and r= may repeat as a group; everything else must keep the RFC order.
            let repeat_time = kind == 't' && session_pos == SESSION_ORDER.find('r').unwrap_or(0);
            if pos < session_pos && !repeat_time || matches!(kind, 'v' | 'o' | 's') {
                return Err(grammar(
                    n,
                    format!("{kind}= is out of order at session level"),
                ));
            }
            session_pos = pos;
            match kind {
                'c' => {
                    check_connection(n, value)?;
                    session_has_connection = true;
                }
                't' => {
                    check_timing(n, value)?;
                    seen_time = true;
                }
                'a' => check_attribute(n, value, None)?,
                _ => {}
            }
        }
    }
    if !seen_time {
        return Err(grammar(
            body.split('\n').count(),
            "a t= timing line is required",
        ));
    }
    if media.is_empty() {
        return Err(grammar(
            body.split('\n').count(),
            "at least one m= media section is required",
        ));
    }
    if let Some(m) = media
        .iter()
        .find(|m| !m.has_connection && !session_has_connection)
    {
        return Err(grammar(
            m.line,
            "the media section has no c= connection line",
        ));
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

fn check_origin(n: usize, value: &str) -> Result<(), SdpError> {
    let fields: Vec<&str> = value.split(' ').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() != 6 || fields.iter().any(|f| f.is_empty()) {
        return Err(grammar(
            n,
            "o= needs <username> <sess-id> <sess-version> <nettype> <addrtype> <address>",
        ));
    }
    if !numeric(fields[1]) || !numeric(fields[2]) {
        return Err(grammar(n, "o= session id and version must be numeric"));
    }
    Ok(())
}

fn check_connection(n: usize, value: &str) -> Result<(), SdpError> {
    match value.split(' ').collect::<Vec<_>>().as_slice() {
        ["IN", "IP4" | "IP6", address] if !address.is_empty() => Ok(()),
        _ => Err(grammar(n, "c= must be IN IP4|IP6 <address>")),
    }
}

fn check_timing(n: usize, value: &str) -> Result<(), SdpError> {
    match value.split(' ').collect::<Vec<_>>().as_slice() {
        [start, stop]
            if [start, stop]
                .iter()
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Ok(())
        }
        _ => Err(grammar(n, "t= must be <start-time> <stop-time> in decimal")),
    }
}

fn check_media(n: usize, value: &str) -> Result<Media, SdpError> {
    let fields: Vec<&str> = value.split(' ').collect();
    if fields.len() < 4 || fields.iter().any(|f| f.is_empty()) {
        return Err(grammar(n, "m= needs <media> <port> <proto> <fmt> ..."));
    }
    let port = fields[1]
        .split_once('/')
        .map_or(fields[1], |(port, _)| port);
    if port.parse::<u16>().is_err() {
        return Err(grammar(n, "m= port must be a number from 0 to 65535"));
    }
    Ok(Media {
        line: n,
        formats: fields[3..].iter().map(|f| f.to_string()).collect(),
        has_connection: false,
    })
}

fn ice_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn check_attribute(n: usize, value: &str, formats: Option<&[String]>) -> Result<(), SdpError> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(grammar(n, "a= attribute name is not a token"));
    }
    match name {
        "ice-ufrag" if !(4..=256).contains(&arg.len()) || !ice_chars(arg) => Err(grammar(
            n,
            "a=ice-ufrag must be 4 to 256 ICE characters (RFC 8839)",
        )),
        "ice-pwd" if !(22..=256).contains(&arg.len()) || !ice_chars(arg) => Err(grammar(
            n,
            "a=ice-pwd must be 22 to 256 ICE characters (RFC 8839)",
        )),
        "rtpmap" => {
            let Some((pt, encoding)) = arg.split_once(' ') else {
                return Err(grammar(
                    n,
                    "a=rtpmap must be <payload type> <encoding name>/<clock rate>",
                ));
            };
            let clock = encoding.split('/').nth(1).unwrap_or("");
            if pt.parse::<u8>().is_err() || clock.parse::<u32>().is_err() {
                return Err(grammar(
                    n,
                    "a=rtpmap must be <payload type> <encoding name>/<clock rate>",
                ));
            }
            match formats {
                Some(formats) if formats.iter().any(|f| f == pt) => Ok(()),
                Some(_) => Err(grammar(
                    n,
                    format!("a=rtpmap payload type {pt} is not listed in the m= line"),
                )),
                None => Err(grammar(n, "a=rtpmap belongs in a media section")),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "v=0\r\no=- 4576312012535546667 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 47510 RTP/SAVPF 102 113\r\nc=IN IP6 2001:e0:410:243a:a344:cee7:7b39:bb1e\r\na=ice-ufrag:47Nx\r\na=ice-pwd:ln3CttOSkObcQ7A0tYO1LXqy\r\na=rtpmap:102 AMR-WB/16000\r\na=rtpmap:113 telephone-event/16000\r\n";

    fn strict(s: &str) -> Result<Sdp, SdpError> {
        Sdp::parse(s.to_string(), SdpPolicy::Strict)
    }

    #[test]
    fn lenient_accepts_double_encoded_and_clean_sdp() {
        assert!(
            Sdp::parse(
                "\"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n\"\n".into(),
                SdpPolicy::Lenient
            )
            .is_ok()
        );
        assert!(Sdp::parse(CLEAN.into(), SdpPolicy::Lenient).is_ok());
    }

    #[test]
    fn lenient_refuses_what_is_not_sdp() {
        assert_eq!(
            Sdp::parse(String::new(), SdpPolicy::Lenient),
            Err(SdpError::Empty)
        );
        assert_eq!(
            Sdp::parse("hello".into(), SdpPolicy::Lenient),
            Err(SdpError::NotSdp)
        );
        assert_eq!(
            Sdp::parse("v=0\0".into(), SdpPolicy::Lenient),
            Err(SdpError::ControlCharacter(0, 4))
        );
        // Every control character but CR, LF and TAB, C1 included, named by its character index;
        // other non-ASCII text (which shares UTF-8 lead bytes with C1) is fine.
        for c in ['\u{1}', '\u{1F}', '\u{7F}', '\u{80}', '\u{85}', '\u{9F}'] {
            assert_eq!(
                Sdp::parse(format!("v=0 é{c}"), SdpPolicy::Lenient),
                Err(SdpError::ControlCharacter(c as u32, 6)),
                "{c:?}"
            );
        }
        // The scan works in 32-byte chunks: a control character is found at every position,
        // chunk edges and a short tail included.
        for at in 4..100 {
            let mut raw = format!("v=0\r\n{}", "a".repeat(95)).into_bytes();
            raw[at] = 0x1B;
            let raw = String::from_utf8(raw).unwrap();
            assert_eq!(
                Sdp::parse(raw, SdpPolicy::Lenient),
                Err(SdpError::ControlCharacter(0x1B, at + 1)),
                "at byte {at}"
            );
        }
        for ok in ["v=0 \u{A0}é\u{7E}\t\r\n", "v=0 s=Ω ©"] {
            assert!(Sdp::parse(ok.into(), SdpPolicy::Lenient).is_ok(), "{ok:?}");
        }
        let long = format!("v=0\r\n{}", "a".repeat(MAX_SDP_CHARS));
        assert_eq!(
            Sdp::parse(long, SdpPolicy::Lenient),
            Err(SdpError::TooLong(MAX_SDP_CHARS + 5))
        );
    }

    #[test]
    fn the_store_keeps_the_text_as_a_json_string() {
        let sdp = Sdp::parse(CLEAN.into(), SdpPolicy::Lenient).unwrap();
        assert_eq!((sdp.text(), sdp.len()), (CLEAN, CLEAN.len()));
        let stored = serde_json::to_string(&sdp).unwrap();
        assert_eq!(stored, serde_json::to_string(CLEAN).unwrap());
        assert_eq!(serde_json::from_str::<Sdp>(&stored).unwrap(), sdp);
    }

    #[test]
    fn strict_accepts_a_clean_webrtc_body() {
        assert_eq!(strict(CLEAN).map(|s| s.len()), Ok(CLEAN.len()));
    }

    #[test]
    fn strict_names_the_line_and_the_fault() {
        let cases = [
            ("\"v=0\\r\\n\"", 1),
            (&CLEAN.replace("s=-\r\n", ""), 3),
            (&CLEAN.replace("a=rtpmap:113", "a=rtpmap:114"), 10),
            (
                &CLEAN.replace("ice-pwd:ln3CttOSkObcQ7A0tYO1LXqy", "ice-pwd:short"),
                8,
            ),
            (
                &CLEAN.replace("c=IN IP6 2001:e0:410:243a:a344:cee7:7b39:bb1e\r\n", ""),
                5,
            ),
            (&CLEAN.replace("m=audio 47510", "m=audio x"), 5),
            (&CLEAN.replace("t=0 0\r\n", ""), 4),
        ];
        for (body, line) in cases {
            match strict(body) {
                Err(SdpError::Grammar { line: got, .. }) => assert_eq!(got, line, "{body:?}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }
}
