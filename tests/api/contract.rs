//! The OpenAPI document as a contract: [`conforms`] checks one response against it — the
//! operation must document the status, the body must match its schema (or be empty where none is
//! documented), and any answer outside an operation (unknown route, wrong method) must be a CAMARA
//! error. Every test app's client ([`crate::client::ContractClient`]) applies it to every response
//! the suite receives through `TestApp::client`, except the answer to a CORS preflight, which no
//! operation describes and [`preflight_conforms`] checks instead.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::http::{HeaderMap, Method, StatusCode, header};
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

use crate::client::ContractClient;

/// An OpenAPI document whose schemas responses are validated against.
pub struct Document {
    pub value: Value,
    /// Compiled validators, by JSON pointer into the document.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The project's call-handling document (with the operational routes), as written in the
/// repository.
pub static DOCUMENT: LazyLock<Document> =
    LazyLock::new(|| Document::parse(camara_webrtc::http::openapi::DOCUMENT));

/// The project's registration document, as written in the repository.
pub static REGISTRATION: LazyLock<Document> =
    LazyLock::new(|| Document::parse(camara_webrtc::http::openapi::REGISTRATION_DOCUMENT));

/// The project's events document, as written in the repository.
pub static EVENTS: LazyLock<Document> =
    LazyLock::new(|| Document::parse(camara_webrtc::http::openapi::EVENTS_DOCUMENT));

/// Where an app serves each document's API operations: its `server.base_paths`,
/// `registration.base_paths` and `events.base_paths`.
#[derive(Debug, Clone)]
pub struct Mounts {
    pub calls: Arc<[String]>,
    pub registration: Arc<[String]>,
    pub events: Arc<[String]>,
}

impl Mounts {
    pub fn of(config: &camara_webrtc::Config) -> Self {
        Self {
            calls: config.server.base_paths.as_slice().into(),
            registration: config.registration.base_paths.as_slice().into(),
            events: config.events.base_paths.as_slice().into(),
        }
    }

    /// An app of the embedded default config (the binary's `serve`).
    pub fn embedded() -> Self {
        Self::of(&camara_webrtc::Config::embedded())
    }
}

impl Document {
    pub fn parse(yaml: &str) -> Self {
        Self {
            value: serde_norway::from_str(yaml).expect("an OpenAPI document is valid YAML"),
            validators: Mutex::default(),
        }
    }

    /// Validates `instance` against the schema at `pointer` (`#/components/schemas/Address`),
    /// resolving `$ref`s within the document. OpenAPI 3.0 schemas are draft 4 with extensions.
    pub fn validate(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            Arc::clone(cache.entry(pointer.to_owned()).or_insert_with(|| {
                assert!(
                    self.value.pointer(&pointer[1..]).is_some(),
                    "{pointer} is not in the document"
                );
                let mut root = self.value.clone();
                // As a URI fragment, the braces of path templates must be percent-encoded.
                root["$ref"] = json!(pointer.replace('{', "%7B").replace('}', "%7D"));
                Arc::new(
                    jsonschema::options()
                        .with_draft(Draft::Draft4)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("{pointer} does not compile: {e}")),
                )
            }))
        };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// `~` and `/` escaped for a JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Follows a `$ref` (to `#/components/...` of `document`) if `node` is one; returns the node and
/// its pointer.
fn resolve<'a>(document: &'a Document, node: &'a Value, pointer: String) -> (&'a Value, String) {
    match node.get("$ref").and_then(Value::as_str) {
        Some(target) => (
            document.value.pointer(&target[1..]).expect("$ref resolves"),
            target.to_owned(),
        ),
        None => (node, pointer),
    }
}

/// Whether the concrete path segments fit a template like `/sessions/{mediaSessionId}`.
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The documented operation a request hits: `(document, template, pointer to the operation)`.
/// The operational routes (`servers` of their own) are the call-handling document's, at the
/// root; each document's API operations are served under its base paths.
pub fn operation(
    mounts: &Mounts,
    method: &Method,
    path: &str,
) -> Option<(&'static Document, String, String)> {
    let method = method.as_str().to_ascii_lowercase();
    let apis: [(&'static Document, &[String]); 3] = [
        (&DOCUMENT, &mounts.calls),
        (&REGISTRATION, &mounts.registration),
        (&EVENTS, &mounts.events),
    ];
    apis.into_iter().find_map(|(document, base_paths)| {
        let paths = document.value["paths"].as_object()?;
        paths.iter().find_map(|(template, item)| {
            let at_root = item.get("servers").is_some();
            let hit = if at_root {
                fits(template, path)
            } else {
                base_paths.iter().any(|base| {
                    path.strip_prefix(base.as_str())
                        .is_some_and(|rest| fits(template, rest))
                })
            };
            (hit && item.get(&method).is_some()).then(|| {
                (
                    document,
                    template.clone(),
                    format!("#/paths/{}/{method}", escape(template)),
                )
            })
        })
    })
}

/// Checks a 200 answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), which
/// no operation of the document describes (CORS belongs to the transport): the CORS layer's
/// answer, with `Access-Control-Allow-Methods` and an empty body. Which CORS headers it carries is
/// the CORS tests' to assert.
pub fn preflight_conforms(headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS) {
        return Err("200 without Access-Control-Allow-Methods".to_owned());
    }
    if !body.is_empty() {
        return Err("a body".to_owned());
    }
    Ok(())
}

/// Checks one response against the document.
pub fn conforms(
    mounts: &Mounts,
    method: &Method,
    path: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    // The media type without its parameters (`text/plain; version=0.0.4` is `text/plain`).
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim();
    let Some((document, template, op)) = operation(mounts, method, path) else {
        // Not an operation: only a CAMARA error may answer.
        if !(status.is_client_error() || status.is_server_error()) {
            return Err(format!("{status} outside any documented operation"));
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        return DOCUMENT.validate("#/components/schemas/ErrorInfo", &body);
    };
    let code = status.as_u16().to_string();
    let responses = format!("{op}/responses/{code}");
    let Some(documented) = document.value.pointer(&responses[1..]) else {
        return Err(format!("{code} is not documented for {method} {template}"));
    };
    let (response, pointer) = resolve(document, documented, responses);
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!("a body where {pointer} documents none"))
        };
    };
    let (media, _) = content.iter().next().expect("a media type");
    if content_type != media {
        return Err(format!("Content-Type {content_type:?}, documented {media}"));
    }
    if media != "application/json" {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    document.validate(
        &format!("{pointer}/content/application~1json/schema"),
        &body,
    )
}

#[test]
fn the_contract_catches_what_the_document_does_not_allow() {
    let bases = Mounts::embedded();
    let json = |value: Value| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        (headers, serde_json::to_vec(&value).unwrap())
    };
    let get = |path: &str, status: u16, value: Value| {
        let (headers, body) = json(value);
        conforms(
            &bases,
            &Method::GET,
            path,
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &body,
        )
    };
    let session = json!({
        "mediaSessionId": "s", "originatorAddress": "tel:+17085852753",
        "receiverAddress": "tel:+17085854000", "status": "Initial",
        "offer": {"sdp": "v=0"}, "callType": "REGULAR"
    });
    assert_eq!(get("/webrtc/sessions/s", 200, session.clone()), Ok(()));
    let mut missing = session.clone();
    missing.as_object_mut().unwrap().remove("mediaSessionId");
    assert!(
        get("/webrtc/sessions/s", 200, missing)
            .unwrap_err()
            .contains("mediaSessionId")
    );
    let mut bad_status = session;
    bad_status["status"] = json!("Ended");
    assert!(get("/webrtc/sessions/s", 200, bad_status).is_err());
    let error = |status: u16, code: &str| json!({"status": status, "code": code, "message": "m"});
    assert_eq!(
        get("/webrtc/sessions/s", 404, error(404, "NOT_FOUND")),
        Ok(())
    );
    assert!(get("/webrtc/sessions/s", 404, error(404, "CONFLICT")).is_err());
    assert_eq!(
        get("/webrtc/sessions/s", 409, error(409, "ABORTED")),
        Err("409 is not documented for GET /sessions/{mediaSessionId}".into())
    );
    assert_eq!(get("/nowhere", 404, error(404, "NOT_FOUND")), Ok(()));
    assert_eq!(
        get("/nowhere", 200, json!({})),
        Err("200 OK outside any documented operation".into())
    );
    let (_, body) = json(json!({}));
    assert_eq!(
        conforms(
            &bases,
            &Method::DELETE,
            "/webrtc/sessions/s",
            StatusCode::NO_CONTENT,
            &HeaderMap::new(),
            &body
        ),
        Err(
            "a body where #/paths/~1sessions~1{mediaSessionId}/delete/responses/204 documents none"
                .into()
        )
    );
}

#[test]
fn a_preflight_answer_is_the_cors_layers() {
    let mut headers = HeaderMap::new();
    assert_eq!(
        preflight_conforms(&headers, b""),
        Err("200 without Access-Control-Allow-Methods".into())
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET,POST".parse().unwrap(),
    );
    assert_eq!(preflight_conforms(&headers, b""), Ok(()));
    assert_eq!(preflight_conforms(&headers, b"{}"), Err("a body".into()));
    // An OPTIONS that is no preflight is held to the document: only a CAMARA error may answer.
    assert_eq!(
        conforms(
            &Mounts::embedded(),
            &Method::OPTIONS,
            "/webrtc/sessions",
            StatusCode::OK,
            &headers,
            b""
        ),
        Err("200 OK outside any documented operation".into())
    );
}

/// What a test reads from a checked response is what the app sent.
#[tokio::test]
async fn a_checked_response_is_the_response_as_sent() {
    let app = crate::helpers::spawn_app().await;
    let url = app.url(&format!("/webrtc/sessions/{}", crate::helpers::FIXTURE_ID));
    let token = app.receiver_token();
    let plain = reqwest::Client::new().get(&url).bearer_auth(&token);
    let plain = plain.header("x-correlator", "same").send().await.unwrap();
    let checked = app.client.get(&url).bearer_auth(&token);
    let checked = checked.header("x-correlator", "same").send().await.unwrap();
    assert_eq!(checked.status(), plain.status());
    assert_eq!(checked.version(), plain.version());
    assert_eq!(checked.url(), plain.url());
    let without_date = |response: &reqwest::Response| {
        let mut headers = response.headers().clone();
        headers.remove(header::DATE);
        headers
    };
    assert_eq!(without_date(&checked), without_date(&plain));
    assert_eq!(checked.bytes().await.unwrap(), plain.bytes().await.unwrap());
}

/// The check is live: a response the document does not allow fails the test that receives it.
#[tokio::test]
#[should_panic(expected = "OpenAPI contract violation: GET /webrtc/sessions/s answered 200 OK: ")]
async fn a_response_the_document_does_not_allow_fails_the_test() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webrtc/sessions/s",
        listener.local_addr().unwrap()
    );
    // The correlator is echoed; the session lacks every required field.
    let session = axum::routing::get(|| async { ([("x-correlator", "c")], axum::Json(json!({}))) });
    let app = axum::Router::new().route("/webrtc/sessions/s", session);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = ContractClient::new(Mounts::embedded());
    let _ = client.get(url).header("x-correlator", "c").send().await;
}
