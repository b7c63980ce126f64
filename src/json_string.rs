//! JSON string literals, escaped exactly as serde_json escapes them: `"`, `\` and the C0 controls
//! (`\b \t \n \f \r` short, the others as `\u00XX`); everything else, DEL and non-ASCII included,
//! as it is. serde_json escapes through its formatter a byte at a time; an SDP body, with a line
//! break every thirty bytes or so, cost about 15 instructions a byte that way. [`escape`] copies
//! the runs between escapes instead. A unit test holds the output to serde_json's, byte for byte.

/// `s` as a JSON string literal, quotes included.
pub fn escape(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_body(out, s);
    out.push(b'"');
}

/// `s` escaped, without the quotes: what goes between them.
pub fn escape_body(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let at = next_special::<false>(bytes, start);
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
}

/// What a plain literal holds (see [`plain_literal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    /// The index of the closing quote: the literal's body is `input[..end]`.
    pub end: usize,
    /// How many two-byte escapes the body has: its text is `end - escapes` bytes long.
    pub escapes: usize,
}

/// The string literal at the start of `input` (just after its opening quote), when it is one
/// [`escape`] could have written and holds no control character other than CR, LF and TAB:
/// the only escapes are `\r \n \t \" \\`, and there is no DEL and no C1 control (U+0080–U+009F).
/// So its text can be kept, and written back, exactly as it arrived. `None` for anything else,
/// whether invalid JSON, valid but written differently (`\/`, `\u0041`), or holding a control.
/// `input` must be valid UTF-8 from the opening quote on.
pub fn plain_literal(input: &[u8]) -> Option<Literal> {
    let mut at = 0;
    let mut escapes = 0;
    loop {
        at = next_special::<true>(input, at);
        match *input.get(at)? {
            b'"' => return Some(Literal { end: at, escapes }),
            // SDP's line ends, in one step: they are most of the escapes.
            b'\\' if input[at..].starts_with(b"\\r\\n") => {
                escapes += 2;
                at += 4;
            }
            b'\\' => match input.get(at + 1)? {
                b'r' | b'n' | b't' | b'"' | b'\\' => {
                    escapes += 1;
                    at += 2;
                }
                _ => return None,
            },
            // A C1 control is U+0080–U+009F: 0xC2 then 0x80–0x9F.
            0xC2 if !matches!(input.get(at + 1)?, 0x80..=0x9F) => at += 2,
            // Other non-ASCII bytes, one at a time (the input is valid UTF-8).
            0xC3.. | 0x80..=0xC1 => at += 1,
            // A raw control (not JSON at all), DEL, or a C1 control.
            _ => return None,
        }
    }
}

/// The index of the first byte at or after `from` that [`escape`] escapes (a byte below 0x20,
/// `"` or `\`), or, with `WIDE`, that or DEL or any non-ASCII byte; `bytes.len()` if none.
/// Eight bytes at a time: each such byte sets its high bit in `hits` (the classic has-zero-byte
/// and has-less-than tests; a borrow can only mark bytes after a true hit).
pub(crate) fn next_special<const WIDE: bool>(bytes: &[u8], mut from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || (WIDE && (b == 0x7F || b >= 0x80));
    while let Some(chunk) = bytes[from..].first_chunk::<8>() {
        let word = u64::from_le_bytes(*chunk);
        let mut hits = (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
            | zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')));
        if WIDE {
            hits |= (word & HIGH) | zero_byte(word ^ (ONES * 0x7F));
        }
        if hits != 0 {
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    bytes[from..]
        .iter()
        .position(|&b| special(b))
        .map_or(bytes.len(), |at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of character at every position of a string longer than two words, so the
    /// eight-byte scan meets it at every offset and in the tail.
    fn placed(specials: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for special in specials {
            for at in 0..20 {
                let mut text: Vec<String> =
                    "abcdefghijklmnopqrs".chars().map(String::from).collect();
                text.insert(at, special.to_string());
                out.push(text.concat());
            }
        }
        out
    }

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
        let placed = placed(&[
            "\"", "\\", "\n", "\r", "\u{1}", "\u{1f}", "\u{7f}", " ", "é",
        ]);
        for sample in samples
            .iter()
            .copied()
            .chain(placed.iter().map(String::as_str))
        {
            let mut ours = Vec::new();
            escape(&mut ours, sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(sample).unwrap(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn a_plain_literal_is_exactly_what_escape_writes_of_text_without_stray_controls() {
        // Text whose literal is plain: reading the literal finds its end and its text's length.
        let texts = placed(&[
            "\"", "\\", "\n", "\r", "\t", "\r\n", " ", "é", "\u{A0}", "😀",
        ]);
        for text in texts.iter().map(String::as_str).chain(["", "v=0\r\n"]) {
            let mut literal = Vec::new();
            escape_body(&mut literal, text);
            let written = literal.len();
            literal.extend_from_slice(b"\",\"after\"");
            assert_eq!(
                plain_literal(&literal).map(|l| (l.end, l.end - l.escapes)),
                Some((written, text.len())),
                "{text:?}"
            );
        }
        // Valid JSON written otherwise, controls, and what is not JSON at all.
        let refused = placed(&[
            "\\/", "\\u0041", "\\b", "\\f", "\\u0000", "\u{1}", "\n", "\u{7f}", "\u{80}", "\u{9F}",
            "\\q",
        ]);
        for literal in refused.iter().map(|body| format!("{body}\"")) {
            assert_eq!(plain_literal(literal.as_bytes()), None, "{literal:?}");
        }
        for unterminated in ["", "abc", "abc\\", "abc\\\"", "\u{C2}"] {
            assert_eq!(
                plain_literal(unterminated.as_bytes()),
                None,
                "{unterminated:?}"
            );
        }
    }
}
