//! SDP answers the simulated network generates for an offer (DESIGN §12, RFC 3264 §6): one m=
//! line per offered m= line, in order; a codec the offer lists (its first that carries media,
//! with its rtpmap, fmtp and rtcp-fb lines, and telephone-event at the same clock rate when
//! offered); the direction mirrored; `a=mid` and the BUNDLE group mirrored; `a=rtcp-mux` when
//! offered; fresh ICE credentials; a `sha-256` fingerprint with `a=setup:active` for `actpass`
//! (or SDES `a=crypto` with a fresh key when the offer uses SDES); a data channel answered in
//! kind. A section the offer rejected (port 0) is rejected again.
//!
//! Pure: the randomness (session id, ICE credentials, fingerprint, keys) comes from the caller's
//! [`Nonce`].

use std::fmt::Write;

/// The random bytes one answer uses (it takes 112).
pub type Nonce = [u8; 128];

/// The direction attributes (RFC 4566 §6).
const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

/// Formats that carry no media of their own: never the chosen codec.
const NOT_MEDIA: [&str; 7] = [
    "rtx",
    "red",
    "ulpfec",
    "flexfec-03",
    "telephone-event",
    "cn",
    "comfort-noise",
];

/// The SDES suites answered: those with a 30-byte key and salt.
const SDES_SUITES: [&str; 2] = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];

/// Why no answer can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the offer has no media section")]
    NoMedia,
    #[error("media section {0} lists no format")]
    NoFormat(usize),
}

/// One offered media section, as much of it as the answer needs.
#[derive(Debug, Default)]
struct Offered<'a> {
    kind: &'a str,
    port: &'a str,
    proto: &'a str,
    formats: Vec<&'a str>,
    attributes: Vec<(&'a str, &'a str)>,
}

impl<'a> Offered<'a> {
    fn attribute(&self, name: &str) -> Option<&'a str> {
        (self.attributes.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn has(&self, name: &str) -> bool {
        self.attributes.iter().any(|(n, _)| *n == name)
    }

    /// Rejected by the offerer: port 0, unless it is `bundle-only` (RFC 8843: port 0 there
    /// means "only within the BUNDLE group", and the section is offered).
    fn rejected(&self) -> bool {
        self.port == "0" && !self.has("bundle-only")
    }

    /// The encoding name of payload type `pt` (`opus`), from its rtpmap.
    fn encoding(&self, pt: &str) -> Option<&'a str> {
        (self.attributes.iter())
            .filter(|(n, _)| *n == "rtpmap")
            .find_map(|(_, v)| v.strip_prefix(pt)?.strip_prefix(' '))
            .and_then(|e| e.split('/').next())
    }

    /// The clock rate of payload type `pt`, from its rtpmap.
    fn clock(&self, pt: &str) -> Option<&'a str> {
        (self.attributes.iter())
            .filter(|(n, _)| *n == "rtpmap")
            .find_map(|(_, v)| v.strip_prefix(pt)?.strip_prefix(' '))
            .and_then(|e| e.split('/').nth(1))
    }

    /// The formats the answer keeps: the first that carries media, and telephone-event at its
    /// clock rate when offered.
    fn chosen(&self) -> Vec<&'a str> {
        let media = (self.formats.iter()).find(|pt| {
            self.encoding(pt)
                .is_none_or(|e| !NOT_MEDIA.contains(&e.to_ascii_lowercase().as_str()))
        });
        let Some(media) = media.or(self.formats.first()) else {
            return Vec::new();
        };
        let mut chosen = vec![*media];
        if self.proto.contains("RTP") {
            let clock = self.clock(media);
            let events = (self.formats.iter()).find(|pt| {
                self.encoding(pt)
                    .is_some_and(|e| e.eq_ignore_ascii_case("telephone-event"))
                    && self.clock(pt) == clock
            });
            chosen.extend(events.filter(|pt| *pt != media));
        }
        chosen
    }
}

/// The offer's session-level attributes and media sections.
fn read(offer: &str) -> (Vec<(&str, &str)>, Vec<Offered<'_>>) {
    let mut session = Vec::new();
    let mut media: Vec<Offered<'_>> = Vec::new();
    for line in offer.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split(' ');
            media.push(Offered {
                kind: parts.next().unwrap_or(""),
                port: parts.next().unwrap_or(""),
                proto: parts.next().unwrap_or(""),
                formats: parts.filter(|f| !f.is_empty()).collect(),
                attributes: Vec::new(),
            });
        } else if let Some(a) = line.strip_prefix("a=") {
            let attribute = a.split_once(':').unwrap_or((a, ""));
            match media.last_mut() {
                Some(section) => section.attributes.push(attribute),
                None => session.push(attribute),
            }
        }
    }
    (session, media)
}

/// Takes bytes from the nonce in order.
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        *self.0.next().unwrap_or(&0)
    }

    /// `n` ICE characters (`[A-Za-z0-9+/]`, RFC 8839).
    fn ice(&mut self, n: usize) -> String {
        const ICE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n)
            .map(|_| char::from(ICE[usize::from(self.next() % 64)]))
            .collect()
    }
}

/// The answer to `offer`, its randomness from `nonce`.
pub fn answer(offer: &str, nonce: &Nonce) -> Result<String, AnswerError> {
    let (session, media) = read(offer);
    if media.is_empty() {
        return Err(AnswerError::NoMedia);
    }
    let mut random = Bytes(nonce.iter());
    let session_id = (0..8).fold(0u64, |id, _| (id << 8) | u64::from(random.next())) >> 2;
    let ufrag = random.ice(8);
    let pwd = random.ice(24);
    let mut fingerprint = String::from("sha-256 ");
    for i in 0..32 {
        let separator = if i == 0 { "" } else { ":" };
        let _ = write!(fingerprint, "{separator}{:02X}", random.next());
    }
    let key = random.ice(40);
    let session_setup = session.iter().find(|(n, _)| *n == "setup").map(|(_, v)| *v);
    let session_fingerprint = session.iter().any(|(n, _)| *n == "fingerprint");
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "v=0\r\no=- {session_id} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    );
    let accepted_mids: Vec<&str> = (media.iter())
        .filter(|m| !m.rejected())
        .filter_map(|m| m.attribute("mid"))
        .collect();
    // Every BUNDLE group, with the mids the answer accepts.
    let groups = (session.iter()).filter(|(n, v)| *n == "group" && v.starts_with("BUNDLE "));
    for (_, group) in groups {
        let bundled: Vec<&str> = (group.split(' ').skip(1))
            .filter(|mid| accepted_mids.contains(mid))
            .collect();
        if !bundled.is_empty() {
            let _ = write!(out, "a=group:BUNDLE {}\r\n", bundled.join(" "));
        }
    }
    // A media section without a direction of its own takes the session's (RFC 4566 §6).
    let session_direction = DIRECTIONS
        .into_iter()
        .find(|d| session.iter().any(|(n, _)| n == d));
    for (index, section) in media.iter().enumerate() {
        let first = *section
            .formats
            .first()
            .ok_or(AnswerError::NoFormat(index + 1))?;
        if section.rejected() {
            let _ = write!(
                out,
                "m={} 0 {} {first}\r\nc=IN IP4 0.0.0.0\r\n",
                section.kind, section.proto
            );
            if let Some(mid) = section.attribute("mid") {
                let _ = write!(out, "a=mid:{mid}\r\n");
            }
            continue;
        }
        let data = !section.proto.contains("RTP");
        let chosen = if data { vec![first] } else { section.chosen() };
        let _ = write!(
            out,
            "m={} 9 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
            section.kind,
            section.proto,
            chosen.join(" ")
        );
        if !data {
            out.push_str("a=rtcp:9 IN IP4 0.0.0.0\r\n");
        }
        let _ = write!(out, "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
        let dtls =
            section.has("fingerprint") || session_fingerprint || section.proto.contains("DTLS");
        if dtls {
            let setup = match section.attribute("setup").or(session_setup) {
                Some("active") => "passive",
                _ => "active",
            };
            let _ = write!(out, "a=fingerprint:{fingerprint}\r\na=setup:{setup}\r\n");
        }
        if let Some(mid) = section.attribute("mid") {
            let _ = write!(out, "a=mid:{mid}\r\n");
        }
        if data {
            if let Some(port) = section.attribute("sctp-port") {
                let _ = write!(out, "a=sctp-port:{port}\r\n");
            }
            if let Some(size) = section.attribute("max-message-size") {
                let _ = write!(out, "a=max-message-size:{size}\r\n");
            }
            // The data channel's older form (`DTLS/SCTP 5000` with its sctpmap).
            if let Some(map) = section.attribute("sctpmap") {
                let _ = write!(out, "a=sctpmap:{map}\r\n");
            }
            continue;
        }
        let direction = (DIRECTIONS.into_iter())
            .find(|d| section.has(d))
            .or(session_direction)
            .unwrap_or("sendrecv");
        let mirrored = match direction {
            "sendonly" => "recvonly",
            "recvonly" => "sendonly",
            other => other,
        };
        let _ = write!(out, "a={mirrored}\r\n");
        if section.has("rtcp-mux") {
            out.push_str("a=rtcp-mux\r\n");
        }
        if !dtls {
            // SDES: the offer's first crypto line of a suite whose key and salt are 30 bytes
            // (40 base64 characters), answered with its tag and a key of our own.
            let crypto = (section.attributes.iter())
                .filter(|(n, _)| *n == "crypto")
                .filter_map(|(_, v)| {
                    let mut parts = v.split(' ');
                    Some((parts.next()?, parts.next()?))
                })
                .find(|(_, suite)| SDES_SUITES.contains(suite));
            if let Some((tag, suite)) = crypto {
                let _ = write!(out, "a=crypto:{tag} {suite} inline:{key}\r\n");
            }
        }
        for pt in &chosen {
            for name in ["rtpmap", "fmtp", "rtcp-fb"] {
                let lines = (section.attributes.iter()).filter(|(n, v)| {
                    *n == name && v.strip_prefix(pt).is_some_and(|rest| rest.starts_with(' '))
                });
                for (_, value) in lines {
                    let _ = write!(out, "a={name}:{value}\r\n");
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Sdp, SdpPolicy};

    fn nonce() -> Nonce {
        let mut nonce = [0u8; 128];
        for (i, b) in nonce.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        nonce
    }

    /// Chromium's offer for one audio, one video track and a data channel (trimmed of
    /// extensions), as `createOffer` makes it.
    const CHROMIUM_OFFER: &str = "v=0\r\no=- 4215925734385716003 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:q7Lz\r\na=ice-pwd:JxRGdD2b3Hzn8q2tSU5fq7cL\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:q7Lz\r\na=ice-pwd:JxRGdD2b3Hzn8q2tSU5fq7cL\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:actpass\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:q7Lz\r\na=ice-pwd:JxRGdD2b3Hzn8q2tSU5fq7cL\r\na=ice-options:trickle\r\na=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:actpass\r\na=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

    #[test]
    fn a_browser_offer_gets_an_answer_line_for_line() {
        let answer = answer(CHROMIUM_OFFER, &nonce()).unwrap();
        let expected = "v=0\r\no=- 201559579613542979 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n";
        assert!(answer.starts_with(expected), "{answer}");
        // Every offered section answered in order, mirrored, with the chosen codecs only.
        let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m_lines,
            [
                "m=audio 9 UDP/TLS/RTP/SAVPF 111 110",
                "m=video 9 UDP/TLS/RTP/SAVPF 96",
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel"
            ]
        );
        for line in [
            "a=setup:active",
            "a=mid:0",
            "a=mid:1",
            "a=mid:2",
            "a=sendrecv",
            "a=sendonly",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtcp-fb:111 transport-cc",
            "a=rtpmap:110 telephone-event/48000",
            "a=rtcp-fb:96 nack",
            "a=sctp-port:5000",
            "a=max-message-size:262144",
        ] {
            assert!(answer.lines().any(|l| l == line), "{line} in {answer}");
        }
        for absent in [
            "a=rtpmap:97 rtx/90000",
            "a=rtpmap:63 red/48000/2",
            "a=setup:actpass",
        ] {
            assert!(!answer.lines().any(|l| l == absent), "{absent} in {answer}");
        }
        // Fresh credentials, the same in every section (one BUNDLE transport).
        let ufrags: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("a=ice-ufrag:"))
            .collect();
        assert_eq!(ufrags.len(), 3);
        assert!(
            ufrags
                .iter()
                .all(|u| *u == ufrags[0] && *u != "a=ice-ufrag:q7Lz")
        );
        assert!(Sdp::parse(answer, SdpPolicy::Strict).is_ok());
    }

    #[test]
    fn the_seed_and_fixture_offers_get_sdes_answers_that_pass_the_strict_check() {
        let config = crate::Config::embedded();
        let offer = config.fixtures.sessions[0].offer_sdp.clone();
        let answer = answer(&offer, &nonce()).unwrap();
        assert!(
            answer.contains("m=audio 9 RTP/SAVPF 102 113\r\n"),
            "{answer}"
        );
        let key = (answer.lines())
            .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
            .unwrap_or_else(|| panic!("{answer}"));
        assert_eq!(key.len(), 40);
        assert!(!key.contains("AAAAAAAA"), "every character random: {key}");
        assert!(
            !answer.contains("Xm3YciqVIWFNSwy19e9MvfZ2YOdAZil7oT"),
            "a key of its own"
        );
        assert!(!answer.contains("a=fingerprint"), "SDES, not DTLS");
        assert!(Sdp::parse(answer, SdpPolicy::Strict).is_ok());
    }

    /// A session-level direction applies to sections without their own; every BUNDLE group is
    /// mirrored; a `bundle-only` section (port 0) is answered, not rejected; a data channel in
    /// its older form keeps its sctpmap.
    #[test]
    fn session_directions_groups_bundle_only_and_sctpmap_are_answered() {
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a v\r\na=group:BUNDLE d\r\na=sendonly\r\n\
m=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=mid:a\r\n\
m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=mid:v\r\na=bundle-only\r\na=rtpmap:96 VP8/90000\r\na=inactive\r\n\
m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\na=mid:d\r\na=sctpmap:5000 webrtc-datachannel 1024\r\n";
        let answer = answer(offer, &nonce()).unwrap();
        let lines: Vec<&str> = answer.lines().collect();
        for line in [
            "a=group:BUNDLE a v",
            "a=group:BUNDLE d",
            "m=audio 9 RTP/AVP 0",
            "a=recvonly",
            "m=video 9 RTP/AVP 96",
            "a=inactive",
            "m=application 9 DTLS/SCTP 5000",
            "a=sctpmap:5000 webrtc-datachannel 1024",
        ] {
            assert!(lines.contains(&line), "{line} in {answer}");
        }
        assert!(!answer.contains("m=video 0"), "{answer}");
        assert!(Sdp::parse(answer, SdpPolicy::Strict).is_ok());
    }

    #[test]
    fn a_rejected_section_stays_rejected_and_directions_mirror() {
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\nm=video 0 RTP/AVP 31\r\nc=IN IP4 0.0.0.0\r\n";
        let answer = answer(offer, &nonce()).unwrap();
        assert!(
            answer.contains("m=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=recvonly\r\n"), "{answer}");
        assert!(answer.contains("m=video 0 RTP/AVP 31\r\n"), "{answer}");
        assert!(Sdp::parse(answer, SdpPolicy::Strict).is_ok());
        assert_eq!(
            super::answer(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
                &nonce()
            ),
            Err(AnswerError::NoMedia)
        );
    }
}
