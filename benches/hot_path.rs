//! The pieces of `PUT /status` on their own: reading and checking the body, verifying the token
//! (HS256 and ES256, with and without the verified-token cache), and the state machine.
//! `cargo bench`; the whole request under load is `scripts/loadtest.sh`.

use std::hint::black_box;
use std::path::PathBuf;

use camara_webrtc::auth::{TokenSpec, Verifier, mint, mint_with_private_key};
use camara_webrtc::config::Config;
use camara_webrtc::domain::{Sdp, SdpPolicy, SessionStatus, StatusChange};
use camara_webrtc::http::{StatusBody, read_json};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::Algorithm;

fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// The seed's Hold example (785 bytes of SDP) and its InProgress one (double-encoded SDP).
fn body(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    for (name, file, policy) in [
        (
            "hold/lenient",
            "seed/request-4-hold.json",
            SdpPolicy::Lenient,
        ),
        ("hold/strict", "seed/request-4-hold.json", SdpPolicy::Strict),
        (
            "in-progress/lenient",
            "seed/request-1-in-progress.json",
            SdpPolicy::Lenient,
        ),
    ] {
        let raw = std::fs::read(fixture(file)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let body: StatusBody = read_json(black_box(&raw)).unwrap();
                body.check(policy).unwrap()
            })
        });
    }
    group.finish();
}

/// Token verification, full and from the cache.
fn tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("token");
    let mut config = Config::embedded();
    config.auth.public_keys = vec![fixture("keys/ec256-public.pem")];
    let scope = "webrtc-call-handling:sessions:write";
    let hs256 = mint(&config.auth, "tel:+17085854000", scope, None, 3600).unwrap();
    let spec = TokenSpec {
        sub: "tel:+17085854000",
        scope,
        client_id: None,
        ttl_seconds: 3600,
    };
    let es256 = mint_with_private_key(
        &fixture("keys/ec256-private.pem"),
        Algorithm::ES256,
        &config.auth,
        &spec,
    )
    .unwrap();
    for (cache, size) in [("uncached", 0), ("cached", 10_000)] {
        config.auth.token_cache_size = size;
        let verifier = Verifier::from_config(&config.auth).unwrap();
        for (alg, token) in [("hs256", &hs256), ("es256", &es256)] {
            group.bench_function(format!("{alg}/{cache}"), |b| {
                b.iter(|| verifier.verify(black_box(token)).unwrap())
            });
        }
    }
    // Past its capacity: a stream of distinct tokens, each a miss that is verified in full and
    // inserted in a full cache. Compare with hs256/uncached: the cache must add little.
    let distinct: Vec<String> = (0..100_000)
        .map(|i| mint(&config.auth, &format!("client-{i}"), scope, None, 3600).unwrap())
        .collect();
    let verifier = Verifier::from_config(&config.auth).unwrap();
    let mut stream = distinct.iter().cycle();
    group.bench_function("hs256/distinct-past-capacity", |b| {
        b.iter(|| verifier.verify(black_box(stream.next().unwrap())).unwrap())
    });
    group.finish();
}

/// The transition table and applying a change to a session.
fn transition(c: &mut Criterion) {
    let mut group = c.benchmark_group("transition");
    group.bench_function("table", |b| {
        b.iter(|| {
            for from in SessionStatus::ALL {
                let _ = black_box(from).client_transition(black_box(SessionStatus::Hold));
            }
        })
    });
    let mut session = Config::embedded().fixture_sessions().unwrap().remove(0);
    session.status = SessionStatus::Hold;
    let raw = std::fs::read(fixture("seed/request-4-hold.json")).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let sdp = body["ReceiverSessionStatus"]["answer"]["sdp"]
        .as_str()
        .unwrap();
    let change = StatusChange {
        status: SessionStatus::Hold,
        offer: None,
        answer: Some(Sdp::parse(sdp.to_owned(), SdpPolicy::Lenient).unwrap()),
        location: None,
    };
    group.bench_function("apply/hold-with-answer", |b| {
        b.iter(|| black_box(&session).apply(black_box(&change)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, body, tokens, transition);
criterion_main!(benches);
