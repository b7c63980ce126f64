//! The strict SDP check: RFC 8866's line grammar and order, plus the attribute syntax WebRTC
//! relies on (ICE credentials of RFC 8839, rtpmap payload types listed in their m= line).
//! Every refusal is a [`SdpError::Grammar`] naming a line of the body (1-based).

use super::SdpError;

fn grammar(line: usize, reason: impl Into<String>) -> SdpError {
    SdpError::Grammar {
        line,
        reason: reason.into(),
    }
}

/// One level of an SDP body (session or media): its line types in RFC 8866 §5's order, and how
/// its refusals read.
struct Level {
    order: &'static str,
    unknown: &'static str,
    misplaced: &'static str,
}

const SESSION: Level = Level {
    order: "vosiuepcbtrzka",
    unknown: "is not a session-level line type",
    misplaced: "is out of order at session level",
};
const MEDIA: Level = Level {
    order: "micbka",
    unknown: "is not allowed in a media section",
    misplaced: "is out of order in the media section",
};

impl Level {
    /// Moves `pos` to the place of line `n`'s type `kind` in the order; no line may go back to an
    /// earlier place unless `may_go_back`.
    fn advance(
        &self,
        n: usize,
        kind: char,
        pos: &mut usize,
        may_go_back: bool,
    ) -> Result<(), SdpError> {
        let next = self
            .order
            .find(kind)
            .ok_or_else(|| grammar(n, format!("{kind}= {}", self.unknown)))?;
        if next < *pos && !may_go_back {
            return Err(grammar(n, format!("{kind}= {}", self.misplaced)));
        }
        *pos = next;
        Ok(())
    }
}

/// A media section seen so far: its m= line, the formats it lists, whether it has its own c= line.
struct Media {
    line: usize,
    formats: Vec<String>,
    has_connection: bool,
}

/// Whether `raw` is an SDP body RFC 8866 accepts, with a timing line, at least one media section,
/// a connection line for every media section (its own or the session's), and well-formed ICE and
/// rtpmap attributes. A single trailing line break is allowed; lines end with LF or CRLF.
pub(super) fn check(raw: &str) -> Result<(), SdpError> {
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
            MEDIA.advance(n, kind, &mut media_pos, false)?;
            match kind {
                'c' => {
                    check_connection(n, value)?;
                    current.has_connection = true;
                }
                'a' => check_attribute(n, value, Some(&current.formats))?,
                _ => {}
            }
        } else {
            if matches!(kind, 'v' | 'o' | 's') {
                return Err(grammar(n, format!("{kind}= {}", SESSION.misplaced)));
            }
            // t= and r= may repeat as a group.
            let repeat_time = kind == 't' && SESSION.order.find('r') == Some(session_pos);
            SESSION.advance(n, kind, &mut session_pos, repeat_time)?;
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
mod tests;
