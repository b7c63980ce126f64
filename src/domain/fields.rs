//! How a request body's fields are read, beyond serde's defaults: a field that is sent must have
//! its type (`null` is not "absent"), and an object must be a JSON object (serde would also take
//! an array of the fields' values in order).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// An optional body field: absent is `None` (with `#[serde(default)]` on the field or its
/// struct); a value that is sent must be of the field's type, so `{"answer": null}` is a wrong
/// type, not an absent answer. `OBJECT`: the value must be a JSON object (see [`PresentObject`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Present<T, const OBJECT: bool = false>(Option<T>);

/// [`Present`], for a field whose value is an object.
pub type PresentObject<T> = Present<T, true>;

impl<T, const OBJECT: bool> Present<T, OBJECT> {
    /// The value, if one was sent.
    pub fn into_option(self) -> Option<T> {
        self.0
    }
}

impl<T, const OBJECT: bool> Default for Present<T, OBJECT> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T, const OBJECT: bool> Deref for Present<T, OBJECT> {
    type Target = Option<T>;
    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T, const OBJECT: bool> DerefMut for Present<T, OBJECT> {
    fn deref_mut(&mut self) -> &mut Option<T> {
        &mut self.0
    }
}

impl<'de, T: Deserialize<'de>, const OBJECT: bool> Deserialize<'de> for Present<T, OBJECT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = if OBJECT {
            required_object(deserializer)?
        } else {
            T::deserialize(deserializer)?
        };
        Ok(Self(Some(value)))
    }
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

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Body {
        name: super::Present<String>,
        inner: super::PresentObject<Inner>,
    }

    fn read(json: &str) -> Result<(Option<String>, Option<Inner>), String> {
        let body: Body = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok((body.name.into_option(), body.inner.into_option()))
    }

    #[test]
    fn absent_is_none_and_null_or_an_array_is_a_wrong_type() {
        assert_eq!(read("{}"), Ok((None, None)));
        assert_eq!(
            read(r#"{"name":"x","inner":{"a":1}}"#),
            Ok((Some("x".into()), Some(Inner { a: 1 })))
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
