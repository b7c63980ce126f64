//! The fast path for PUT bodies: the shapes clients send on every call (`status`, perhaps `offer`
//! or `answer`, flat or in the seed's `receiverSessionStatus` envelope) read in one pass over the
//! bytes, straight into typed values, instead of a `serde_json::Value` tree walked field by field.
//! An SDP is kept as the JSON literal it arrived in ([`Sdp::read_literal`]): it is neither
//! unescaped nor escaped again for the response.
//!
//! It only ever accepts: any body it is unsure of (any other member, a `null`, a duplicate key,
//! an escape in a key or a status, an unknown status, an SDP the policy refuses, JSON that is
//! not valid, ...) gives `None`, and the field walker in [`super::StatusUpdate::parse`] reads it
//! again, so what a body means and every message naming a field come from one place. Tests hold
//! the two paths to the same result, on the common bodies and on thousands of mutations of them.

use super::{ENVELOPE_KEYS, Envelope, Parties, StatusUpdate};
use crate::domain::{Sdp, SdpPolicy, SessionStatus, StatusChange};

/// The members of one object of a common shape.
#[derive(Default)]
struct Members<'a> {
    status: Option<&'a str>,
    offer: Option<Sdp>,
    answer: Option<Sdp>,
    envelope: Option<(&'static str, Box<Members<'a>>)>,
}

/// A cursor over a body that is valid UTF-8.
struct Reader<'a> {
    text: &'a str,
    at: usize,
    policy: SdpPolicy,
}

impl<'a> Reader<'a> {
    /// The next byte after JSON whitespace (exactly space, tab, LF and CR), not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
        bytes.get(self.at).copied()
    }

    /// Consumes `byte` after whitespace, or gives `None`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string with no escape and no control character (a key, a status).
    fn plain(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = self.text.as_bytes()[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.text.as_bytes()[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are quotes, so this slices at character boundaries.
        Some(&self.text[start..start + len])
    }

    /// `{"sdp": "..."}`, and nothing else in it.
    fn descriptor(&mut self) -> Option<Sdp> {
        self.expect(b'{')?;
        if self.plain()? != "sdp" {
            return None;
        }
        self.expect(b':')?;
        self.expect(b'"')?;
        let (sdp, len) = Sdp::read_literal(&self.text[self.at..], self.policy)?;
        self.at += len;
        self.expect(b'}')?;
        Some(sdp)
    }

    /// An object of a common shape; an envelope only where `envelope` allows one.
    fn object(&mut self, envelope: bool) -> Option<Members<'a>> {
        let mut members = Members::default();
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(members);
        }
        loop {
            let key = self.plain()?;
            self.expect(b':')?;
            match key {
                "status" if members.status.is_none() => members.status = Some(self.plain()?),
                "offer" if members.offer.is_none() => members.offer = Some(self.descriptor()?),
                "answer" if members.answer.is_none() => members.answer = Some(self.descriptor()?),
                // An envelope, once and only at the top; any other member is not read here.
                _ => {
                    let name = ENVELOPE_KEYS
                        .into_iter()
                        .find(|name| *name == key)
                        .filter(|_| envelope && members.envelope.is_none())?;
                    members.envelope = Some((name, Box::new(self.object(false)?)));
                }
            }
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(members);
                }
                _ => return None,
            }
        }
    }
}

/// The update `body` asks for, when it is one of the common shapes and valid; else `None`.
pub fn read(body: &[u8], policy: SdpPolicy) -> Option<StatusUpdate> {
    // The whole body is checked as UTF-8 once, so every slice of it is text.
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = Reader {
        text,
        at: 0,
        policy,
    };
    let top = reader.object(true)?;
    if reader.peek().is_some() {
        return None;
    }
    let (envelope, fields) = match top {
        Members {
            status: Some(_),
            envelope: None,
            ..
        } => (Envelope::Flat, top),
        Members {
            status: None,
            offer: None,
            answer: None,
            envelope: Some((key, inner)),
        } => (Envelope::Receiver(key), *inner),
        _ => return None,
    };
    let status: SessionStatus = fields.status?.parse().ok()?;
    if !status.is_client_settable() {
        return None;
    }
    Some(StatusUpdate {
        envelope,
        change: StatusChange {
            status,
            offer: fields.offer,
            answer: fields.answer,
            location: None,
        },
        parties: Parties::default(),
        media_session_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::json_object;

    fn seed(name: &str) -> String {
        let path = format!("{}/tests/fixtures/seed/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    /// Both paths on `body`: the fast one's answer, and the field walker's.
    fn both(body: &str, policy: SdpPolicy) -> (Option<String>, Result<String, String>) {
        let fast = read(body.as_bytes(), policy).map(|u| format!("{u:?}"));
        let walked = json_object(body.as_bytes())
            .and_then(|map| StatusUpdate::parse(map, policy))
            .map(|u| format!("{u:?}"))
            .map_err(|e| format!("{e:?}"));
        (fast, walked)
    }

    #[test]
    fn the_common_bodies_take_the_fast_path_and_mean_what_the_walker_reads() {
        let mut bodies: Vec<String> = [1, 2, 3, 4, 5]
            .iter()
            .map(|n| {
                let name = ["in-progress", "ringing", "connected", "hold", "resume"][n - 1];
                seed(&format!("request-{n}-{name}.json"))
            })
            .collect();
        bodies.extend(
            [
                r#"{"status":"Ringing"}"#,
                r#"{"status":"Hold","answer":{"sdp":"v=0\r\n"}}"#,
                r#"{"receiverSessionStatus":{"status":"Connected","offer":{"sdp":"v=0\r\n"}}}"#,
                r#"{"ReceiverSessionStatus":{"status":"Resume"}}"#,
                " \t\r\n{ \"status\" : \"Hold\" , \"answer\" : { \"sdp\" : \"v=0\\r\\n\" } }\n ",
                r#"{"status":"Hold","answer":{"sdp":"v=0\r\né\t\"\\😀"},"offer":{"sdp":"\"v=0\""}}"#,
            ]
            .map(String::from),
        );
        for body in &bodies {
            for policy in [SdpPolicy::Lenient, SdpPolicy::Strict] {
                let (fast, walked) = both(body, policy);
                match walked {
                    Ok(walked) => assert_eq!(fast.as_ref(), Some(&walked), "{body}"),
                    Err(_) => assert_eq!(fast, None, "{body}"),
                }
            }
            // The lenient policy accepts every one of them, so each took the fast path.
            assert!(
                read(body.as_bytes(), SdpPolicy::Lenient).is_some(),
                "{body}"
            );
        }
    }

    #[test]
    fn anything_else_is_left_to_the_walker() {
        let refused = [
            r#"{"status":null}"#,
            r#"{"status":7}"#,
            r#"{"status":"Sleeping"}"#,
            r#"{"status":"Terminated"}"#,
            r#"{"status":"Hold","answer":null}"#,
            r#"{"status":"Hold","answer":{"sdp":null}}"#,
            r#"{"status":"Hold","answer":{}}"#,
            r#"{"status":"Hold","answer":{"sdp":""}}"#,
            r#"{"status":"Hold","answer":{"sdp":"hello"}}"#,
            r#"{"status":"Hold","offer":{"sdp":"v=0\u0000"}}"#,
            r#"{"status":"Ringing","receiverName":null}"#,
            r#"{"status":"Ringing","locationDetails":{}}"#,
            r#"{"status":"Ringing","receiverSessionStatus":{"status":"Ringing"}}"#,
            r#"{"receiverSessionStatus":{"status":"Ringing"},"ReceiverSessionStatus":{"status":"Ringing"}}"#,
            r#"{"receiverSessionStatus":"Ringing"}"#,
            r#"{"receiverSessionStatus":null}"#,
            r#"{}"#,
            r#"[]"#,
            r#"{"status":"Ringing"} trailing"#,
            r#"{"status":"Ringing""#,
            // Trouble inside a member this path would skip.
            r#"{"status":"Ringing","x":"\ud800"}"#,
            r#"{"status":"Ringing","x":"\udc00\ud800"}"#,
            r#"{"status":"Ringing","x":1e999}"#,
            r#"{"status":"Ringing","x":-1e400}"#,
            r#"{"status":"Ringing","x":"\q"}"#,
            r#"{"status":"Ringing","x":"a	b"}"#,
            r#"{"status":"Ringing","x":[1,]}"#,
            r#"{"status":"Ringing","x":01}"#,
            r#"{"status":"Ringing","x":tru}"#,
        ];
        // Valid, but not a common shape: the walker reads them.
        let unusual = [
            r#"{"status":"Ringing","status":"Hold"}"#,
            r#"{"status":"Ringing","originatorAddress":"tel:+17085852753"}"#,
            r#"{"status":"Ringing","mediaSessionId":"x"}"#,
            r#"{"receiverSessionStatus":{"status":"Ringing","originatorName":"A"}}"#,
            r#"{"receiverSessionStatus":{"receiverSessionStatus":{},"status":"Ringing"}}"#,
            r#"{"status":"Hold","answer":{"sdp":"v=0\r\n"},"unknown":[1,{"a":null}]}"#,
            r#"{"receiverSessionStatus":{"status":"Connected","offer":{"sdp":"v=0\r\n","x":1}}}"#,
            r#"{"ReceiverSessionStatus":{"status":"Resume"},"elsewhere":null}"#,
            // SDP literals written otherwise than serde_json writes them.
            r#"{"status":"Hold","answer":{"sdp":"v=0\u000d\u000a\u00e9"}}"#,
            r#"{"status":"Hold","answer":{"sdp":"v=0\r\nu=http:\/\/x"}}"#,
            r#"{"status":"Hold","answer":{"sdp":"\u0076=0"}}"#,
            // Escapes where this path wants plain strings.
            r#"{"stat\u0075s":"Hold"}"#,
            r#"{"status":"H\u006fld"}"#,
        ];
        for (bodies, accepted) in [(&refused[..], false), (&unusual[..], true)] {
            for body in bodies {
                let (fast, walked) = both(body, SdpPolicy::Lenient);
                assert_eq!(fast, None, "{body}");
                assert_eq!(walked.is_ok(), accepted, "{body}: {walked:?}");
            }
        }
        let deep = format!(
            r#"{{"status":"Ringing","x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut not_utf8 = br#"{"status":"Ringing","x":""#.to_vec();
        not_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
        for body in [deep.as_bytes(), &not_utf8] {
            assert!(read(body, SdpPolicy::Lenient).is_none());
            assert!(json_object(body).is_err());
        }
    }

    /// Thousands of bodies a byte or two away from the common ones: whatever this path accepts,
    /// the walker accepts too, and reads the same way.
    #[test]
    fn mutated_bodies_are_never_read_otherwise_than_the_walker_reads_them() {
        // Bytes that matter to JSON, to the escapes, to UTF-8 and to the SDP checks.
        const BYTES: &[u8] =
            b"\"\\{}[],: \t\r\n/ubfnrt0v=aA\x00\x01\x1f\x7f\xc2\x85\xa0\xc3\xa9\xff";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut random = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let bodies = [
            seed("request-1-in-progress.json"),
            seed("request-4-hold.json"),
            r#"{"status":"Hold","answer":{"sdp":"v=0\r\n\"x\\y\té"}}"#.to_string(),
            r#"{"receiverSessionStatus":{"status":"Connected","offer":{"sdp":"\"v=0\""}}}"#
                .to_string(),
        ];
        let (mut fast_count, mut total) = (0, 0);
        for body in &bodies {
            for _ in 0..3_000 {
                let mut bytes = body.clone().into_bytes();
                for _ in 0..1 + random(2) {
                    let at = random(bytes.len());
                    let byte = BYTES[random(BYTES.len())];
                    match random(3) {
                        0 => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        _ => drop(bytes.remove(at)),
                    }
                }
                for policy in [SdpPolicy::Lenient, SdpPolicy::Strict] {
                    total += 1;
                    let Some(fast) = read(&bytes, policy) else {
                        continue;
                    };
                    fast_count += 1;
                    let walked =
                        json_object(&bytes).and_then(|map| StatusUpdate::parse(map, policy));
                    let shown = String::from_utf8_lossy(&bytes);
                    match walked {
                        Ok(walked) => {
                            assert_eq!(format!("{fast:?}"), format!("{walked:?}"), "{shown}")
                        }
                        Err(err) => panic!("read {shown} but the walker refuses it: {err:?}"),
                    }
                }
            }
        }
        // Many mutations land in an SDP and leave the body valid, so this path was exercised
        // (about a fifth of the reads here: the strict policy refuses most of these SDPs).
        assert!(fast_count * 10 > total, "{fast_count} of {total}");
    }
}
