//! `schema`: the declared fields of a record and the checks on them. A
//! failed check is a sentence naming the field and the rule, which becomes
//! the `reason` of the record's dead letter.

use serde::{Deserialize, Serialize};

use crate::scan::Scalar;

/// A declared field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// UTF-8 text; `min`/`max` bound its length in characters.
    String,
    /// An integer (MessagePack int, signed or not); `min`/`max` bound it.
    Integer,
    /// An integer or a float; `min`/`max` bound it.
    Number,
    /// `true` or `false`.
    Bool,
}

/// One declared field: `{"field": "amount", "type": "integer", "required": true, "min": 1, "max": 1e9}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Field name (top level of the value).
    pub field: String,
    /// Expected type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether the field must be present and not null (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// Smallest value (or length) allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest value (or length) allowed.
    #[serde(default)]
    pub max: Option<f64>,
}

fn yes() -> bool {
    true
}

impl FieldRule {
    /// Refuses rules that can never be met or make no sense.
    pub fn validate(&self) -> Result<(), String> {
        let f = &self.field;
        if f.is_empty() {
            return Err("a schema field has an empty `field` name".into());
        }
        if self.kind == FieldType::Bool && (self.min.is_some() || self.max.is_some()) {
            return Err(format!("schema field `{f}`: a bool has no min or max"));
        }
        for bound in [self.min, self.max].into_iter().flatten() {
            if !bound.is_finite() {
                return Err(format!(
                    "schema field `{f}`: min and max must be finite numbers"
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            return Err(format!("schema field `{f}`: min {lo} is above max {hi}"));
        }
        Ok(())
    }

    /// Checks one value; `Err` holds the reason.
    pub fn check(&self, value: Scalar<'_>) -> Result<(), String> {
        let f = &self.field;
        let measured = match (self.kind, value) {
            (_, Scalar::Absent | Scalar::Nil) if self.required => {
                return Err(format!("field `{f}` is required but {}", missing(value)));
            }
            (_, Scalar::Absent | Scalar::Nil) => return Ok(()),
            (FieldType::String, Scalar::Str(s)) => Some(("length", s.chars().count() as f64)),
            (FieldType::Integer, Scalar::Int(n)) => Some(("value", n as f64)),
            (FieldType::Number, Scalar::Int(n)) => Some(("value", n as f64)),
            (FieldType::Number, Scalar::Float(x)) if x.is_finite() => Some(("value", x)),
            (FieldType::Bool, Scalar::Bool(_)) => None,
            (kind, other) => {
                return Err(format!(
                    "field `{f}` must be {}, got {}",
                    type_name(kind),
                    describe(other)
                ));
            }
        };
        if let Some((what, x)) = measured {
            if let Some(lo) = self.min
                && x < lo
            {
                return Err(format!("field `{f}`: {what} {x} is below min {lo}"));
            }
            if let Some(hi) = self.max
                && x > hi
            {
                return Err(format!("field `{f}`: {what} {x} is above max {hi}"));
            }
        }
        Ok(())
    }
}

fn missing(value: Scalar<'_>) -> &'static str {
    match value {
        Scalar::Nil => "is null",
        _ => "is missing",
    }
}

fn type_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "a string",
        FieldType::Integer => "an integer",
        FieldType::Number => "a number",
        FieldType::Bool => "a bool",
    }
}

fn describe(value: Scalar<'_>) -> String {
    match value {
        Scalar::Float(x) => format!("the number {x}"),
        other => format!("a value of type {}", other.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: FieldType, min: Option<f64>, max: Option<f64>) -> FieldRule {
        FieldRule {
            field: "f".into(),
            kind,
            required: true,
            min,
            max,
        }
    }

    #[test]
    fn each_rule_names_the_field_and_what_failed() {
        let int = rule(FieldType::Integer, Some(1.0), Some(10.0));
        assert_eq!(int.check(Scalar::Int(5)), Ok(()));
        assert_eq!(
            int.check(Scalar::Int(0)).unwrap_err(),
            "field `f`: value 0 is below min 1"
        );
        assert_eq!(
            int.check(Scalar::Int(11)).unwrap_err(),
            "field `f`: value 11 is above max 10"
        );
        assert_eq!(
            int.check(Scalar::Float(2.5)).unwrap_err(),
            "field `f` must be an integer, got the number 2.5"
        );
        assert_eq!(
            int.check(Scalar::Absent).unwrap_err(),
            "field `f` is required but is missing"
        );
        assert_eq!(
            int.check(Scalar::Nil).unwrap_err(),
            "field `f` is required but is null"
        );
        let text = rule(FieldType::String, None, Some(3.0));
        assert_eq!(text.check(Scalar::Str("añb")), Ok(()), "3 characters");
        assert_eq!(
            text.check(Scalar::Str("abcd")).unwrap_err(),
            "field `f`: length 4 is above max 3"
        );
        assert_eq!(
            rule(FieldType::Bool, None, None)
                .check(Scalar::Str("yes"))
                .unwrap_err(),
            "field `f` must be a bool, got a value of type string"
        );
        assert_eq!(
            rule(FieldType::Number, None, None).check(Scalar::Int(3)),
            Ok(())
        );
        let optional = FieldRule {
            required: false,
            ..int
        };
        assert_eq!(optional.check(Scalar::Nil), Ok(()));
    }

    #[test]
    fn impossible_rules_are_refused() {
        assert!(
            rule(FieldType::Integer, Some(5.0), Some(1.0))
                .validate()
                .unwrap_err()
                .contains("above max")
        );
        assert!(rule(FieldType::Bool, Some(0.0), None).validate().is_err());
    }
}
