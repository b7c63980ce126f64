//! The strict check's examples, and properties over generated WebRTC bodies.

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};

use super::*;
use crate::domain::sdp::tests::CLEAN;

#[test]
fn strict_accepts_a_clean_webrtc_body() {
    assert_eq!(check(CLEAN), Ok(()));
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
        match check(body) {
            Err(SdpError::Grammar { line: got, .. }) => assert_eq!(got, line, "{body:?}"),
            other => panic!("{body:?}: {other:?}"),
        }
    }
}

/// One media section of a valid body: m=, its own c=, ICE credentials, an rtpmap per format.
fn media_section() -> impl Strategy<Value = Vec<String>> {
    (
        select(vec!["audio", "video"]),
        any::<u16>(),
        btree_set(0u8..=127, 1..4),
        "[A-Za-z0-9-]{1,12}",
        select(vec![8000u32, 16000, 48000, 90000]),
        select(vec!["IN IP4 192.0.2.1", "IN IP6 2001:db8::1"]),
        "[A-Za-z0-9+/]{4,32}",
        "[A-Za-z0-9+/]{22,40}",
    )
        .prop_map(
            |(kind, port, types, encoding, clock, address, ufrag, pwd)| {
                let formats: Vec<String> = types.iter().map(u8::to_string).collect();
                let mut lines = vec![
                    format!("m={kind} {port} UDP/TLS/RTP/SAVPF {}", formats.join(" ")),
                    format!("c={address}"),
                    format!("a=ice-ufrag:{ufrag}"),
                    format!("a=ice-pwd:{pwd}"),
                    "a=rtcp-mux".to_string(),
                ];
                lines.extend(
                    formats
                        .iter()
                        .map(|pt| format!("a=rtpmap:{pt} {encoding}/{clock}")),
                );
                lines
            },
        )
}

/// The lines of a valid body, and the line ending it is written with.
fn valid_body() -> impl Strategy<Value = (Vec<String>, &'static str)> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
        vec(media_section(), 1..4),
        select(vec!["\r\n", "\n"]),
    )
        .prop_map(|(id, version, bundle, media, eol)| {
            let mut lines = vec![
                "v=0".to_string(),
                format!("o=- {id} {version} IN IP4 127.0.0.1"),
                "s=-".to_string(),
                "t=0 0".to_string(),
            ];
            if bundle {
                lines.push("a=group:BUNDLE 0".to_string());
            }
            lines.extend(media.into_iter().flatten());
            (lines, eol)
        })
}

fn write(lines: &[String], eol: &str) -> String {
    lines.iter().flat_map(|line| [line.as_str(), eol]).collect()
}

fn error_line(body: &str) -> Option<usize> {
    match check(body) {
        Err(SdpError::Grammar { line, .. }) => Some(line),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_valid_body_is_accepted((lines, eol) in valid_body()) {
        prop_assert_eq!(check(&write(&lines, eol)), Ok(()));
    }

    /// v=, o=, s=, t=, each m= and each c= (no media section relies on a session-level c=).
    #[test]
    fn removing_a_mandatory_line_names_a_line_of_the_body(
        (mut lines, eol) in valid_body(),
        pick in any::<Index>(),
    ) {
        let mandatory: Vec<usize> = (0..lines.len())
            .filter(|&i| i < 4 || lines[i].starts_with("m=") || lines[i].starts_with("c="))
            .collect();
        lines.remove(*pick.get(&mandatory));
        let line = error_line(&write(&lines, eol));
        let within = line.is_some_and(|line| (1..=lines.len()).contains(&line));
        prop_assert!(within, "{:?}", line);
    }

    /// A line that is not `<type>=<value>` is named exactly.
    #[test]
    fn a_corrupt_line_is_named(
        (mut lines, eol) in valid_body(),
        pick in any::<Index>(),
        corrupt in prop_oneof!["[A-Z0-9 =:/]{1,12}", "[a-z][a-z0-9 :/]{0,12}"],
    ) {
        let at = pick.index(lines.len());
        lines[at] = corrupt;
        prop_assert_eq!(error_line(&write(&lines, eol)), Some(at + 1));
    }

    /// On any text, and on text made of `<type>=<value>` lines that reach the deeper checks.
    #[test]
    fn the_check_never_panics(
        raw in prop_oneof![any::<String>(), "([a-z]=[ -~]{0,16}\r?\n){0,10}"],
    ) {
        let _ = check(&raw);
    }
}
