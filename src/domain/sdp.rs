//! SDP bodies: stored verbatim, accepted after a lenient or a strict (RFC 8866) check.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod answer;
mod rfc8866;

/// The most characters an `sdp` value may have (CAMARA's `maxLength`).
pub const MAX_SDP_CHARS: usize = 65_536;

/// The longest JSON string literal of a valid `sdp` value: every character written as an escaped
/// surrogate pair (`\uD83D\uDE00`, 12 bytes), between two quotes.
pub const MAX_SDP_JSON_BYTES: usize = MAX_SDP_CHARS * 12 + 2;

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

    /// The body with its secrets replaced by `[masked]`: the key after every `inline:` (the
    /// SRTP keys of `a=crypto`, `FEC_KEY` included), and the rest of the line after every
    /// `ice-pwd:` and `key-mgmt:` (its key data follows the protocol name) and after a `k=`
    /// that starts a line. They are found wherever they stand and in any case, so a body the
    /// lenient check accepts (CR-only line ends, stray spaces or tabs, double encoding) is
    /// masked too.
    ///
    /// A line ends at a real CR or LF, or at an escaped one (`\r`, `\n`), and in a quoted
    /// (double-encoded) body at `\"` or its closing `"`; a key also ends at whitespace, `;`
    /// or `\t`. Any other escape (`\/`, `\u002F`) is part of the value, so masked with it. A
    /// real line break not followed by a line (`x=`, after optional blanks) is wrapping, as in
    /// the seed's double-encoded examples where it splits keys: it is dropped, so the value
    /// around it is masked whole. Everything else is kept byte for byte: what the console
    /// shows on demand.
    pub fn masked(&self) -> Sdp {
        // Each marker with whether its value runs to the end of the line.
        const MARKERS: [(&str, bool); 3] =
            [("inline:", false), ("ice-pwd:", true), ("key-mgmt:", true)];
        let text = unwrapped(&self.0);
        let text = text.as_ref();
        let lower = text.to_ascii_lowercase();
        let bytes = text.as_bytes();
        let quoted = text.starts_with('"');
        let escaped = |at: usize, letters: &[u8]| {
            bytes[at] == b'\\' && bytes.get(at + 1).is_some_and(|b| letters.contains(b))
        };
        let ends_line = |at: usize| {
            matches!(bytes[at], b'\r' | b'\n')
                || escaped(at, b"rn")
                || (quoted && (bytes[at] == b'"' || escaped(at, b"\"")))
        };
        let ends_key = |at: usize| {
            ends_line(at) || matches!(bytes[at], b' ' | b'\t' | b';') || escaped(at, b"t")
        };
        // `k=` at the start of a line: after the start, a line end (real or escaped), and
        // optional spaces or tabs.
        let starts_line = |at: usize| {
            let before = lower[..at].trim_end_matches([' ', '\t']);
            before.is_empty()
                || before.ends_with(['\r', '\n'])
                || before.ends_with("\\n")
                || before.ends_with("\\r")
        };
        let mut shown = String::with_capacity(text.len());
        let (mut copied, mut at) = (0, 0);
        // Every marker and delimiter is ASCII, and no byte of a multi-byte character is:
        // every index where one matches is a character boundary.
        while at < bytes.len() {
            let rest = &lower[at..];
            let marker = MARKERS
                .iter()
                .find(|(name, _)| rest.starts_with(name))
                .map(|&(name, whole_line)| (name.len(), whole_line))
                .or_else(|| (rest.starts_with("k=") && starts_line(at)).then_some((2, true)));
            let Some((length, whole_line)) = marker else {
                at += 1;
                continue;
            };
            at += length;
            shown.push_str(&text[copied..at]);
            let ends: &dyn Fn(usize) -> bool = if whole_line { &ends_line } else { &ends_key };
            let value = (at..bytes.len()).find(|&i| ends(i)).unwrap_or(bytes.len());
            if value > at {
                shown.push_str(MASK);
            }
            (copied, at) = (value, value);
        }
        shown.push_str(&text[copied..]);
        Sdp(shown.into())
    }
}

/// What [`Sdp::masked`] writes in place of a secret.
pub const MASK: &str = "[masked]";

/// Written as the JSON string of its text.
impl Serialize for Sdp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `text` without the real line breaks that wrap a line rather than end it: a run of CR and LF
/// not followed by another line (`x=`, after optional spaces or tabs) or by the end.
fn unwrapped(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut joined = String::new();
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        if !matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        let mut next = at;
        while next < bytes.len() && matches!(bytes[next], b' ' | b'\t') {
            next += 1;
        }
        let a_line = next == bytes.len()
            || (bytes[next].is_ascii_alphabetic() && bytes.get(next + 1) == Some(&b'='));
        if !a_line {
            joined.push_str(&text[copied..start]);
            copied = at;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    joined.push_str(&text[copied..]);
    std::borrow::Cow::Owned(joined)
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
        SdpPolicy::Strict => rfc8866::check(raw)?,
    }
    Ok(())
}

/// Clients often JSON-encode the SDP twice: the value arrives wrapped in quotes, with literal `\r\n`.
/// Only the start matters to the lenient check, so the leading quote is all there is to undo.
fn undo_double_encoding(raw: &str) -> &str {
    raw.strip_prefix('"').unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking_hides_keys_and_passwords_and_keeps_every_other_byte() {
        let masked = |text: &str| super::Sdp(text.into()).masked().text().to_owned();
        assert_eq!(
            masked(
                "v=0\r\nk=clear:s3cret\r\na=ice-ufrag:4eKp\r\na=ice-pwd:D4sF5Pv9vx9ggaqxBlHbAFMx\r\n\
                 a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Xm3Yci|2^20|1:32 INLINE:Other\r\n\
                 a=KEY-MGMT:mikey AQAF\na=fingerprint:sha-256 AB:CD\r\na=link:k=v\r\n"
            ),
            "v=0\r\nk=[masked]\r\na=ice-ufrag:4eKp\r\na=ice-pwd:[masked]\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[masked] INLINE:[masked]\r\n\
             a=KEY-MGMT:[masked]\na=fingerprint:sha-256 AB:CD\r\na=link:k=v\r\n"
        );
        // What the lenient check lets through: double encoding, CR-only line ends, a leading
        // space, tabs, a session parameter carrying a key.
        for (body, shown) in [
            (
                "v=0\\r\\na=ice-pwd:secret1\\r\\na=crypto:1 X inline:secret2\\r\\n k=secret3",
                "v=0\\r\\na=ice-pwd:[masked]\\r\\na=crypto:1 X inline:[masked]\\r\\n k=[masked]",
            ),
            // Wrapped by real line breaks that split keys, as in the seed's examples.
            (
                "\"v=0\\r\\na=ice-pwd:sec\nret1\\r\\na=crypto:1 X inline:sec\nret2\\r\\n\"\n",
                "\"v=0\\r\\na=ice-pwd:[masked]\\r\\na=crypto:1 X inline:[masked]\\r\\n\"\n",
            ),
            // Escapes inside values (JSON encoders write `/` as `\/`) are masked with them.
            (
                "\"v=0\\r\\na=ice-pwd:ab\\/cd\\r\\na=crypto:1 X inline:WV\\/Nf|2^20\\r\\n\"",
                "\"v=0\\r\\na=ice-pwd:[masked]\\r\\na=crypto:1 X inline:[masked]\\r\\n\"",
            ),
            (
                "\"v=0\\r\\na=ice-pwd:ab\\u002Fcd\\r\\nk=abc\"",
                "\"v=0\\r\\na=ice-pwd:[masked]\\r\\nk=[masked]\"",
            ),
            // In a plain body a backslash or a quote is part of the value.
            ("v=0\r\nk=clear:pa\\ss\"word\r\n", "v=0\r\nk=[masked]\r\n"),
            // A literal `\n` in another line does not make a plain body's lines one.
            (
                "v=0\r\ns=x\\ny\r\nk=clear:key\r\n",
                "v=0\r\ns=x\\ny\r\nk=[masked]\r\n",
            ),
            // CR-only line ends, wrapped by an LF; a key line after a break and blanks.
            ("v=0\ra=ice-pwd:sec\nret\r", "v=0\ra=ice-pwd:[masked]\r"),
            ("v=0\r\n k=secret\r\n", "v=0\r\n k=[masked]\r\n"),
            (
                "v=0\ra=ice-pwd:secret1\rk=secret3\r",
                "v=0\ra=ice-pwd:[masked]\rk=[masked]\r",
            ),
            (" a=ice-pwd:secret1", " a=ice-pwd:[masked]"),
            (
                "a=crypto:1\tX\tinline:secret2",
                "a=crypto:1\tX\tinline:[masked]",
            ),
            (
                "a=crypto:1 X inline:k1 FEC_KEY=inline:secret2;x",
                "a=crypto:1 X inline:[masked] FEC_KEY=inline:[masked];x",
            ),
        ] {
            assert_eq!(masked(body), shown, "{body:?}");
        }
    }

    use proptest::prelude::*;

    use super::*;

    pub(super) const CLEAN: &str = "v=0\r\no=- 4576312012535546667 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 47510 RTP/SAVPF 102 113\r\nc=IN IP6 2001:e0:410:243a:a344:cee7:7b39:bb1e\r\na=ice-ufrag:47Nx\r\na=ice-pwd:ln3CttOSkObcQ7A0tYO1LXqy\r\na=rtpmap:102 AMR-WB/16000\r\na=rtpmap:113 telephone-event/16000\r\n";

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

    /// What the lenient check decides, written from its contract: the first rule `raw` breaks.
    fn lenient_contract(raw: &str) -> Result<(), SdpError> {
        let chars = raw.chars().count();
        let control = raw
            .chars()
            .position(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'));
        if raw.is_empty() {
            Err(SdpError::Empty)
        } else if chars > MAX_SDP_CHARS {
            Err(SdpError::TooLong(chars))
        } else if let Some(index) = control {
            let c = raw.chars().nth(index).unwrap_or_default();
            Err(SdpError::ControlCharacter(c as u32, index + 1))
        } else if raw.strip_prefix('"').unwrap_or(raw).starts_with("v=0") {
            Ok(())
        } else {
            Err(SdpError::NotSdp)
        }
    }

    /// Short texts, many of them SDP-like, with control characters (C0, DEL, C1) among them.
    fn texts() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "\"?v=0(?s:.){0,40}",
            "[\"v=0 aé\\r\n\t\x00-\x1f\x7f\u{80}-\u{9f}]{0,16}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_lenient_check_keeps_its_contract(raw in texts()) {
            prop_assert_eq!(check(&raw, SdpPolicy::Lenient), lenient_contract(&raw));
        }
    }

    /// The limit counts characters, not bytes: `é` is two bytes.
    #[test]
    fn the_length_limit_is_in_characters() {
        for chars in MAX_SDP_CHARS - 2..=MAX_SDP_CHARS + 2 {
            let raw = format!("v=0{}", "é".repeat(chars - 3));
            assert_eq!(
                check(&raw, SdpPolicy::Lenient),
                lenient_contract(&raw),
                "{chars}"
            );
        }
    }
}
