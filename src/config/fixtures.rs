//! [`Config::fixture_sessions`], [`Config::fixture_registrations`] and
//! [`Config::fixture_subscriptions`]: the `[[fixtures.*]]` entries turned into domain values, each
//! field parsed as the API would parse it, errors naming the entry and the field.

use std::collections::HashSet;

use super::{Config, ConfigError, invalid};
use crate::domain::registration::{phone_number, uuid_key};
use crate::domain::{
    Address, CallType, Detail, EventType, Registration, Sdp, Session, SessionId, Subscription,
};

/// The expiry of a fixture registration, which never expires: 9999-12-31T23:59:59.999Z.
pub const NEVER: u64 = 253_402_300_799_999;

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
                steps_played: 0,
                receiver_owner: None,
                hung_up: None,
                receiver_registration: None,
                reason: None,
                ended: false,
            });
        }
        Ok(sessions)
    }
}

impl Config {
    /// The configured fixture registrations, validated; they never expire.
    pub fn fixture_registrations(&self) -> Result<Vec<Registration>, ConfigError> {
        let mut ids = HashSet::new();
        let entries = self.fixtures.registrations.iter().enumerate();
        entries
            .map(|(i, f)| {
                let key = |field: &str| format!("fixtures.registrations[{i}].{field}");
                if f.registration_id.is_empty() || f.registration_id.len() > 256 {
                    return Err(invalid(
                        key("registration_id"),
                        "must be 1 to 256 characters",
                    ));
                }
                if !ids.insert(f.registration_id.as_str()) {
                    return Err(invalid(key("registration_id"), "is listed twice"));
                }
                let device = uuid_key(&f.device_id)
                    .ok_or_else(|| invalid(key("device_id"), "must be a hyphenated UUID"))?;
                let number = phone_number(&f.phone_number)
                    .ok_or_else(|| invalid(key("phone_number"), "must be +E.164"))?;
                if f.consumer.is_empty() {
                    return Err(invalid(key("consumer"), "must not be empty"));
                }
                Ok(Registration {
                    id: f.registration_id.clone(),
                    device_id: device,
                    phone_number: number.to_owned(),
                    owner: f.consumer.clone(),
                    expires_at_ms: NEVER,
                    // The operator configured it: the number is known to be the device's.
                    proven: true,
                    ended: None,
                })
            })
            .collect()
    }

    /// The configured fixture subscriptions, validated (each naming a fixture registration);
    /// they never expire. Their sinks are the operator's, so only their form is checked here;
    /// the delivery client checks every address it connects to.
    pub fn fixture_subscriptions(&self) -> Result<Vec<Subscription>, ConfigError> {
        let registrations = self.fixture_registrations()?;
        let guard = crate::events::SinkGuard::new(true, vec![]);
        let mut ids = HashSet::new();
        let entries = self.fixtures.subscriptions.iter().enumerate();
        entries
            .map(|(i, f)| {
                let key = |field: &str| format!("fixtures.subscriptions[{i}].{field}");
                if f.subscription_id.is_empty() || f.subscription_id.len() > 256 {
                    return Err(invalid(
                        key("subscription_id"),
                        "must be 1 to 256 characters",
                    ));
                }
                if !ids.insert(f.subscription_id.as_str()) {
                    return Err(invalid(key("subscription_id"), "is listed twice"));
                }
                guard
                    .check_form(&f.sink)
                    .map_err(|e| invalid(key("sink"), e.to_string()))?;
                let prefix = &self.events.type_prefix;
                let types = (f.types.iter())
                    .map(|t| EventType::from_full(prefix, t))
                    .collect::<Option<Vec<_>>>()
                    .filter(|types| (1..=3).contains(&types.len()))
                    .ok_or_else(|| {
                        invalid(
                            key("types"),
                            format!("must list 1 to 3 types {prefix}.<name>"),
                        )
                    })?;
                let registration = (registrations.iter())
                    .find(|r| r.id == f.registration_id && r.owner == f.consumer)
                    .ok_or_else(|| {
                        invalid(
                            key("registration_id"),
                            "must name one of fixtures.registrations of the same consumer",
                        )
                    })?;
                Ok(Subscription {
                    id: f.subscription_id.clone(),
                    owner: f.consumer.clone(),
                    sink: f.sink.clone(),
                    types,
                    detail: Detail {
                        registration_id: Some(registration.id.clone()),
                        ..Detail::default()
                    },
                    phone_numbers: vec![registration.phone_number.clone()],
                    credential: None,
                    starts_at_ms: 0,
                    expires_at_ms: None,
                    max_events: None,
                    initial_event: None,
                    ended: None,
                })
            })
            .collect()
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
    fn fixture_registrations_and_subscriptions_are_checked() {
        use super::super::{FixtureRegistration, FixtureSubscription};
        let mut config = Config::embedded();
        config.fixtures.registrations = vec![FixtureRegistration {
            registration_id: "xsmcaum3z4zw4l0cu4w115m0".into(),
            device_id: "7D444840-9DC0-11D1-B245-5FFDCE74FAD2".into(),
            phone_number: "+17085854000".into(),
            consumer: "camara-scenarios".into(),
        }];
        config.fixtures.subscriptions = vec![FixtureSubscription {
            subscription_id: "qs15-h556-rt89-1298".into(),
            sink: "https://127.0.0.1:9/sink".into(),
            types: vec!["org.camaraproject.webrtc-events.v0.session-status".into()],
            registration_id: "xsmcaum3z4zw4l0cu4w115m0".into(),
            consumer: "camara-scenarios".into(),
        }];
        assert!(config.validate().is_ok());
        let registration = &config.fixture_registrations().unwrap()[0];
        assert_eq!(
            registration.device_id,
            "7d444840-9dc0-11d1-b245-5ffdce74fad2"
        );
        assert_eq!(registration.expires_at(), "9999-12-31T23:59:59.999Z");
        let subscription = &config.fixture_subscriptions().unwrap()[0];
        assert_eq!(subscription.phone_numbers, ["+17085854000"]);
        let refusal = |edit: fn(&mut Config)| {
            let mut bad = config.clone();
            edit(&mut bad);
            bad.validate().unwrap_err().to_string()
        };
        assert_eq!(
            refusal(|c| c.fixtures.registrations[0].phone_number = "17085854000".into()),
            "fixtures.registrations[0].phone_number: must be +E.164"
        );
        assert_eq!(
            refusal(|c| c.fixtures.subscriptions[0].registration_id = "other".into()),
            "fixtures.subscriptions[0].registration_id: must name one of fixtures.registrations of the same consumer"
        );
        assert_eq!(
            refusal(|c| c.fixtures.subscriptions[0].types = vec!["session-status".into()]),
            "fixtures.subscriptions[0].types: must list 1 to 3 types org.camaraproject.webrtc-events.v0.<name>"
        );
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
