//! The console in a real browser: `tests/node/console.mjs` drives Debian's headless Chromium
//! (playwright-core, 360 px wide, with the keyboard) through `/console` while this test makes a
//! call through the API: the call appears live, Ringing and Connected are pressed, and the
//! session, its timeline and its sink's deliveries change on the page as they did at the sink;
//! then the page's form places an incoming call to the registered receiver.
//! A screenshot of each state is written under the test's target directory; a failure lists them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::*;

const TEST: &str = "the_console_shows_a_call_live_and_plays_the_network";

/// A hang guard only: each step is done as soon as the page shows it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// `console.mjs`, running: what it says comes line by line from a thread of its own, so the
/// runtime goes on serving the app meanwhile.
struct Driver {
    child: Child,
    input: ChildStdin,
    said: mpsc::UnboundedReceiver<String>,
    shots: PathBuf,
}

impl Driver {
    fn start(address: &str, token: &str, chromium: &Path, shots: &Path) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
        let mut child = Command::new("node")
            .arg("console.mjs")
            .current_dir(&dir)
            .env("BASE", address)
            .env("TOKEN", token)
            .env("CHROMIUM", chromium)
            .env("SHOTS", shots)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (Node.js 20) runs tests/node/console.mjs");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let (tell, said) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in output.lines() {
                let Ok(line) = line else { return };
                if tell.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            input,
            said,
            shots: shots.to_owned(),
        }
    }

    /// The screenshots written so far, for a failure's message.
    fn screenshots(&self) -> String {
        let mut found: Vec<String> = std::fs::read_dir(&self.shots)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|entry| entry.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        format!("screenshots of each state:\n  {}", found.join("\n  "))
    }

    /// The next step the driver reports, which must be `step`.
    async fn step(&mut self, step: &str) -> Value {
        let line = tokio::time::timeout(HANG_GUARD, self.said.recv())
            .await
            .unwrap_or_else(|_| panic!("console.mjs said nothing\n{}", self.screenshots()))
            .unwrap_or_else(|| panic!("console.mjs ended\n{}", self.screenshots()));
        let said: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("console.mjs said {line:?}: {e}"));
        assert_eq!(said["step"], step, "{said:#}\n{}", self.screenshots());
        said
    }

    fn tell(&mut self, message: &Value) {
        writeln!(self.input, "{message}").unwrap();
        self.input.flush().unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SDP with the value of its `a=ice-pwd` lines replaced as the network's read masks it.
fn ice_pwd_masked(sdp: &str) -> String {
    sdp.split_inclusive("\r\n")
        .map(|line| match line.strip_prefix("a=ice-pwd:") {
            Some(_) => "a=ice-pwd:[masked]\r\n".to_owned(),
            None => line.to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_call_live_and_plays_the_network() {
    let Some(chromium) = crate::browser::chromium(TEST) else {
        return;
    };
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules");
    if !modules.join("playwright-core").is_dir() {
        skip_unless_required(
            "REQUIRE_TOOLS",
            TEST,
            "playwright-core is not installed",
            "Run `npm ci --prefix tests/node` (.ci/run does).",
        );
        return;
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let app = spawn_app().await;
    let types = ["session-invitation", "session-status"];
    let (_, sink, _, _) = crate::network::subscribes(&app, RECEIVER, "app", &types).await;
    let mut driver = Driver::start(&app.address, &app.admin_token(), &chromium, &shots);
    driver.step("live").await;

    // Made through the API once the console is live: it must appear without a reload.
    let (alice, call) = crate::network::alice_calls(&app, "app").await;
    let id = call["mediaSessionId"].as_str().unwrap().to_owned();
    driver.tell(&json!({ "session": id }));
    let done = driver.step("done").await;
    let observed = &done["observed"];

    let delivered: Vec<Value> = sink
        .wait_for(4)
        .await
        .iter()
        .map(|received| {
            let kind = received.body["type"].as_str().unwrap();
            json!({
                "event": received.body["id"],
                "type": kind.rsplit('.').next().unwrap(),
                "outcome": "delivered", "http": "204", "attempts": "1",
            })
        })
        .collect();
    let by_event = |mut list: Vec<Value>| {
        list.sort_by_key(|d| d["event"].as_str().unwrap().to_owned());
        list
    };
    let parties = "tel:+17085852753 → tel:+17085854000";
    let before_connected = json!([
        "InProgress",
        "Ringing",
        "Proceeding",
        "Waiting",
        "Connected",
        "Busy",
        "Declined",
        "NoAnswer",
        "NotReachable",
        "Failed",
        "SessionCancelled"
    ]);
    let read = json_ok(app.get_session(&id, &alice).await).await;
    let placed = observed["placed"]["id"].as_str().unwrap();
    assert_eq!(delivered[3]["type"], "session-invitation");
    assert_eq!(
        sink.received()[3].body["data"]["mediaSessionId"],
        placed,
        "the sink was invited to the call the form placed"
    );
    let answer = read["answer"]["sdp"].as_str().unwrap();
    let expected = json!({
        // The token is in this tab's session storage only: not in the URL, not in a cookie.
        "stored": {
            "kept": ["camara-webrtc-console-token"],
            "url": format!("{}/console", app.address), "cookies": ""
        },
        "appeared": {
            "row": ["Initial", parties, "outgoing"], "detailStatus": null, "moves": [],
            "timeline": [], "deliveries": [], "fitsWidth": true
        },
        "ringing": {
            "row": ["Ringing", parties, "outgoing"], "detailStatus": "Ringing",
            "moves": before_connected.clone(), "timeline": ["Initial", "Ringing"],
            "deliveries": by_event(delivered[..2].to_vec()), "fitsWidth": true
        },
        "connected": {
            "row": ["Connected", parties, "outgoing"], "detailStatus": "Connected",
            "moves": ["Hold", "Resume", "Connected", "Terminated"],
            "timeline": ["Initial", "Ringing", "Connected"],
            "deliveries": by_event(delivered[..3].to_vec()), "fitsWidth": true
        },
        // Tabbed to, pressed, and still focused after the records it caused redrew the page.
        "keyboard": { "tabbedTo": "move Connected", "afterRecords": "move Connected" },
        "sdp": { "offer": ice_pwd_masked(CLEAN_SDP), "answer": ice_pwd_masked(answer) },
        // The form's incoming call from outside to Bob's phone, invited at his sink.
        "placed": {
            "id": placed, "row": ["Initial", "tel:+12025550199 → tel:+17085854000", "incoming"],
            "detailStatus": "Initial", "moves": before_connected, "timeline": ["Initial"],
            "deliveries": [delivered[3]], "fitsWidth": true
        },
        "problems": []
    });
    assert_eq!(
        observed,
        &expected,
        "the console showed otherwise\n{}",
        driver.screenshots()
    );
    assert_eq!(read["status"], "Connected");
    assert_ne!(
        ice_pwd_masked(answer),
        answer,
        "the answer has an ICE password"
    );
}
