//! The OpenAPI document as a contract. The harness wraps every test app in [`check`], so every
//! response the suite receives is validated against the document: the operation must document
//! the status, the body must match its schema (or be empty where none is documented), and any
//! answer outside an operation (unknown route, wrong method) must be a CAMARA error.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// An OpenAPI document whose schemas responses are validated against.
pub struct Document {
    pub value: Value,
    /// Compiled validators, by JSON pointer into the document.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The project's document, as written in the repository.
pub static DOCUMENT: LazyLock<Document> =
    LazyLock::new(|| Document::parse(camara_webrtc::http::openapi::DOCUMENT));

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

/// Validates against the project's document.
pub fn validate(pointer: &str, instance: &Value) -> Result<(), String> {
    DOCUMENT.validate(pointer, instance)
}

/// `~` and `/` escaped for a JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Follows a `$ref` (to `#/components/...`) if `node` is one; returns the node and its pointer.
fn resolve(node: &Value, pointer: String) -> (&Value, String) {
    match node.get("$ref").and_then(Value::as_str) {
        Some(target) => (
            DOCUMENT.value.pointer(&target[1..]).expect("$ref resolves"),
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

/// The documented operation a request hits: `(template, pointer to the operation)`.
pub fn operation(base_paths: &[String], method: &Method, path: &str) -> Option<(String, String)> {
    let paths = DOCUMENT.value["paths"].as_object()?;
    let method = method.as_str().to_ascii_lowercase();
    paths.iter().find_map(|(template, item)| {
        let at_root = item.get("servers").is_some();
        let hit = if at_root {
            template == path
        } else {
            base_paths.iter().any(|base| {
                path.strip_prefix(base.as_str())
                    .is_some_and(|rest| fits(template, rest))
            })
        };
        (hit && item.get(&method).is_some()).then(|| {
            (
                template.clone(),
                format!("#/paths/{}/{method}", escape(template)),
            )
        })
    })
}

/// Checks one response against the document.
pub fn conforms(
    base_paths: &[String],
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
    let Some((template, op)) = operation(base_paths, method, path) else {
        // Not an operation: only a CAMARA error may answer.
        if !(status.is_client_error() || status.is_server_error()) {
            return Err(format!("{status} outside any documented operation"));
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        return validate("#/components/schemas/ErrorInfo", &body);
    };
    let code = status.as_u16().to_string();
    let responses = format!("{op}/responses/{code}");
    let Some(documented) = DOCUMENT.value.pointer(&responses[1..]) else {
        return Err(format!("{code} is not documented for {method} {template}"));
    };
    let (response, pointer) = resolve(documented, responses);
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
    validate(
        &format!("{pointer}/content/application~1json/schema"),
        &body,
    )
}

/// Middleware for test apps: checks every response; a violation panics the connection's task,
/// which fails the test with the message printed.
pub async fn check(
    State(base_paths): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let sent = request.headers().get("x-correlator").cloned();
    let (parts, body) = next.run(request).await.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .expect("the body is readable");
    let echoed = parts.headers.get("x-correlator");
    let correlator = match (&sent, echoed) {
        // An invalid one is refused (400) and not echoed.
        (Some(_), None) if parts.status == StatusCode::BAD_REQUEST => Ok(()),
        (Some(sent), Some(echoed)) if sent != echoed => Err("x-correlator not echoed".to_owned()),
        (_, None) => Err("no x-correlator header".to_owned()),
        _ => Ok(()),
    };
    if let Err(violation) = correlator.and_then(|()| {
        conforms(
            &base_paths,
            &method,
            &path,
            parts.status,
            &parts.headers,
            &body,
        )
    }) {
        panic!(
            "OpenAPI contract violation: {method} {path} answered {}: {violation}\nbody: {}",
            parts.status,
            String::from_utf8_lossy(&body)
        );
    }
    Response::from_parts(parts, Body::from(body))
}

#[test]
fn the_contract_catches_what_the_document_does_not_allow() {
    let bases = ["/webrtc".to_owned()];
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
