//! Lenient scalar values: what the user wrote, kept as text, so that a bad
//! value becomes a validation finding instead of a decode failure.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::borrow::Cow;
use std::fmt;

/// A scalar written either as a string or as a number (`30s`, `"0.5"`, `0.5`, `80`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
}

impl Scalar {
    /// The value as the user wrote it.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Text(s) => Cow::Borrowed(s),
            Scalar::Number(n) => Cow::Owned(n.to_string()),
        }
    }

    /// True for an empty string.
    pub fn is_empty(&self) -> bool {
        matches!(self, Scalar::Text(s) if s.trim().is_empty())
    }

    /// The value as a finite number, when it is one (numbers and numeric strings).
    pub fn as_f64(&self) -> Option<f64> {
        let value = match self {
            Scalar::Number(n) => n.as_f64()?,
            Scalar::Text(s) => s.trim().parse::<f64>().ok()?,
        };
        value.is_finite().then_some(value)
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Text(s.to_owned())
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scalar::Text(s) => serializer.serialize_str(s),
            Scalar::Number(n) => n.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl de::Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                serde_json::Number::from_f64(v)
                    .map(Scalar::Number)
                    .ok_or_else(|| E::custom("a finite number"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A Go duration string (`30s`, `1h30m`); numbers are accepted on decode so
/// that `interval: 30` is reported as a missing unit, not a decode failure.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub Scalar);

impl DurationText {
    pub fn as_text(&self) -> Cow<'_, str> {
        self.0.as_text()
    }
}

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "DurationText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Go duration such as 300ms, 30s, 1h30m or 1.5h.",
            "x-kubernetes-int-or-string": true
        })
    }
}

/// A Kubernetes quantity or a percentage (`4Gi`, `500m`, `80%`, `4`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuantityText(pub Scalar);

impl QuantityText {
    pub fn as_text(&self) -> Cow<'_, str> {
        self.0.as_text()
    }
}

impl JsonSchema for QuantityText {
    fn schema_name() -> Cow<'static, str> {
        "QuantityText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Kubernetes quantity (4Gi, 500m) or a percentage (80%).",
            "x-kubernetes-int-or-string": true
        })
    }
}

/// A number written as a number or as a string (`0.1`, `"0.1"`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NumberText(pub Scalar);

impl NumberText {
    pub fn as_text(&self) -> Cow<'_, str> {
        self.0.as_text()
    }
    pub fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }
    /// The value as an integer, when it is one (`80`, `"80"`; not `80.5`).
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Scalar::Number(n) => n.as_i64(),
            Scalar::Text(s) => s.trim().parse().ok(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl JsonSchema for NumberText {
    fn schema_name() -> Cow<'static, str> {
        "NumberText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // No `type`: a number or a numeric string; the webhook checks the value.
        json_schema!({
            "description": "A number, written as a number or a string (0.1 or \"0.1\").",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// Schema for `values.inline`: a YAML string or a mapping; the webhook checks which.
pub fn inline_values(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Inline values: a YAML mapping, written as a string or as a mapping.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for sub-trees that no rule reads: kept as written.
pub fn opaque_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for a list of sub-trees that no rule reads.
pub fn opaque_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}
