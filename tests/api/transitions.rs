//! The 15 × 15 grid of (from, to) status pairs, over HTTP, against a table written out here
//! independently of the service's own.

use camara_webrtc::config::{Config, FixtureSession};
use camara_webrtc::domain::{Direction, SessionStatus};
use serde_json::json;

use crate::helpers::*;

/// What a client PUT of each target status gets from each current status:
/// `2` = 200, `9` = 409 INCOMPATIBLE_STATE, `4` = 400 OUT_OF_RANGE (network-only target).
/// Columns and rows in CAMARA's enum order:
/// Initial InProgress Ringing Proceeding Connected Terminated Hold Resume SessionCancelled Declined
/// Failed Waiting NoAnswer NotReachable Busy.
const EXPECTED: [(&str, [u8; 15]); 15] = [
    ("Initial", [4, 2, 2, 4, 2, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("InProgress", [4, 2, 2, 4, 2, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Ringing", [4, 2, 2, 4, 2, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Proceeding", [4, 2, 2, 4, 2, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Connected", [4, 9, 9, 4, 2, 4, 2, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Terminated", [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Hold", [4, 9, 9, 4, 9, 4, 2, 2, 4, 4, 4, 4, 4, 4, 4]),
    ("Resume", [4, 9, 9, 4, 2, 4, 2, 2, 4, 4, 4, 4, 4, 4, 4]),
    (
        "SessionCancelled",
        [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4],
    ),
    ("Declined", [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Failed", [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("Waiting", [4, 2, 2, 4, 2, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    ("NoAnswer", [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
    (
        "NotReachable",
        [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4],
    ),
    ("Busy", [4, 9, 9, 4, 9, 4, 9, 9, 4, 4, 4, 4, 4, 4, 4]),
];

/// One fixture session per (from, to) pair, so every PUT starts from a fresh `from`.
fn grid_config() -> Config {
    let mut config = Config::embedded();
    let template = config.fixtures.sessions[0].clone();
    config.fixtures.sessions = SessionStatus::ALL
        .iter()
        .flat_map(|from| SessionStatus::ALL.iter().map(move |to| (*from, *to)))
        .map(|(from, to)| FixtureSession {
            media_session_id: format!("grid-{from}-{to}"),
            status: from,
            direction: Direction::Incoming,
            ..template.clone()
        })
        .collect();
    config
}

#[tokio::test]
async fn every_from_to_pair_of_the_grid_answers_as_the_table_says() {
    let app = spawn_with(grid_config()).await;
    let token = app.receiver_token();
    let mut checked = 0;
    for (row, (from, expected_row)) in EXPECTED.iter().enumerate() {
        assert_eq!(SessionStatus::ALL[row].as_str(), *from);
        for (column, expected) in expected_row.iter().enumerate() {
            let to = SessionStatus::ALL[column].as_str();
            let id = format!("grid-{from}-{to}");
            let body = json!({ "status": to }).to_string();
            let response = app.put_status(&id, &body, &token).await;
            match expected {
                2 => {
                    let got = json_ok(response).await;
                    assert_eq!(got["status"], to, "{from} -> {to}");
                    let stored = json_ok(app.get_session(&id, &token).await).await;
                    assert_eq!(stored["status"], to, "{from} -> {to} stored");
                }
                9 => {
                    let message = format!("session status {from} cannot change to {to}");
                    assert_error(response, 409, "INCOMPATIBLE_STATE", &message).await;
                    let stored = json_ok(app.get_session(&id, &token).await).await;
                    assert_eq!(
                        stored["status"], *from,
                        "{from} -> {to} must leave the session untouched"
                    );
                }
                _ => {
                    let message =
                        format!("status {to} is set by the network; use DELETE to end a session.");
                    assert_error(response, 400, "OUT_OF_RANGE", &message).await;
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 225);
}

/// What a network move to each target status gets from each current status, through the admin
/// API: `2` = 200, `9` = 409 INCOMPATIBLE_STATE. Same order as [`EXPECTED`]; DESIGN §12: before
/// Connected anything but Initial, Terminated, Hold and Resume; from Connected, Hold or Resume,
/// Hold, Resume, Connected or Terminated; terminal statuses never move.
const NETWORK: [(&str, [u8; 15]); 15] = [
    ("Initial", [9, 2, 2, 2, 2, 9, 9, 9, 2, 2, 2, 2, 2, 2, 2]),
    ("InProgress", [9, 2, 2, 2, 2, 9, 9, 9, 2, 2, 2, 2, 2, 2, 2]),
    ("Ringing", [9, 2, 2, 2, 2, 9, 9, 9, 2, 2, 2, 2, 2, 2, 2]),
    ("Proceeding", [9, 2, 2, 2, 2, 9, 9, 9, 2, 2, 2, 2, 2, 2, 2]),
    ("Connected", [9, 9, 9, 9, 2, 2, 2, 2, 9, 9, 9, 9, 9, 9, 9]),
    ("Terminated", [9; 15]),
    ("Hold", [9, 9, 9, 9, 2, 2, 2, 2, 9, 9, 9, 9, 9, 9, 9]),
    ("Resume", [9, 9, 9, 9, 2, 2, 2, 2, 9, 9, 9, 9, 9, 9, 9]),
    ("SessionCancelled", [9; 15]),
    ("Declined", [9; 15]),
    ("Failed", [9; 15]),
    ("Waiting", [9, 2, 2, 2, 2, 9, 9, 9, 2, 2, 2, 2, 2, 2, 2]),
    ("NoAnswer", [9; 15]),
    ("NotReachable", [9; 15]),
    ("Busy", [9; 15]),
];

#[tokio::test]
async fn every_from_to_pair_of_the_network_grid_answers_as_its_table_says() {
    let app = spawn_with(grid_config()).await;
    let admin = app.admin_token();
    let token = app.receiver_token();
    let mut checked = 0;
    for (row, (from, expected_row)) in NETWORK.iter().enumerate() {
        assert_eq!(SessionStatus::ALL[row].as_str(), *from);
        for (column, expected) in expected_row.iter().enumerate() {
            let to = SessionStatus::ALL[column].as_str();
            let id = format!("grid-{from}-{to}");
            let response = app
                .client
                .post(app.url(&format!("/network/v1/sessions/{id}/events")))
                .bearer_auth(&admin)
                .json(&json!({ "status": to }))
                .send()
                .await
                .unwrap();
            let stored = if *expected == 2 {
                let got = json_ok(response).await;
                assert_eq!(got["status"], to, "{from} -> {to}");
                to
            } else {
                let message = format!("session status {from} cannot change to {to}");
                assert_error(response, 409, "INCOMPATIBLE_STATE", &message).await;
                from
            };
            let read = json_ok(app.get_session(&id, &token).await).await;
            assert_eq!(read["status"], stored, "{from} -> {to} stored");
            checked += 1;
        }
    }
    assert_eq!(checked, 225);
}
