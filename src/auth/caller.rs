//! Who is calling: the API consumer, the subscriber of a 3-legged token, and the granted scopes.

use std::sync::Arc;

use crate::domain::{Actor, Address};

use super::Claims;

/// An operation's required scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Create,
    Read,
    Write,
    Delete,
    RegistrationCreate,
    RegistrationRead,
    RegistrationWrite,
    RegistrationDelete,
    /// The network's admin API (DESIGN §12).
    Network,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Create => "webrtc-call-handling:sessions:create",
            Scope::Read => "webrtc-call-handling:sessions:read",
            Scope::Write => "webrtc-call-handling:sessions:write",
            Scope::Delete => "webrtc-call-handling:sessions:delete",
            Scope::RegistrationCreate => "webrtc-registration:sessions:create",
            Scope::RegistrationRead => "webrtc-registration:sessions:read",
            Scope::RegistrationWrite => "webrtc-registration:sessions:write",
            Scope::RegistrationDelete => "webrtc-registration:sessions:delete",
            Scope::Network => "camara-webrtc:network",
        }
    }
}

/// The authenticated caller of one request: its verified claims (shared with the token cache,
/// so a request copies nothing out of them) and the subscriber they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    claims: Arc<Claims>,
    /// The subscriber a 3-legged token acts for (its `sub` as a TEL URI); `None` for 2-legged tokens.
    pub subscriber: Option<Address>,
}

impl Caller {
    pub fn from_claims(claims: Arc<Claims>) -> Self {
        let subscriber = claims.subscriber().cloned();
        Self { claims, subscriber }
    }

    /// The API consumer (see [`Claims::consumer`]); a verified token always names one.
    pub fn consumer(&self) -> &str {
        self.claims.consumer().unwrap_or_default()
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.has_scope_named(scope.as_str())
    }

    /// Whether the token grants the scope named `scope` (for scopes the configuration names).
    pub fn has_scope_named(&self, scope: &str) -> bool {
        self.claims.scope.iter().any(|s| s == scope)
    }

    /// The phone number (`+E.164`) a 3-legged token acts for.
    pub fn phone_number(&self) -> Option<&str> {
        self.subscriber.as_ref().and_then(Address::phone_number)
    }

    /// Who this caller acts as, for the rules of [`crate::domain::access`].
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            consumer: self.consumer(),
            subscriber: self.subscriber.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, client_id: Option<&str>) -> Arc<Claims> {
        Arc::new(Claims {
            sub: Some(sub.into()),
            client_id: client_id.map(Into::into),
            azp: None,
            scope: vec![],
            exp: None,
            subscriber: Default::default(),
        })
    }

    #[test]
    fn three_legged_tokens_carry_a_subscriber() {
        let caller = Caller::from_claims(claims("tel:+17085854000", Some("app")));
        assert_eq!(caller.consumer(), "app");
        assert_eq!(caller.subscriber.unwrap().as_str(), "tel:+17085854000");
        let caller = Caller::from_claims(claims("+17085854000", None));
        assert_eq!(caller.subscriber.unwrap().as_str(), "tel:+17085854000");
    }

    #[test]
    fn claims_are_equal_whether_or_not_the_subscriber_was_worked_out() {
        let worked_out = claims("tel:+17085854000", None);
        assert!(worked_out.subscriber().is_some());
        assert_eq!(worked_out, claims("tel:+17085854000", None));
    }

    #[test]
    fn the_actor_is_the_consumer_and_the_subscriber() {
        let caller = Caller::from_claims(claims("+17085854000", Some("app")));
        let actor = caller.actor();
        assert_eq!(actor.consumer, "app");
        assert_eq!(actor.subscriber, caller.subscriber.as_ref());
    }

    #[test]
    fn two_legged_tokens_act_for_the_consumer() {
        let caller = Caller::from_claims(claims("gateway", None));
        assert_eq!(caller.subscriber, None);
        assert_eq!(caller.consumer(), "gateway");
    }
}
