//! The fast path for PUT bodies: the shapes clients send on every call (`status`, perhaps `offer`
//! or `answer`, flat or in the seed's `receiverSessionStatus` envelope) read by serde straight
//! into typed values, instead of a `serde_json::Value` tree walked field by field.
//!
//! It only ever accepts: any body it is unsure of (any other member, a `null`, a duplicate key,
//! an unknown status, an SDP the policy refuses, ...) gives `None`, and the field walker in
//! [`super::StatusUpdate::parse`] reads it again, so what a body means and every message naming a
//! field come from one place. A test holds the two paths to the same result.

use serde::Deserialize;
use serde::de::Deserializer;

use super::{Envelope, Parties, StatusUpdate};
use crate::domain::{Sdp, SdpPolicy, SessionStatus, StatusChange};

/// A member that was present: its value, which `null` never is.
#[derive(Default)]
enum Member<T> {
    #[default]
    Absent,
    Present(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Member<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::Present)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Descriptor {
    sdp: String,
}

/// The members of the common shapes, and no others: a body with any other member (a party, a
/// location, a name, or one the API does not know) is not read here. Every value accepted is
/// therefore one serde_json has fully parsed and checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Body {
    #[serde(default)]
    status: Member<String>,
    #[serde(default)]
    offer: Member<Descriptor>,
    #[serde(default)]
    answer: Member<Descriptor>,
    #[serde(default)]
    receiver_session_status: Member<Box<Body>>,
    #[serde(default, rename = "ReceiverSessionStatus")]
    receiver_session_status_upper: Member<Box<Body>>,
}

fn sdp(member: Member<Descriptor>, policy: SdpPolicy) -> Option<Option<Sdp>> {
    match member {
        Member::Absent => Some(None),
        Member::Present(descriptor) => Sdp::parse(descriptor.sdp, policy).ok().map(Some),
    }
}

/// The update `body` asks for, when it is one of the common shapes and valid; else `None`.
pub fn read(body: &[u8], policy: SdpPolicy) -> Option<StatusUpdate> {
    use Member::{Absent, Present};
    // The whole body is checked as UTF-8 once, so serde_json reads it as text (and nothing it
    // might skip could hide bad bytes).
    let text = std::str::from_utf8(body).ok()?;
    let mut top: Body = serde_json::from_str(text).ok()?;
    let (envelope, fields) = match (
        std::mem::take(&mut top.receiver_session_status),
        std::mem::take(&mut top.receiver_session_status_upper),
        &top.status,
    ) {
        (Absent, Absent, Present(_)) => (Envelope::Flat, top),
        (Present(inner), Absent, Absent) => (Envelope::Receiver("receiverSessionStatus"), *inner),
        (Absent, Present(inner), Absent) => (Envelope::Receiver("ReceiverSessionStatus"), *inner),
        _ => return None,
    };
    let nested = !matches!(fields.receiver_session_status, Absent)
        || !matches!(fields.receiver_session_status_upper, Absent);
    if nested {
        return None;
    }
    let Present(status) = fields.status else {
        return None;
    };
    let status: SessionStatus = status.parse().ok()?;
    if !status.is_client_settable() {
        return None;
    }
    Some(StatusUpdate {
        envelope,
        change: StatusChange {
            status,
            offer: sdp(fields.offer, policy)?,
            answer: sdp(fields.answer, policy)?,
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
                r#"{"status":"Hold","answer":{"sdp":"v=0\u000d\u000a\u00e9"}}"#,
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
}
