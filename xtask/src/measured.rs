//! A figure that may be missing, and then says why: [`Measured`].
//!
//! Some figures depend on the machine (system calls need `perf` and the rights to use it) or
//! on a tool's version (a loadgen that does not report its schedule lag yet). A report must
//! never show such a figure as 0 or leave it out silently; it shows "not measured" and the
//! reason. So the type is a `Result` (the code composes it with `?`, `map`, `ok()`), and its
//! JSON is either the value itself or `{"not_measured": "<reason>"}`, through [`field`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value, or why it could not be measured.
pub type Measured<T> = Result<T, NotMeasured>;

/// Why a figure is missing, in words a reader of the report can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotMeasured {
    /// Lower-case, no trailing period, e.g. `perf is not installed (no perf on PATH)`.
    pub reason: String,
}

impl NotMeasured {
    /// A missing figure with its reason.
    pub fn new(reason: impl Into<String>) -> NotMeasured {
        NotMeasured {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for NotMeasured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not measured: {}", self.reason)
    }
}

impl std::error::Error for NotMeasured {}

/// Serde for a [`Measured`] field: `#[serde(with = "crate::measured::field")]`.
///
/// A value is written as itself (`2.7`), a missing one as `{"not_measured": "<reason>"}`, so
/// that a reader of the JSON sees the number where there is one, and the reason where there
/// is none, without a `{"Ok": ...}` wrapper.
pub mod field {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Measured, NotMeasured};

    /// The JSON shape of a missing figure. It is tried first and denies other keys, so a
    /// value that is itself an object is never mistaken for it.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Missing {
        not_measured: String,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire<T> {
        Missing(Missing),
        Value(T),
    }

    /// Writes the value, or `{"not_measured": reason}`.
    ///
    /// # Errors
    /// Whatever the serializer reports.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Measured<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Ok(value) => value.serialize(serializer),
            Err(missing) => Missing {
                not_measured: missing.reason.clone(),
            }
            .serialize(serializer),
        }
    }

    /// Reads what [`serialize`] wrote.
    ///
    /// # Errors
    /// When the JSON is neither a value of `T` nor `{"not_measured": "..."}`.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Measured<T>, D::Error> {
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Value(value) => Ok(value),
            Wire::Missing(missing) => Err(NotMeasured::new(missing.not_measured)),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "field")]
        syscalls_per_request: Measured<f64>,
    }

    fn round_trip(row: &Row) -> (String, Row) {
        let json = serde_json::to_string(row).expect("serializes");
        let back = serde_json::from_str(&json).expect("deserializes");
        (json, back)
    }

    #[test]
    fn a_measured_value_is_written_as_the_bare_number() {
        let row = Row {
            syscalls_per_request: Ok(2.7),
        };
        let (json, back) = round_trip(&row);
        assert_eq!(json, r#"{"syscalls_per_request":2.7}"#);
        assert_eq!(back, row);
    }

    #[test]
    fn a_missing_value_is_written_with_its_reason_and_read_back() {
        let row = Row {
            syscalls_per_request: Err(NotMeasured::new("perf is not installed")),
        };
        let (json, back) = round_trip(&row);
        assert_eq!(
            json,
            r#"{"syscalls_per_request":{"not_measured":"perf is not installed"}}"#
        );
        assert_eq!(back, row);
    }

    #[test]
    fn an_object_that_is_neither_a_value_nor_a_reason_is_refused() {
        let result = serde_json::from_str::<Row>(r#"{"syscalls_per_request":{"reason":"x"}}"#);
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn the_reason_reads_as_not_measured_in_text() {
        let missing = NotMeasured::new("perf refused: access denied");
        assert_eq!(
            missing.to_string(),
            "not measured: perf refused: access denied"
        );
    }
}
