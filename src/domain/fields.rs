//! How a request body's fields are read, beyond serde's defaults: a field that is sent must have
//! its type (`null` is not "absent"), and an object must be a JSON object (serde would also take
//! an array of the fields' values in order). For `#[serde(deserialize_with = "...")]`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// An optional field (with `#[serde(default)]`): absent is `None`; a value that is sent must be
/// of the field's type, so `{"answer": null}` is a wrong type, not an absent answer.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// [`present`], for a field whose value is an object.
pub fn present_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    required_object(deserializer).map(Some)
}

/// A required field whose value is an object.
pub fn required_object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(Object(PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        a: u8,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::present")]
        name: Option<String>,
        #[serde(default, deserialize_with = "super::present_object")]
        inner: Option<Inner>,
    }

    fn read(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_is_none_and_null_or_an_array_is_a_wrong_type() {
        assert_eq!(
            read("{}"),
            Ok(Body {
                name: None,
                inner: None
            })
        );
        assert_eq!(
            read(r#"{"name":"x","inner":{"a":1}}"#),
            Ok(Body {
                name: Some("x".into()),
                inner: Some(Inner { a: 1 })
            })
        );
        assert!(
            read(r#"{"name":null}"#)
                .unwrap_err()
                .starts_with("invalid type: null, expected a string")
        );
        assert!(
            read(r#"{"inner":null}"#)
                .unwrap_err()
                .starts_with("invalid type: null, expected an object")
        );
        assert!(
            read(r#"{"inner":[1]}"#)
                .unwrap_err()
                .starts_with("invalid type: sequence, expected an object")
        );
    }
}
