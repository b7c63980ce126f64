//! How a configuration that cannot be loaded is reported: the key, the kind of error and where
//! the value came from, never the value or its line. figment's own message quotes both (a TOML
//! syntax error shows the offending line, a type error the value found), and the value may be a
//! secret: `auth.hs256_secret`, or a password inside `store.redis_url`.

use figment::error::{Actual, Kind};

use super::ENV_PREFIX;

/// `error` in words that carry no configured value: `store.redis_url: wrong type: found an
/// integer, expected a string (in app.toml)`, or for a file that is not TOML,
/// `app.toml: not valid TOML: line 2, column 16`.
pub(super) fn describe(error: &figment::Error) -> String {
    if let (true, Kind::Message(message)) = (error.path.is_empty(), &error.kind) {
        // No key: the provider itself failed (a TOML syntax error, an unreadable file). Only
        // the first line is kept: the lines after it quote the file's text.
        let first = message.lines().next().unwrap_or("");
        let first = first
            .strip_prefix("TOML parse error at ")
            .map_or_else(|| first.to_owned(), |at| format!("not valid TOML: {at}"));
        let source = source(error, &[]).unwrap_or_else(|| "config".into());
        return format!("{source}: {first}");
    }
    // figment's path names the key, an unknown field's own name included; a missing field's
    // path is its table's.
    let what = match &error.kind {
        Kind::InvalidType(actual, expected) => {
            format!("wrong type: found {}, expected {expected}", type_of(actual))
        }
        Kind::InvalidValue(_, expected) => format!("invalid value: expected {expected}"),
        Kind::InvalidLength(len, expected) => format!("{len} entries, expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("must be one of {}", expected.join(", ")),
        Kind::UnknownField(_, expected) => {
            format!("unknown key (known here: {})", expected.join(", "))
        }
        Kind::MissingField(_) => "missing".to_owned(),
        Kind::DuplicateField(_) => "given twice".to_owned(),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "out of range".to_owned(),
        Kind::Unsupported(actual) => format!("{} is not supported here", type_of(actual)),
        Kind::UnsupportedKey(actual, _) => format!("{} is not supported as a key", type_of(actual)),
        // A key's own Deserialize impl (the domain's enums) says which values it accepts; it
        // never quotes the one given.
        Kind::Message(message) => message.lines().next().unwrap_or("").to_owned(),
    };
    let mut parts: Vec<&str> = error.path.iter().map(String::as_str).collect();
    if let Kind::MissingField(field) = &error.kind
        && parts.last() != Some(&field.as_ref())
    {
        parts.push(field);
    }
    let key = key_path(&parts);
    match source(error, &parts) {
        Some(source) => format!("{key}: {what} (in {source})"),
        None => format!("{key}: {what}"),
    }
}

/// The key as validation names keys: `fixtures.sessions[0].status`.
fn key_path(parts: &[&str]) -> String {
    let mut key = String::new();
    for part in parts {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

/// Where the value of the key `parts` came from: the file, or the environment variable by its
/// name.
fn source(error: &figment::Error, parts: &[&str]) -> Option<String> {
    let metadata = error.metadata.as_ref()?;
    if let Some(file) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return Some(file.display().to_string());
    }
    if metadata.name.contains("environment variable") && !parts.is_empty() {
        let name = parts.join("__").to_ascii_uppercase();
        return Some(format!("environment variable {ENV_PREFIX}{name}"));
    }
    Some(metadata.name.to_string())
}

/// The type of a value found, without the value.
fn type_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "no value",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        Actual::NewtypeStruct
        | Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant
        | Actual::Other(_) => "a value of another kind",
    }
}
