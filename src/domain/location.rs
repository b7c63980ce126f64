//! `locationDetails`: a party's device location, with CAMARA's shapes and the ranges they allow.

use super::fields::{Present, PresentObject};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A JSON number that prints without a fraction when it has none (`50`, not `50.0`), as JavaScript does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_f64(Visitor)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if self.0.fract() == 0.0 && self.0.abs() < EXACT {
            serializer.serialize_i64(self.0 as i64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

/// Where the device is, as a circle or an ellipsoid around a WGS 84 point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", content = "coordinates")]
pub enum Coordinates {
    Circle {
        latitude: Number,
        longitude: Number,
        radius: Number,
    },
    #[serde(rename_all = "camelCase")]
    Ellipsoid {
        latitude: Number,
        longitude: Number,
        z_axis: Number,
        semi_major_axis: Number,
        semi_minor_axis: Number,
        vertical_axis: Number,
        orientation: Number,
    },
}

/// CAMARA's location `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "GPS")]
    Gps,
    #[serde(rename = "DBH")]
    Dbh,
    #[serde(rename = "DBH_HELO")]
    DbhHelo,
    Other,
}

/// The probability density function of a confidence value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pdf {
    Normal,
    Uniform,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf: Option<Pdf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Number>,
}

/// A validated `locationDetails` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    #[serde(flatten)]
    pub coordinates: Coordinates,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// `locationDetails` as a request carries it, before [`UncheckedLocation::check`] makes it a
/// [`Location`]: the coordinates its shape needs present, every value within its range.
#[derive(Debug, Clone, Deserialize)]
#[serde(expecting = "an object")]
pub struct UncheckedLocation {
    shape: Shape,
    #[serde(deserialize_with = "super::fields::required_object")]
    coordinates: UncheckedCoordinates,
    #[serde(default)]
    method: Present<Method>,
    #[serde(default)]
    confidence: PresentObject<Confidence>,
    #[serde(default)]
    timestamp: Present<String>,
}

/// CAMARA's location `shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Shape {
    Circle,
    Ellipsoid,
}

/// Every coordinate either shape may carry; the shape says which are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object")]
struct UncheckedCoordinates {
    latitude: Number,
    longitude: Number,
    #[serde(default)]
    radius: Present<Number>,
    #[serde(default)]
    z_axis: Present<Number>,
    #[serde(default)]
    semi_major_axis: Present<Number>,
    #[serde(default)]
    semi_minor_axis: Present<Number>,
    #[serde(default)]
    vertical_axis: Present<Number>,
    #[serde(default)]
    orientation: Present<Number>,
}

impl UncheckedLocation {
    /// The location, if its shape's coordinates are all there and every value is in range.
    pub fn check(self) -> Result<Location, LocationError> {
        let c = self.coordinates;
        let required = |value: Present<Number>, field| {
            value.into_option().ok_or(LocationError::Invalid {
                field,
                reason: "is required",
            })
        };
        let coordinates = match self.shape {
            Shape::Circle => Coordinates::Circle {
                latitude: c.latitude,
                longitude: c.longitude,
                radius: required(c.radius, "coordinates.radius")?,
            },
            Shape::Ellipsoid => Coordinates::Ellipsoid {
                latitude: c.latitude,
                longitude: c.longitude,
                z_axis: required(c.z_axis, "coordinates.zAxis")?,
                semi_major_axis: required(c.semi_major_axis, "coordinates.semiMajorAxis")?,
                semi_minor_axis: required(c.semi_minor_axis, "coordinates.semiMinorAxis")?,
                vertical_axis: required(c.vertical_axis, "coordinates.verticalAxis")?,
                orientation: required(c.orientation, "coordinates.orientation")?,
            },
        };
        Location::new(
            coordinates,
            self.method.into_option(),
            self.confidence.into_option(),
            self.timestamp.into_option(),
        )
    }
}

/// A location value the service refuses; `field` is its path below `locationDetails`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The value has the right type but lies outside its range (CAMARA `OUT_OF_RANGE`).
    #[error("{field} must be {range}")]
    OutOfRange {
        field: &'static str,
        range: &'static str,
    },
    /// The value is malformed (CAMARA `INVALID_ARGUMENT`).
    #[error("{field} {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// A closed range a number must lie in, and how a refusal states it.
#[derive(Debug, Clone, Copy)]
struct Range {
    low: f64,
    high: f64,
    says: &'static str,
}

const LATITUDE: Range = Range::new(-90.0, 90.0, "between -90 and 90");
const LONGITUDE: Range = Range::new(-180.0, 180.0, "between -180 and 180");
const NON_NEGATIVE: Range = Range::new(0.0, f64::MAX, "zero or more");
const FINITE: Range = Range::new(f64::MIN, f64::MAX, "a finite number");
const PERCENT: Range = Range::new(0.0, 100.0, "between 0 and 100");

impl Range {
    const fn new(low: f64, high: f64, says: &'static str) -> Self {
        Self { low, high, says }
    }

    /// `value` if it is finite and within the range, else `OutOfRange` naming `field`.
    fn check(self, field: &'static str, value: Number) -> Result<(), LocationError> {
        if value.0.is_finite() && (self.low..=self.high).contains(&value.0) {
            Ok(())
        } else {
            Err(LocationError::OutOfRange {
                field,
                range: self.says,
            })
        }
    }
}

impl Location {
    /// Checks every range CAMARA gives, in the order the fields are listed here (the first value
    /// out of range is the one named); the constructor of a valid location.
    pub fn new(
        coordinates: Coordinates,
        method: Option<Method>,
        confidence: Option<Confidence>,
        timestamp: Option<String>,
    ) -> Result<Self, LocationError> {
        let ranges: &[(&'static str, Number, Range)] = match coordinates {
            Coordinates::Circle {
                latitude,
                longitude,
                radius,
            } => &[
                ("coordinates.latitude", latitude, LATITUDE),
                ("coordinates.longitude", longitude, LONGITUDE),
                ("coordinates.radius", radius, NON_NEGATIVE),
            ],
            Coordinates::Ellipsoid {
                latitude,
                longitude,
                z_axis,
                semi_major_axis,
                semi_minor_axis,
                vertical_axis,
                orientation,
            } => &[
                ("coordinates.latitude", latitude, LATITUDE),
                ("coordinates.longitude", longitude, LONGITUDE),
                ("coordinates.zAxis", z_axis, FINITE),
                ("coordinates.semiMajorAxis", semi_major_axis, NON_NEGATIVE),
                ("coordinates.semiMinorAxis", semi_minor_axis, NON_NEGATIVE),
                ("coordinates.verticalAxis", vertical_axis, NON_NEGATIVE),
                ("coordinates.orientation", orientation, FINITE),
            ],
        };
        for &(field, value, range) in ranges {
            range.check(field, value)?;
        }
        if let Some(value) = confidence.as_ref().and_then(|c| c.value) {
            PERCENT.check("confidence.value", value)?;
        }
        if timestamp
            .as_ref()
            .is_some_and(|t| t.len() > 64 || !is_rfc3339(t))
        {
            return Err(LocationError::Invalid {
                field: "timestamp",
                reason: "must be an RFC 3339 date-time such as 2025-10-06T19:32:10Z",
            });
        }
        Ok(Self {
            coordinates,
            method,
            confidence,
            timestamp,
        })
    }
}

/// Whether `s` is an RFC 3339 date-time (§5.6) naming a real instant: `T`, `t` or a space between
/// date and time, `Z`, `z` or a `±HH:MM` offset, any number of fraction digits, a day that exists
/// in its month, and second 60 only for a leap second (the last second of a month in UTC).
fn is_rfc3339(s: &str) -> bool {
    // `time` takes any byte as the separator; RFC 3339 allows only these.
    matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' '))
        && OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

#[cfg(test)]
mod tests;
