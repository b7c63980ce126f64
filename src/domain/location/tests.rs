//! Location ranges and timestamps: examples, and properties over generated values.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use time::util::days_in_year;
use time::{Date, UtcOffset};

use super::*;

fn circle(latitude: f64, longitude: f64, radius: f64) -> Coordinates {
    Coordinates::Circle {
        latitude: Number(latitude),
        longitude: Number(longitude),
        radius: Number(radius),
    }
}

#[test]
fn ranges_are_enforced() {
    assert!(Location::new(circle(40.7128, -74.006, 50.0), None, None, None).is_ok());
    let err = Location::new(circle(91.0, 0.0, 1.0), None, None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "coordinates.latitude must be between -90 and 90"
    );
    let err = Location::new(circle(0.0, 180.5, 1.0), None, None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "coordinates.longitude must be between -180 and 180"
    );
    let err = Location::new(circle(0.0, 0.0, -1.0), None, None, None).unwrap_err();
    assert_eq!(err.to_string(), "coordinates.radius must be zero or more");
    let confidence = Confidence {
        pdf: None,
        value: Some(Number(101.0)),
    };
    assert!(Location::new(circle(0.0, 0.0, 1.0), None, Some(confidence), None).is_err());
}

#[test]
fn timestamps_are_rfc3339() {
    for ok in [
        "2025-10-06T19:32:10Z",
        "2025-10-06T19:32:10.123+02:00",
        "2024-02-29t23:59:60z",
        "1990-12-31 15:59:60.5-08:00",
        "0000-01-01T00:00:00.1234567890123+23:59",
    ] {
        assert!(is_rfc3339(ok), "{ok}");
    }
    for bad in [
        "2025-10-06",
        "2025-13-06T19:32:10Z",
        "2025-10-06T19:32:10",
        "2025-10-06T19:32:10.Z",
        "2025-02-29T00:00:00Z",
        "2025-10-06X19:32:10Z",
        "2025-10-06T19:32:60Z",
        "2025-10-06T19:32:10+24:00",
        "2025-10-06T19:32:10+01:60",
        "2025-10-06T19:32:10+0100",
        "2025-10-06T19:32:10Z ",
        "yesterday",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
    // The timestamp is kept as sent; a refusal names the field.
    let sent = "2025-10-06t19:32:10.50z".to_string();
    let location = Location::new(circle(0.0, 0.0, 1.0), None, None, Some(sent.clone()));
    assert_eq!(location.unwrap().timestamp, Some(sent));
    let err = Location::new(circle(0.0, 0.0, 1.0), None, None, Some("2025".into()));
    assert_eq!(
        err.unwrap_err().to_string(),
        "timestamp must be an RFC 3339 date-time such as 2025-10-06T19:32:10Z"
    );
}

#[test]
fn whole_numbers_print_without_a_fraction() {
    let location = Location::new(circle(40.5, -74.0, 50.0), None, None, None).unwrap();
    assert_eq!(
        serde_json::to_string(&location).unwrap(),
        r#"{"shape":"Circle","coordinates":{"latitude":40.5,"longitude":-74,"radius":50}}"#
    );
}

/// Finite numbers in `[low, high]`, the bounds included.
fn inside(low: f64, high: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(low), Just(high), low..=high]
}

/// Numbers outside `[low, high]`: just past a bound, far past it, and the non-finite.
fn outside(low: f64, high: f64) -> BoxedStrategy<f64> {
    let mut values = vec![
        Just(f64::NAN).boxed(),
        Just(f64::INFINITY).boxed(),
        Just(f64::NEG_INFINITY).boxed(),
    ];
    if low > f64::MIN {
        values.extend([(low - 1.0..low).boxed(), (f64::MIN..low).boxed()]);
    }
    if high < f64::MAX {
        values.extend([(high..high + 1.0).boxed(), (high..f64::MAX).boxed()]);
    }
    Union::new(values)
        .prop_filter("outside the range", move |v| !(low..=high).contains(v))
        .boxed()
}

fn ellipsoid(values: [f64; 7]) -> Coordinates {
    let [
        latitude,
        longitude,
        z_axis,
        major,
        minor,
        vertical,
        orientation,
    ] = values.map(Number);
    Coordinates::Ellipsoid {
        latitude,
        longitude,
        z_axis,
        semi_major_axis: major,
        semi_minor_axis: minor,
        vertical_axis: vertical,
        orientation,
    }
}

/// The ellipsoid's fields in checking order, with their ranges.
const ELLIPSOID: [(&str, f64, f64); 7] = [
    ("coordinates.latitude", -90.0, 90.0),
    ("coordinates.longitude", -180.0, 180.0),
    ("coordinates.zAxis", f64::MIN, f64::MAX),
    ("coordinates.semiMajorAxis", 0.0, f64::MAX),
    ("coordinates.semiMinorAxis", 0.0, f64::MAX),
    ("coordinates.verticalAxis", 0.0, f64::MAX),
    ("coordinates.orientation", f64::MIN, f64::MAX),
];

fn valid_ellipsoid() -> impl Strategy<Value = [f64; 7]> {
    ELLIPSOID.map(|(_, low, high)| inside(low, high))
}

/// An instant from year 0000 to 9999 at any whole-minute offset, and an RFC 3339 text for it
/// in one of the forms the RFC allows: `T`, `t` or a space, 0 to 9 fraction digits, and
/// `Z`, `z`, `+00:00` or `-00:00` for UTC.
fn rfc3339() -> impl Strategy<Value = (OffsetDateTime, String)> {
    let instant = (
        0i32..=9999,
        1u16..=366,
        0u32..86_400,
        0u32..1_000_000_000,
        -1439i32..=1439,
    );
    let form = (
        0u32..=9,
        select(vec!['T', 't', ' ']),
        select(vec!["Z", "z", "+00:00", "-00:00"]),
    );
    (instant, form).prop_map(
        |((year, day, second, nano, offset), (digits, separator, utc))| {
            let date = Date::from_ordinal_date(year, day.min(days_in_year(year))).unwrap();
            let (h, m, s) = (
                (second / 3600) as u8,
                (second / 60 % 60) as u8,
                (second % 60) as u8,
            );
            let nano = nano - nano % 10u32.pow(9 - digits);
            let zone = UtcOffset::from_whole_seconds(offset * 60).unwrap();
            let at = date
                .with_hms_nano(h, m, s, nano)
                .unwrap()
                .assume_offset(zone);
            let fraction = match digits {
                0 => String::new(),
                _ => format!(".{:0w$}", nano / 10u32.pow(9 - digits), w = digits as usize),
            };
            let sign = if offset < 0 { '-' } else { '+' };
            let zone = match offset {
                0 => utc.to_string(),
                _ => format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60),
            };
            let (month, day) = (u8::from(date.month()), date.day());
            let text = format!(
                "{year:04}-{month:02}-{day:02}{separator}{h:02}:{m:02}:{s:02}{fraction}{zone}"
            );
            (at, text)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn in_range_locations_are_accepted(
        latitude in inside(-90.0, 90.0),
        longitude in inside(-180.0, 180.0),
        radius in inside(0.0, f64::MAX),
        confidence in inside(0.0, 100.0),
        values in valid_ellipsoid(),
    ) {
        let confidence = Confidence {
            pdf: Some(Pdf::Normal),
            value: Some(Number(confidence)),
        };
        let circle = circle(latitude, longitude, radius);
        prop_assert!(Location::new(circle, None, Some(confidence), None).is_ok());
        let ellipsoid = ellipsoid(values);
        prop_assert!(Location::new(ellipsoid, Some(Method::Gps), None, None).is_ok());
    }

    #[test]
    fn an_ellipsoid_value_out_of_range_is_named(
        values in valid_ellipsoid(),
        (at, bad) in (0..7usize).prop_flat_map(|at| {
            let (_, low, high) = ELLIPSOID[at];
            (Just(at), outside(low, high))
        }),
    ) {
        let mut values = values;
        values[at] = bad;
        let refused = Location::new(ellipsoid(values), None, None, None);
        let field = ELLIPSOID[at].0;
        let named = matches!(
            refused,
            Err(LocationError::OutOfRange { field: f, .. }) if f == field
        );
        prop_assert!(named, "{:?}", refused);
    }

    #[test]
    fn a_circle_value_out_of_range_is_named(
        (field, bad) in prop_oneof![
            outside(-90.0, 90.0).prop_map(|v| ("coordinates.latitude", v)),
            outside(-180.0, 180.0).prop_map(|v| ("coordinates.longitude", v)),
            outside(0.0, f64::MAX).prop_map(|v| ("coordinates.radius", v)),
            outside(0.0, 100.0).prop_map(|v| ("confidence.value", v)),
        ],
    ) {
        let value = |name| if name == field { bad } else { 1.0 };
        let coordinates = circle(
            value("coordinates.latitude"),
            value("coordinates.longitude"),
            value("coordinates.radius"),
        );
        let confidence = Confidence {
            pdf: None,
            value: Some(Number(value("confidence.value"))),
        };
        let refused = Location::new(coordinates, None, Some(confidence), None);
        let named = matches!(
            refused,
            Err(LocationError::OutOfRange { field: f, .. }) if f == field
        );
        prop_assert!(named, "{:?}", refused);
    }

    #[test]
    fn any_rfc3339_instant_is_accepted_and_kept_as_sent((at, text) in rfc3339()) {
        prop_assert_eq!(OffsetDateTime::parse(&text, &Rfc3339), Ok(at), "{}", text);
        let location = Location::new(circle(0.0, 0.0, 0.0), None, None, Some(text.clone()));
        prop_assert_eq!(location.map(|kept| kept.timestamp), Ok(Some(text)));
    }
}
