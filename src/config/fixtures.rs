//! [`Config::fixture_sessions`]: the `[[fixtures.sessions]]` entries turned into domain sessions,
//! each field parsed as the API would parse it, errors naming the entry and the field.

use std::collections::HashSet;

use super::{Config, ConfigError, invalid};
use crate::domain::{Address, CallType, Sdp, Session, SessionId};

impl Config {
    /// The configured fixtures as sessions, validated.
    pub fn fixture_sessions(&self) -> Result<Vec<Session>, ConfigError> {
        let mut ids = HashSet::new();
        let mut sessions = Vec::with_capacity(self.fixtures.sessions.len());
        for (i, f) in self.fixtures.sessions.iter().enumerate() {
            let key = |field: &str| format!("fixtures.sessions[{i}].{field}");
            let id = SessionId::parse(f.media_session_id.clone())
                .map_err(|e| invalid(key("media_session_id"), e.to_string()))?;
            if !ids.insert(id.clone()) {
                return Err(invalid(
                    key("media_session_id"),
                    format!("{id} is listed twice"),
                ));
            }
            let originator = Address::parse(f.originator_address.clone())
                .map_err(|e| invalid(key("originator_address"), e.to_string()))?;
            let receiver = Address::parse(f.receiver_address.clone())
                .map_err(|e| invalid(key("receiver_address"), e.to_string()))?;
            let offer = Sdp::parse(f.offer_sdp.clone(), self.sdp.validation)
                .map_err(|e| invalid(key("offer_sdp"), e.to_string()))?;
            for (field, name) in [
                ("originator_name", &f.originator_name),
                ("receiver_name", &f.receiver_name),
            ] {
                if name.as_ref().is_some_and(|n| n.chars().count() > 256) {
                    return Err(invalid(key(field), "must be at most 256 characters"));
                }
            }
            sessions.push(Session {
                id,
                originator,
                originator_name: f.originator_name.as_deref().map(Into::into),
                receiver,
                receiver_name: f.receiver_name.as_deref().map(Into::into),
                status: f.status,
                offer: Some(offer),
                answer: None,
                call_type: CallType::Regular,
                location: None,
                owner: None,
                direction: f.direction,
                withheld_originator: None,
                registration: None,
                reason: None,
                ended: false,
            });
        }
        Ok(sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SessionStatus;

    #[test]
    fn the_embedded_fixture_is_camaras_session() {
        let fixtures = Config::embedded().fixture_sessions().unwrap();
        assert_eq!(
            fixtures[0].id.as_str(),
            "0AEE1B58BAEEDA3EABA42B32EBB3DFE07E9CFF402EAF9EED8EF"
        );
        assert_eq!(fixtures[0].status, SessionStatus::Initial);
    }

    #[test]
    fn a_bad_fixture_field_is_named_with_its_entry() {
        let mut config = Config::embedded();
        config.fixtures.sessions[0].receiver_address = "bob".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("fixtures.sessions[0].receiver_address: "),
            "{err}"
        );
    }
}
