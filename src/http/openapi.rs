//! The project's OpenAPI documents, as served: the call-handling API and the operational routes
//! (`openapi/camara-webrtc.yaml`) at `/openapi.yaml`, the registration API
//! (`openapi/webrtc-registration.yaml`) at `/openapi-registration.yaml`, the events API
//! (`openapi/webrtc-events.yaml`) at `/openapi-events.yaml`; each with its top-level
//! `servers` rewritten to the base paths this instance serves its API under.

/// The call-handling document as written, listing the default `server.base_paths`.
pub const DOCUMENT: &str = include_str!("../../openapi/camara-webrtc.yaml");

/// The registration document as written, listing the default `registration.base_paths`.
pub const REGISTRATION_DOCUMENT: &str = include_str!("../../openapi/webrtc-registration.yaml");

/// The events document as written, listing the default `events.base_paths`.
pub const EVENTS_DOCUMENT: &str = include_str!("../../openapi/webrtc-events.yaml");

/// One entry of the top-level `servers` list.
fn server_entry(base: &str) -> String {
    format!(
        "  - url: '{{apiRoot}}{base}'\n    variables:\n      apiRoot:\n        description: Scheme, host and port of this service\n        default: http://localhost:8080\n"
    )
}

/// `document` with its top-level `servers` block (from the `servers:` line to the next
/// top-level key) listing `base_paths`. With the default base paths it is the file unchanged.
pub fn document(document: &str, base_paths: &[String]) -> String {
    let mut out = String::with_capacity(document.len() + 256);
    let mut in_servers = false;
    for line in document.split_inclusive('\n') {
        if in_servers && (line.starts_with(' ') || line.starts_with('-')) {
            continue;
        }
        in_servers = false;
        out.push_str(line);
        if line.trim_end() == "servers:" {
            in_servers = true;
            for base in base_paths {
                out.push_str(&server_entry(base));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_base_paths_leave_the_document_unchanged() {
        let defaults = crate::Config::embedded();
        assert_eq!(document(DOCUMENT, &defaults.server.base_paths), DOCUMENT);
        assert_eq!(
            document(REGISTRATION_DOCUMENT, &defaults.registration.base_paths),
            REGISTRATION_DOCUMENT
        );
        assert_eq!(
            document(EVENTS_DOCUMENT, &defaults.events.base_paths),
            EVENTS_DOCUMENT
        );
    }

    #[test]
    fn servers_follow_the_configured_base_paths() {
        let doc = document(DOCUMENT, &["/calls".to_owned()]);
        assert!(doc.contains("servers:\n  - url: '{apiRoot}/calls'\n"));
        assert!(!doc.contains("{apiRoot}/webrtc'"));
        // Only the top-level block is rewritten: the operational paths keep their own servers.
        assert_eq!(
            doc.matches("servers:").count(),
            DOCUMENT.matches("servers:").count()
        );
    }
}
