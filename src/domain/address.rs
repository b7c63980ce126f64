//! A party's address: CAMARA's `Address` pattern, and the TEL URI of a 3-legged token's subscriber.

use std::fmt;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::session::MAX_ID_LEN;

/// CAMARA's current `Address` pattern: TEL URI, SIP URI, emergency URN or the anonymous SIP URI.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(tel:\+[1-9][0-9]{4,14}",
        r"|tel:[0-9*#]{1,15};phone-context=(?:\+[1-9][0-9]{0,14}|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+)",
        r"|sip:[A-Za-z0-9_.!%+\-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        r"|sip:[0-9*#]{1,15};phone-context=(?:\+[1-9][0-9]{0,14}|[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,};user=phone",
        r"|urn:service:sos(?:\.[a-z0-9](?:[a-z0-9\-]{0,30}[a-z0-9])?)*",
        r"|sip:anonymous@anonymous\.invalid)$"
    ))
    .expect("the CAMARA address pattern compiles")
});

/// A party's address, valid against CAMARA's `Address` pattern (at most 256 characters); shared
/// like [`SessionId`](super::SessionId). Deserialized through [`Address::parse`], so a body cannot carry an invalid one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "Arc<str>")]
pub struct Address(Arc<str>);

/// The string does not match CAMARA's `Address` pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a tel: or sip: URI matching CAMARA's Address pattern, at most 256 characters")]
pub struct AddressError;

impl Address {
    pub fn parse(raw: impl Into<String>) -> Result<Self, AddressError> {
        let raw = raw.into();
        if raw.len() <= MAX_ID_LEN && ADDRESS.is_match(&raw) {
            Ok(Self(raw.into()))
        } else {
            Err(AddressError)
        }
    }

    /// The TEL URI of a phone number given as `+E.164` or `tel:+E.164` (a 3-legged token's `sub`).
    pub fn from_phone_number(sub: &str) -> Option<Self> {
        let digits = e164_digits(sub.strip_prefix("tel:").unwrap_or(sub))?;
        Some(Self(format!("tel:+{digits}").into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `+E.164` phone number of a TEL URI made by [`Address::from_phone_number`].
    pub fn phone_number(&self) -> Option<&str> {
        self.0
            .strip_prefix("tel:")
            .filter(|number| e164_digits(number).is_some())
    }
}

/// The digits of a `+E.164` number (`+` and 5 to 15 digits, not starting with 0).
fn e164_digits(number: &str) -> Option<&str> {
    let digits = number.strip_prefix('+')?;
    let plausible = (5..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    plausible.then_some(digits)
}

impl TryFrom<String> for Address {
    type Error = AddressError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<Address> for Arc<str> {
    fn from(address: Address) -> Self {
        address.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_camara_pattern() {
        for ok in [
            "tel:+17085852753",
            "sip:alice@example.com",
            "sip:anonymous@anonymous.invalid",
            "urn:service:sos",
            "urn:service:sos.police",
            "tel:1234;phone-context=example.com",
        ] {
            assert!(Address::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "+17085852753",
            "tel:17085852753",
            "tel:+0123",
            "sip:bob",
            "mailto:a@b.c",
        ] {
            assert_eq!(Address::parse(bad), Err(AddressError), "{bad}");
        }
    }

    #[test]
    fn phone_number_subjects_normalise_to_tel_uris() {
        let tel = Address::parse("tel:+17085852753").unwrap();
        assert_eq!(
            Address::from_phone_number("+17085852753"),
            Some(tel.clone())
        );
        assert_eq!(Address::from_phone_number("tel:+17085852753"), Some(tel));
        assert_eq!(Address::from_phone_number("client-app"), None);
        assert_eq!(Address::from_phone_number("+1708x"), None);
    }
}
