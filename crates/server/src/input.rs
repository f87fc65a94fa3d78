//! Text at the edge: every string a request carries is checked here before any use case or
//! query sees it. No control character (NUL, line breaks, DEL, C1 …) is accepted in any field —
//! PostgreSQL refuses NUL in `TEXT`, and none of our fields is multi-line — and each field has a
//! maximum length in characters ([`FIELD_MAX_CHARS`], [`TEXT_MAX_CHARS_DEFAULT`] otherwise). A
//! refusal is a 422 naming the field. JSON documents are read strictly: a key given twice in one
//! object is a 400 naming the key (serde would silently keep the last one, so two readers of the
//! same bytes could disagree about what was asked).

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// The longest text accepted in a field not named in [`FIELD_MAX_CHARS`], in characters.
pub const TEXT_MAX_CHARS_DEFAULT: usize = 1000;

/// The longest text accepted per field name (the last segment of its path), in characters.
pub const FIELD_MAX_CHARS: &[(&str, usize)] = &[
    ("order_no", 35),
    ("currency", 3),
    ("payout_no", 35),
    ("name", 64),
    ("password", 1024),
    ("reason", 500),
    ("evidence", 500),
    ("bank_reference", 140),
    ("reason_code", 140),
    ("reference", 140),
    ("holder", 140),
    ("iban", 42),
    ("bic", 11),
    ("country", 2),
    ("bank_code", 35),
    ("number", 60),
    ("channel", 64),
    ("url", 2048),
    ("value_date", 10),
    ("merchant", 64),
    ("item_id", 140),
    ("note", 2000),
];

/// The maximum length of a field, by the last segment of its path.
pub fn max_chars(field: &str) -> usize {
    let name = field.rsplit('.').next().unwrap_or(field);
    FIELD_MAX_CHARS
        .iter()
        .find(|(f, _)| *f == name)
        .map(|(_, n)| *n)
        .unwrap_or(TEXT_MAX_CHARS_DEFAULT)
}

/// Refuses a control character anywhere in `value`, or more characters than the field takes.
pub fn check_text(field: &str, value: &str) -> ApiResult<()> {
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field}: control character U+{:04X} at character {} is not accepted",
                u32::from(c),
                at + 1
            ),
        ));
    }
    let max = max_chars(field);
    let length = value.chars().count();
    if length > max {
        return Err(ApiError::invalid(
            field,
            format!("{field}: at most {max} characters, got {length}"),
        ));
    }
    Ok(())
}

/// Checks every string (and every key) of a JSON document with [`check_text`], naming the field
/// by its path (`correction.reason_code`, `items[2].name`).
pub fn check_document(value: &Value) -> ApiResult<()> {
    walk(value, "")
}

fn walk(value: &Value, path: &str) -> ApiResult<()> {
    match value {
        Value::String(s) => check_text(if path.is_empty() { "body" } else { path }, s),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| walk(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.chars().any(char::is_control) || k.chars().count() > 100 {
                return Err(ApiError::bad_request(
                    "a key of the JSON document has a control character or is too long",
                    Some(
                        &field
                            .chars()
                            .filter(|c| !c.is_control())
                            .take(100)
                            .collect::<String>(),
                    ),
                ));
            }
            walk(v, &field)
        }),
        _ => Ok(()),
    }
}

/// Parses one JSON document, refusing a key given twice in one object: a 400 naming the key.
pub fn strict_document(bytes: &[u8]) -> ApiResult<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    value.map_err(|e| {
        let message = e.to_string();
        match message
            .strip_prefix(DUPLICATE)
            .and_then(|rest| rest.split_once('`'))
        {
            Some((key, _)) => ApiError::bad_request(
                format!("malformed JSON: the key {key:?} is given twice"),
                Some(key),
            ),
            None => ApiError::bad_request(format!("malformed JSON: {message}"), None),
        }
    })
}

const DUPLICATE: &str = "duplicate key `";

/// Builds a `serde_json::Value` like serde_json does, but an object with a key twice is an error.
struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    // A JSON number with a fraction or exponent: kept as serde_json keeps it, so the typed
    // deserializer can refuse it for an integer field with the field's name.
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let shown: String = key.chars().filter(|c| *c != '`').take(100).collect();
                return Err(de::Error::custom(format!("{DUPLICATE}{shown}`")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_lengths_are_refused_naming_the_field() {
        assert!(check_text("reason", "a fine reason").is_ok());
        for bad in ["a\0b", "line\nbreak", "tab\there", "del\u{7f}", "c1\u{85}"] {
            let p = check_text("reason", bad).unwrap_err().problem();
            assert_eq!(
                (p.status, p.field.as_deref()),
                (422, Some("reason")),
                "{bad:?}"
            );
        }
        let p = check_text("correction.reason_code", &"x".repeat(141))
            .unwrap_err()
            .problem();
        assert_eq!(p.field.as_deref(), Some("correction.reason_code"));
        assert!(check_text("other", &"é".repeat(TEXT_MAX_CHARS_DEFAULT)).is_ok());
        assert!(check_text("other", &"é".repeat(TEXT_MAX_CHARS_DEFAULT + 1)).is_err());
        let doc: Value = serde_json::from_str(r#"{"a": {"b": ["ok", "x\u0000"]}}"#).unwrap();
        let p = check_document(&doc).unwrap_err().problem();
        assert_eq!(p.field.as_deref(), Some("a.b[1]"));
    }

    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        for (body, key) in [
            (r#"{"a": 1, "a": 2}"#, "a"),
            (r#"{"x": {"reason": "r", "reason": "s"}}"#, "reason"),
        ] {
            let p = strict_document(body.as_bytes()).unwrap_err().problem();
            assert_eq!((p.status, p.field.as_deref()), (400, Some(key)), "{body}");
        }
        let v = strict_document(br#"{"a": [1, -2, 1.5, "s", null, true, {"b": {}}]}"#).unwrap();
        assert_eq!(v["a"][1], -2);
        assert_eq!(v["a"][6]["b"], serde_json::json!({}));
        assert!(strict_document(br#"{"a": 1} x"#).is_err());
    }
}
