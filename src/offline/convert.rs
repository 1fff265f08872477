//! `roost-keeper convert`: manifests with every ManagedRoost in another
//! served version, as `kubectl convert` does for built-in kinds. Inputs are
//! read as `validate` reads them (files, directories, `-`, multi-document
//! YAML, JSON streams, `kind: List`); other documents pass through as they
//! are. The output is re-serialized, so comments and formatting are not kept.

use super::{InputError, read_documents, read_source};
use crate::api::convert::convert;
use crate::api::{ApiVersion, KIND};
use crate::yaml::Positions;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

/// How the converted documents are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertFormat {
    /// YAML documents separated by `---`.
    Yaml,
    /// One JSON object, or a `kind: List` of several.
    Json,
}

/// The converted documents, in input order, and what could not be read or
/// converted (those documents are left out).
#[derive(Debug, Default)]
pub struct Conversion {
    pub documents: Vec<Value>,
    pub errors: Vec<InputError>,
}

impl Conversion {
    /// 0 when every document was read and converted, else 1.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.errors.is_empty())
    }

    /// The documents in `format`.
    pub fn render(&self, format: ConvertFormat) -> String {
        match format {
            ConvertFormat::Json => {
                let value = match self.documents.as_slice() {
                    [one] => one.clone(),
                    many => serde_json::json!({
                        "apiVersion": "v1", "kind": "List", "items": many
                    }),
                };
                // A `Value` always serializes.
                let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
                text.push('\n');
                text
            }
            ConvertFormat::Yaml => self
                .documents
                .iter()
                .map(|document| format!("---\n{}", yaml_text(document)))
                .collect(),
        }
    }
}

/// `document` as YAML that kubectl reads back as the same value; in JSON
/// (which YAML reads alike) when the emitter's YAML 1.2 would not be (a
/// string `on` that YAML 1.1 takes for a boolean, say).
pub(super) fn yaml_text(document: &Value) -> String {
    let yaml = serde_norway::to_string(document).ok().filter(|yaml| {
        crate::yaml::Documents::new(yaml)
            .next()
            .and_then(Result::ok)
            .is_some_and(|read| read.value == *document)
    });
    yaml.unwrap_or_else(|| format!("{}\n", serde_json::to_string(document).unwrap_or_default()))
}

/// Reads every source of `paths` and converts each ManagedRoost to `to`.
pub fn convert_inputs(paths: &[PathBuf], to: ApiVersion, stdin: &mut dyn Read) -> Conversion {
    let mut conversion = Conversion::default();
    for source in super::expand(paths, &mut conversion.errors) {
        let name = source.name();
        let text = match read_source(&source, stdin) {
            Ok(text) => text,
            Err(message) => {
                conversion.errors.push(InputError::new(name, message));
                continue;
            }
        };
        let mut index = 0usize;
        let read = read_documents(&text, |document, positions| {
            if !document.is_null() {
                let at = Place {
                    source: &name,
                    index,
                    positions: positions.as_ref(),
                };
                if let Some(document) = converted(document, to, &at, &mut conversion.errors) {
                    conversion.documents.push(document);
                }
                index += 1;
            }
        });
        if let Err(error) = read {
            conversion.errors.push(InputError {
                source: name,
                at: Some(error.at),
                message: error.message,
            });
        }
    }
    conversion
}

/// Where a document was read.
struct Place<'a> {
    source: &'a str,
    index: usize,
    positions: Option<&'a Positions>,
}

impl Place<'_> {
    fn error(&self, positions: Option<&Positions>, message: String) -> InputError {
        InputError {
            source: self.source.to_owned(),
            at: positions.map(|p| (p.at.line, p.at.column)),
            message: format!("document {}: {message}", self.index),
        }
    }
}

/// `document` with its ManagedRoosts (itself, or a List's items) in `to`;
/// `None` when one of them cannot be converted (each failure is recorded).
fn converted(
    mut document: Value,
    to: ApiVersion,
    at: &Place<'_>,
    errors: &mut Vec<InputError>,
) -> Option<Value> {
    let kind = document.get("kind").and_then(Value::as_str);
    if kind == Some("List")
        && let Some(Value::Array(items)) = document.get_mut("items")
    {
        let item_positions = at.positions.and_then(|p| p.child("items"));
        let failed_before = errors.len();
        for (i, item) in items.iter_mut().enumerate() {
            if is_roost(item) {
                match convert(item, to) {
                    Ok(done) => *item = done,
                    Err(err) => {
                        let positions = item_positions.and_then(|p| p.item(i));
                        errors.push(at.error(positions, format!("item {i}: {err}")));
                    }
                }
            }
        }
        return (errors.len() == failed_before).then_some(document);
    }
    if !is_roost(&document) {
        return Some(document);
    }
    convert(&document, to)
        .map_err(|err| errors.push(at.error(at.positions, err.to_string())))
        .ok()
}

fn is_roost(document: &Value) -> bool {
    document.get("kind").and_then(Value::as_str) == Some(KIND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, to: ApiVersion) -> Conversion {
        convert_inputs(&[PathBuf::from("-")], to, &mut text.as_bytes())
    }

    const ALPHA: &str = "# a comment
apiVersion: roost.birb.party/v1alpha1
kind: ManagedRoost
metadata:
  name: web
spec:
  chart:
    name: web
    repository:
      url: https://charts.example.com
      auth:
        password: hunter2
  healthChecks:
    - name: h
      type: tcp
      interval: 30
      tcp: {host: h, port: 1}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: on
data:
  flag: \"on\"
";

    #[test]
    fn roosts_are_converted_and_other_documents_pass_through() {
        let conversion = run(ALPHA, ApiVersion::V1beta1);
        assert_eq!(conversion.errors, []);
        assert_eq!(conversion.exit_code(), 0);
        let [roost, config] = conversion.documents.as_slice() else {
            panic!("{:?}", conversion.documents)
        };
        assert_eq!(roost["apiVersion"], "roost.birb.party/v1beta1");
        let auth = &roost["spec"]["chart"]["repository"]["auth"];
        assert_eq!(auth["deprecatedPassword"], "hunter2");
        assert!(auth.get("password").is_none());
        assert_eq!(roost["spec"]["healthChecks"][0]["interval"], "30");
        assert_eq!(config["data"]["flag"], "on");

        // The YAML reads back (as kubectl reads YAML) to the same documents,
        // without the comments; and back in v1alpha1, to the input.
        let yaml = conversion.render(ConvertFormat::Yaml);
        assert!(!yaml.contains("# a comment"), "{yaml}");
        let back = run(&yaml, ApiVersion::V1alpha1);
        assert_eq!(back.errors, []);
        let original = run(ALPHA, ApiVersion::V1alpha1);
        assert_eq!(back.documents, original.documents);
        let reread = run(&yaml, ApiVersion::V1beta1);
        assert_eq!(reread.documents, conversion.documents);
    }

    #[test]
    fn json_output_is_one_object_or_a_list() {
        let conversion = run(ALPHA, ApiVersion::V1beta1);
        let list: Value = serde_json::from_str(&conversion.render(ConvertFormat::Json)).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        let one = Conversion {
            documents: vec![conversion.documents[0].clone()],
            errors: Vec::new(),
        };
        let object: Value = serde_json::from_str(&one.render(ConvertFormat::Json)).unwrap();
        assert_eq!(object["apiVersion"], "roost.birb.party/v1beta1");
    }

    #[test]
    fn a_document_that_cannot_be_converted_is_named_with_its_line() {
        let text = format!(
            "{ALPHA}---\napiVersion: roost.birb.party/v9\nkind: ManagedRoost\nmetadata:\n  name: x\n"
        );
        let conversion = run(&text, ApiVersion::V1beta1);
        assert_eq!(conversion.exit_code(), 1);
        assert_eq!(
            conversion.documents.len(),
            2,
            "the others are still converted"
        );
        let [error] = conversion.errors.as_slice() else {
            panic!("{:?}", conversion.errors)
        };
        assert_eq!(error.location(), "-:26:1");
        assert!(
            error.message.starts_with("document 2: "),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("roost.birb.party/v9"),
            "{}",
            error.message
        );

        let list = "kind: List\nitems:\n- kind: ManagedRoost\n  apiVersion: nope\n";
        let conversion = run(list, ApiVersion::V1beta1);
        assert_eq!(conversion.documents, Vec::<Value>::new());
        assert_eq!(conversion.errors[0].location(), "-:3:3");
        assert!(
            conversion.errors[0].message.contains("item 0"),
            "{:?}",
            conversion.errors
        );

        let broken = run("kind: [\n", ApiVersion::V1beta1);
        assert_eq!(broken.exit_code(), 1);
        assert!(
            broken.errors[0].message.starts_with("not valid YAML"),
            "{:?}",
            broken.errors
        );
    }
}
