//! The project's OpenAPI document (`openapi/camara-webrtc.yaml`), as served at `/openapi.yaml`:
//! its top-level `servers` rewritten to the base paths this instance is configured with.

/// The document as written, listing the default base paths.
pub const DOCUMENT: &str = include_str!("../../openapi/camara-webrtc.yaml");

/// One entry of the top-level `servers` list.
fn server_entry(base: &str) -> String {
    format!(
        "  - url: '{{apiRoot}}{base}'\n    variables:\n      apiRoot:\n        description: Scheme, host and port of this service\n        default: http://localhost:8080\n"
    )
}

/// The document with its top-level `servers` block (from the `servers:` line to the next
/// top-level key) listing `base_paths`. With the default base paths it is the file unchanged.
pub fn document(base_paths: &[String]) -> String {
    let mut out = String::with_capacity(DOCUMENT.len() + 256);
    let mut in_servers = false;
    for line in DOCUMENT.split_inclusive('\n') {
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
        let defaults = crate::Config::embedded().server.base_paths;
        assert_eq!(document(&defaults), DOCUMENT);
    }

    #[test]
    fn servers_follow_the_configured_base_paths() {
        let doc = document(&["/calls".to_owned()]);
        assert!(doc.contains("servers:\n  - url: '{apiRoot}/calls'\n"));
        assert!(!doc.contains("{apiRoot}/webrtc'"));
        // Only the top-level block is rewritten: the operational paths keep their own servers.
        assert_eq!(
            doc.matches("servers:").count(),
            DOCUMENT.matches("servers:").count()
        );
    }
}
