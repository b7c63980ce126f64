//! A device registration (CAMARA webrtc-registration): a device (`deviceId`, a UUID the app
//! makes) reachable at a phone number, owned by the API consumer that registered it, until its
//! expiry. Times are wall-clock milliseconds since the Unix epoch: `expiresAt` is a wall time the
//! client plans its refresh by.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A registration as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The `registrationId`: a UUID v4 the service allocates.
    pub id: String,
    /// The device's UUID, lower-case and hyphenated.
    pub device_id: String,
    /// `+E.164`.
    pub phone_number: String,
    /// The API consumer that registered it.
    pub owner: String,
    pub expires_at_ms: u64,
    /// The network knows the device holds its phone number: registered with a 3-legged token
    /// of that number, or a fixture. Only such a registration receives on-net calls and the
    /// admin API's incoming calls (DESIGN §12).
    #[serde(default)]
    pub proven: bool,
    /// Why it ended, once it has: it is then gone for the API and kept only as a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndReason>,
}

/// Why a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndReason {
    /// Its expiry passed without a refresh.
    RegistrationExpired,
    /// Its API consumer deleted it.
    Deleted,
    /// The network ended it (the admin API's `DELETE /registrations/{id}`).
    NetworkTerminated,
}

impl EndReason {
    /// Its name as stored and as metrics label it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RegistrationExpired => "REGISTRATION_EXPIRED",
            Self::Deleted => "DELETED",
            Self::NetworkTerminated => "NETWORK_TERMINATED",
        }
    }
}

impl Registration {
    /// Whether the API still sees it at `now_ms`: not ended, and its expiry not reached.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.ended.is_none() && self.expires_at_ms > now_ms
    }

    /// `expiresAt`: RFC 3339 in UTC with milliseconds, e.g. `2026-05-05T13:32:17.358Z`.
    pub fn expires_at(&self) -> String {
        rfc3339_ms(self.expires_at_ms)
    }
}

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// `text`, an RFC 3339 date-time with an offset of at most 64 characters (CAMARA's
/// `maxLength`), as milliseconds since the epoch. Held to RFC 3339's own grammar (section 5.6):
/// `T` between date and time, upper-case `Z` (the `time` crate alone also takes a space and lower
/// case, the RFC's note on readability).
pub fn rfc3339_to_ms(text: &str) -> Result<i128, ExpiryError> {
    if text.len() > 64 {
        return Err(ExpiryError::TooLong);
    }
    let strict = text.as_bytes().get(10) == Some(&b'T') && !text.contains(['t', 'z']);
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|_| strict)
        .ok_or(ExpiryError::NotRfc3339)?;
    Ok(at.unix_timestamp_nanos() / 1_000_000)
}

/// Why a `registrationExpireTime` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("must be an RFC 3339 date-time with a time offset, e.g. 2030-01-01T12:00:00Z")]
    NotRfc3339,
    #[error("must be at most 64 characters")]
    TooLong,
    #[error("must be at least {min_seconds} s from now")]
    TooSoon { min_seconds: u64 },
}

/// The operator's registration lifetimes (`registration.*_ttl_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub default_seconds: u64,
    pub min_seconds: u64,
    pub max_seconds: u64,
}

impl Lifetimes {
    /// The expiry that holds for a registration created or refreshed at `now_ms` with `requested`
    /// (a `registrationExpireTime`): the default lifetime without one; the requested time when it
    /// is within `[min, max]` from now; capped to `max` from now beyond it; refused sooner than
    /// `min` from now.
    pub fn expiry(&self, now_ms: u64, requested: Option<&str>) -> Result<u64, ExpiryError> {
        let Some(requested) = requested else {
            return Ok(now_ms + self.default_seconds * 1000);
        };
        let at_ms = rfc3339_to_ms(requested)?;
        if at_ms < i128::from(now_ms + self.min_seconds * 1000) {
            return Err(ExpiryError::TooSoon {
                min_seconds: self.min_seconds,
            });
        }
        let latest = now_ms + self.max_seconds * 1000;
        Ok(u64::try_from(at_ms).map_or(latest, |at| at.min(latest)))
    }
}

/// A `+E.164` phone number (CAMARA's `PhoneNumber`: `^\+[1-9][0-9]{4,14}$`), as given.
pub fn phone_number(raw: &str) -> Option<&str> {
    (raw.starts_with('+') && super::Address::from_phone_number(raw).is_some()).then_some(raw)
}

/// A UUID in its hyphenated form (any case), returned lower-case, so that a `deviceId`, a
/// `registrationId` or a `subscriptionId` is one key however a client writes it.
pub fn uuid_key(raw: &str) -> Option<String> {
    let hyphenated = raw.len() == 36 && raw.bytes().filter(|b| *b == b'-').count() == 4;
    let uuid = uuid::Uuid::try_parse(raw).ok().filter(|_| hyphenated)?;
    Some(uuid.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIMES: Lifetimes = Lifetimes {
        default_seconds: 3600,
        min_seconds: 60,
        max_seconds: 86_400,
    };
    /// 2026-12-03T12:00:00Z.
    const NOW: u64 = 1_796_299_200_000;

    #[test]
    fn expiries_are_the_default_the_request_or_capped() {
        assert_eq!(LIFETIMES.expiry(NOW, None), Ok(NOW + 3_600_000));
        assert_eq!(
            LIFETIMES.expiry(NOW, Some("2026-12-03T13:30:00.5+01:00")),
            Ok(NOW + 30 * 60_000 + 500)
        );
        assert_eq!(
            LIFETIMES.expiry(NOW, Some("2027-12-03T12:00:00Z")),
            Ok(NOW + 86_400_000)
        );
        assert_eq!(
            LIFETIMES.expiry(NOW, Some("2026-12-03T12:00:59Z")),
            Err(ExpiryError::TooSoon { min_seconds: 60 })
        );
        assert_eq!(
            LIFETIMES.expiry(NOW, Some("2026-12-03T12:01:00Z")),
            Ok(NOW + 60_000)
        );
        assert_eq!(
            LIFETIMES.expiry(
                NOW,
                Some(&format!("2026-12-03T13:00:00.{}Z", "0".repeat(60)))
            ),
            Err(ExpiryError::TooLong)
        );
        for bad in [
            "2026-12-03T13:00:00",
            "2026-12-03",
            "tomorrow",
            "",
            "2026-12-03 13:00:00Z",
            "2026-12-03t13:00:00Z",
            "2026-12-03T13:00:00z",
        ] {
            assert_eq!(
                LIFETIMES.expiry(NOW, Some(bad)),
                Err(ExpiryError::NotRfc3339),
                "{bad}"
            );
        }
    }

    #[test]
    fn expires_at_is_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(NOW + 358), "2026-12-03T12:00:00.358Z");
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn phone_numbers_and_device_ids() {
        assert_eq!(phone_number("+17085854000"), Some("+17085854000"));
        for bad in [
            "17085854000",
            "+0123456",
            "+1234",
            "+1234567890123456",
            "tel:+17085854000",
        ] {
            assert_eq!(phone_number(bad), None, "{bad}");
        }
        assert_eq!(
            uuid_key("7D444840-9DC0-11D1-B245-5FFDCE74FAD2").as_deref(),
            Some("7d444840-9dc0-11d1-b245-5ffdce74fad2")
        );
        for bad in [
            "7d4448409dc011d1b2455ffdce74fad2",
            "{7d444840-9dc0-11d1-b245-5ffdce74fad2}",
            "urn:uuid:7d444840-9dc0-11d1-b245-5ffdce74fad2",
            "not-a-uuid",
        ] {
            assert_eq!(uuid_key(bad), None, "{bad}");
        }
    }
}
