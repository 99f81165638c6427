//! Checking content against a JSON Schema.

use sha2::{Digest, Sha256};

use orchestra_kit::error::{InvalidArgument as _, Violation};

use crate::error::{Error, Result};

/// A compiled schema and the sha256 of its text.
pub(crate) struct Schema {
    validator: jsonschema::Validator,
    pub sha256: String,
}

impl Schema {
    /// Compiles the schema a Put carries; a fault is INVALID_ARGUMENT on
    /// `schema_json`.
    pub(crate) fn compile(schema_json: &str) -> Result<Schema> {
        let value: serde_json::Value = serde_json::from_str(schema_json)
            .map_err(|e| Error::invalid_field("schema_json", format!("is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&value).map_err(|e| {
            Error::invalid_field("schema_json", format!("is not a valid JSON Schema: {e}"))
        })?;
        Ok(Schema {
            validator,
            sha256: sha256_hex(schema_json.as_bytes()),
        })
    }

    /// Every way `content` breaks the schema; empty when it conforms.
    pub(crate) fn check(&self, content: &[u8]) -> Vec<Violation> {
        let instance: serde_json::Value = match serde_json::from_slice(content) {
            Ok(instance) => instance,
            Err(e) => {
                return vec![Violation::new("/", format!("content is not JSON: {e}"))];
            }
        };
        self.validator
            .iter_errors(&instance)
            .map(|error| {
                let pointer = error.instance_path().as_str();
                // The JSON pointer of the offending value; `/` for the root.
                Violation::new(
                    if pointer.is_empty() { "/" } else { pointer },
                    error.to_string(),
                )
            })
            .collect()
    }
}

/// The lowercase hex sha256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","required":["ops"],
        "properties":{"ops":{"type":"array","items":{"type":"object",
        "required":["path"],"properties":{"path":{"type":"string"}}}}}}"#;

    #[test]
    fn violations_point_at_the_instance() {
        let schema = Schema::compile(SCHEMA).expect("compiles");
        assert!(schema.check(br#"{"ops":[{"path":"/a"}]}"#).is_empty());
        let violations = schema.check(br#"{"ops":[{"path":3}]}"#);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "/ops/0/path");
        assert!(
            violations[0].description.contains("string"),
            "{violations:?}"
        );
        let root = schema.check(b"[]");
        assert_eq!(root[0].field, "/");
    }

    #[test]
    fn content_that_is_not_json_is_a_violation() {
        let schema = Schema::compile(SCHEMA).expect("compiles");
        let violations = schema.check(b"not json");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "/");
        assert!(violations[0].description.starts_with("content is not JSON"));
    }

    #[test]
    fn a_bad_schema_is_invalid_argument_on_schema_json() {
        for bad in ["{", r#"{"type": 12}"#] {
            match Schema::compile(bad) {
                Err(Error::InvalidArgument { violations, .. }) => {
                    assert_eq!(violations[0].field, "schema_json");
                }
                other => panic!("expected invalid argument, got {:?}", other.err()),
            }
        }
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
