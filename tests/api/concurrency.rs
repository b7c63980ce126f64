//! Racing PUTs (and a DELETE) at one session: every 200 is a legal move from the state it replaced,
//! no update is lost, and nothing lands after the DELETE. The `ETag` of each answer is the version it
//! created, which orders the winners.

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::*;

/// Is `to` a legal client move from `from`? (Written out here, independently of the service.)
fn legal(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("Connected", "Connected" | "Hold")
            | ("Hold", "Hold" | "Resume")
            | ("Resume", "Resume" | "Hold" | "Connected")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_puts_serialise_and_lose_nothing() {
    let app = spawn_app().await;
    let token = app.receiver_token();
    // Bring the fixture to Connected (versions 2 and 3).
    for status in ["Ringing", "Connected"] {
        json_ok(
            app.put_status(FIXTURE_ID, &json!({ "status": status }).to_string(), &token)
                .await,
        )
        .await;
    }
    let targets = ["Hold", "Resume", "Connected"];
    let mut tasks = Vec::new();
    for i in 0..300 {
        let client = app.client.clone();
        let url = app.status_url("/webrtc", FIXTURE_ID);
        let token = token.clone();
        let to = targets[i % targets.len()];
        tasks.push(tokio::spawn(async move {
            let response = client
                .put(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(json!({ "status": to }).to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let etag = etag_version(&response);
            let body: serde_json::Value = response.json().await.unwrap();
            (status, etag, to, body)
        }));
    }
    let mut winners = BTreeMap::new();
    let mut refused = 0;
    for task in tasks {
        let (status, etag, to, body) = task.await.unwrap();
        match status {
            200 => {
                assert_eq!(body["status"], to);
                let version = etag.expect("a 200 carries its version");
                assert!(
                    winners.insert(version, to).is_none(),
                    "two updates won version {version}"
                );
            }
            409 => {
                assert_eq!(body["code"], "INCOMPATIBLE_STATE");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // Versions 4.. are consecutive: each winner replaced exactly the one before it.
    let versions: Vec<u64> = winners.keys().copied().collect();
    assert_eq!(versions, (4..4 + winners.len() as u64).collect::<Vec<_>>());
    let mut previous = "Connected";
    for (version, to) in &winners {
        assert!(
            legal(previous, to),
            "version {version}: {previous} -> {to} is not a legal move"
        );
        previous = to;
    }
    assert_eq!(winners.len() + refused, 300);
    assert!(
        winners.len() > 1 && refused > 0,
        "the race should produce both outcomes"
    );
    // The stored session is the last winner's state, at the last version.
    let response = app.get_session(FIXTURE_ID, &token).await;
    assert_eq!(
        response.headers()["etag"],
        format!("\"{}\"", 3 + winners.len()).as_str()
    );
    assert_eq!(json_ok(response).await["status"], previous);
}

/// A DELETE racing 100 PUTs: each PUT either lands before the DELETE (200) or finds the session
/// gone (404); none lands after it, and the stored version counts every write exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_puts_is_never_overwritten() {
    let app = spawn_app().await;
    let token = app.app_token(RECEIVER, "racing-app");
    for status in ["Ringing", "Connected"] {
        let body = json!({ "status": status }).to_string();
        json_ok(app.put_status(FIXTURE_ID, &body, &token).await).await;
    }
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = app.client.clone();
        let token = token.clone();
        let (url, delete) = if i == 50 {
            (app.url(&format!("/webrtc/sessions/{FIXTURE_ID}")), true)
        } else {
            (app.status_url("/webrtc", FIXTURE_ID), false)
        };
        tasks.push(tokio::spawn(async move {
            let request = if delete {
                client.delete(url)
            } else {
                client.put(url).json(&json!({ "status": "Connected" }))
            };
            let response = request.bearer_auth(token).send().await.unwrap();
            (delete, response.status().as_u16())
        }));
    }
    let mut puts_won = 0;
    for task in tasks {
        match task.await.unwrap() {
            (true, status) => assert_eq!(status, 204, "the DELETE"),
            (false, 200) => puts_won += 1,
            (false, status) => assert_eq!(status, 404, "a PUT after the DELETE"),
        }
    }
    let id = camara_webrtc::domain::SessionId::parse(FIXTURE_ID).unwrap();
    let stored = app.state.store.get(&id).await.unwrap().unwrap();
    assert!(stored.session.ended);
    assert_eq!(stored.session.status.as_str(), "Terminated");
    // Initial (1), Ringing, Connected, each winning PUT, and the DELETE.
    assert_eq!(stored.version, 3 + puts_won + 1);
}
