//! The OpenAPI documents themselves (call handling with the operational routes, and
//! registration): together they list exactly the router's operations, every operation is served
//! on every base path of its API, they are served at `/openapi.yaml` and
//! `/openapi-registration.yaml`, their examples fit their schemas, and an independent OpenAPI
//! validator accepts them.

use std::collections::BTreeSet;
use std::process::Command;

use camara_webrtc::config::Config;
use camara_webrtc::http::{Mount, operations};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::contract::{DOCUMENT, Document, EVENTS, REGISTRATION, escape};
use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `(METHOD, path, where)` of every operation in the documents.
fn documented() -> BTreeSet<(String, String, Mount)> {
    let mut ops = BTreeSet::new();
    let documents = [
        (&DOCUMENT, Mount::Api),
        (&REGISTRATION, Mount::Registration),
        (&EVENTS, Mount::Events),
    ];
    for (document, api) in documents {
        for (path, item) in document.value["paths"].as_object().unwrap() {
            for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                let mount = match item.get("servers") {
                    Some(_) if path.starts_with("/network/") => Mount::Network,
                    Some(_) => Mount::Root,
                    None => api,
                };
                ops.insert((method.to_ascii_uppercase(), path.clone(), mount));
            }
        }
    }
    ops
}

#[test]
fn router_routes_and_document_paths_are_the_same_set() {
    let routed: BTreeSet<(String, String, Mount)> = operations()
        .map(|(r, mount)| (r.method.to_string(), r.path.to_owned(), mount))
        .collect();
    assert_eq!(routed, documented());
}

#[tokio::test]
async fn every_documented_operation_is_served_on_every_base_path() {
    let app = spawn_app().await;
    let config = Config::embedded();
    for (method, path, mount) in documented() {
        let path = path
            .replace("{mediaSessionId}", "probe")
            .replace("{registrationId}", "probe")
            .replace("{subscriptionId}", "probe");
        let bases = match mount {
            Mount::Root | Mount::Network => vec![String::new()],
            Mount::Api => config.server.base_paths.clone(),
            Mount::Registration => config.registration.base_paths.clone(),
            Mount::Events => config.events.base_paths.clone(),
        };
        let at_root = mount == Mount::Root;
        let urls: Vec<String> = bases.iter().map(|base| format!("{base}{path}")).collect();
        for url in urls {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&url))
                .send()
                .await
                .unwrap();
            // Without a token an API operation is 401 — not 404 or 405, so it is routed.
            let expected = if at_root {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(response.status(), expected, "{method} {url}");
        }
    }
}

#[tokio::test]
async fn openapi_yaml_is_served_with_the_configured_base_paths() {
    let app = spawn_app().await;
    let response = app.get("/openapi.yaml").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let text = response.text().await.unwrap();
    assert_eq!(text, camara_webrtc::http::openapi::DOCUMENT);
    let response = app.get("/openapi-registration.yaml").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let text = response.text().await.unwrap();
    assert_eq!(text, camara_webrtc::http::openapi::REGISTRATION_DOCUMENT);
    let text = app.get("/openapi-events.yaml").await.text().await.unwrap();
    assert_eq!(text, camara_webrtc::http::openapi::EVENTS_DOCUMENT);

    let mut config = Config::embedded();
    config.server.base_paths = vec!["/calls/v1".into()];
    config.registration.base_paths = vec!["/devices/v0.3".into()];
    let app = spawn_with(config).await;
    let text = app.get("/openapi.yaml").await.text().await.unwrap();
    let served = Document::parse(&text);
    let servers: Vec<&str> = served.value["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["{apiRoot}/calls/v1"]);
    assert_eq!(served.value["paths"], DOCUMENT.value["paths"]);
    let text = (app.get("/openapi-registration.yaml").await.text().await).unwrap();
    let served = Document::parse(&text);
    assert_eq!(
        served.value["servers"][0]["url"].as_str(),
        Some("{apiRoot}/devices/v0.3")
    );
    assert_eq!(served.value["servers"].as_array().unwrap().len(), 1);
    assert_eq!(served.value["paths"], REGISTRATION.value["paths"]);
    let token = app.receiver_token();
    let read = app
        .client
        .get(app.url(&format!("/calls/v1/sessions/{FIXTURE_ID}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}

/// Every example of every operation's request and response bodies in `document`, with its
/// schema's pointer.
fn examples(document: &Document) -> Vec<(String, String, Value)> {
    let doc = &document.value;
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = format!("#/paths/{}/{method}", escape(path));
            let mut bodies = vec![format!("{op}/requestBody")];
            for code in item[*method]["responses"].as_object().unwrap().keys() {
                bodies.push(format!("{op}/responses/{code}"));
            }
            for mut body in bodies {
                let Some(mut node) = doc.pointer(&body[1..]) else {
                    continue;
                };
                if let Some(target) = node["$ref"].as_str() {
                    body = target.to_owned();
                    node = doc.pointer(&body[1..]).unwrap();
                }
                let Some(json) = node.pointer("/content/application~1json") else {
                    continue;
                };
                let schema = format!("{body}/content/application~1json/schema");
                for (name, example) in json["examples"].as_object().into_iter().flatten() {
                    let example = match example["$ref"].as_str() {
                        Some(target) => doc.pointer(&target[1..]).unwrap(),
                        None => example,
                    };
                    found.push((
                        format!("{body} {name}"),
                        schema.clone(),
                        example["value"].clone(),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_example_fits_its_schema() {
    for (document, at_least) in [(&*DOCUMENT, 30), (&*REGISTRATION, 15), (&*EVENTS, 5)] {
        let examples = examples(document);
        assert!(examples.len() > at_least, "{} examples", examples.len());
        for (name, schema, value) in examples {
            document
                .validate(&schema, &value)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn the_seed_examples_are_the_seed_verbatim() {
    let examples = &DOCUMENT.value["components"]["examples"];
    for (name, file) in [
        ("InProgress", "1-in-progress"),
        ("Ringing", "2-ringing"),
        ("Connected", "3-connected"),
        ("Hold", "4-hold"),
        ("Resume", "5-resume"),
    ] {
        for kind in ["Request", "Response"] {
            let seed: Value =
                serde_json::from_str(&seed(&format!("{}-{file}", kind.to_lowercase()))).unwrap();
            assert_eq!(
                examples[format!("Seed{name}{kind}")]["value"],
                seed,
                "{name} {kind}"
            );
        }
    }
}

/// `python3 -m openapi_spec_validator …`
fn validator() -> Command {
    let mut command = Command::new("python3");
    command.args(["-m", "openapi_spec_validator"]);
    command
}

/// An independent check that OpenAPI tools load the document: `openapi-spec-validator` (PyPI),
/// on the file and on the document served for custom base paths. `.ci/run` installs it; without
/// it the test skips loudly, or fails under `REQUIRE_TOOLS=1`.
#[tokio::test]
async fn an_openapi_validator_accepts_the_document() {
    if !validator()
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        skip_unless_required(
            "REQUIRE_TOOLS",
            "an_openapi_validator_accepts_the_document",
            "the Python package openapi-spec-validator is not installed",
            "pip install openapi-spec-validator; .ci/run installs it",
        );
        return;
    }
    use camara_webrtc::http::openapi::{DOCUMENT, document};
    let served = document(DOCUMENT, &["/calls/v1".into()]);
    let copy =
        std::env::temp_dir().join(format!("camara-webrtc-openapi-{}.yaml", std::process::id()));
    std::fs::write(&copy, served).unwrap();
    let output = validator()
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/camara-webrtc.yaml"
        ))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/webrtc-registration.yaml"
        ))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/webrtc-events.yaml"
        ))
        .arg(&copy)
        .output()
        .unwrap();
    std::fs::remove_file(&copy).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.matches(": OK").count(), 4, "{stdout}");
}
