//! ConversionReview (`apiextensions.k8s.io/v1`) in and out, for the CRD's
//! conversion webhook: the body is parsed once ([`parse`]), the objects are
//! converted into a plain [`Decision`] ([`decide`], through
//! [`crate::api::convert`]) and the answer is encoded once ([`encode`]).
//!
//! A review converts all its objects or none: any object that cannot be
//! converted (not an object, another kind, a version not served), an unknown
//! `desiredAPIVersion` or too many objects make the whole answer
//! `result.status: Failure` with a message the apiserver passes on to the
//! client. Only a body that is not a usable ConversionReview is an HTTP 400.

use super::Refusal;
use super::review::is_plausible_uid;
use crate::api::convert::{convert_in_place, version_of};
use crate::api::version::ApiVersion;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse};
use serde::Deserialize;
use serde_json::Value;

pub const CONVERSION_API_VERSION: &str = "apiextensions.k8s.io/v1";
pub const CONVERSION_KIND: &str = "ConversionReview";

/// Most objects converted in one review. The apiserver sends one object, or
/// a list's page in one review (kubectl and kube-runtime page at 500); an
/// unpaged list of more v1alpha1 objects fails rather than making one review
/// hold thousands of converted copies at once.
pub const MAX_CONVERSION_OBJECTS: usize = 1000;

/// Largest answer: a converted object grows by its renamed credential keys,
/// its stringified values and the conversion-data annotation (at most
/// [`crate::api::convert::MAX_CONVERSION_DATA`] each), a few percent for real
/// objects; over twice the largest body, reached only by crafted input,
/// which gets a Failure instead.
pub const MAX_CONVERSION_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Longest quote of an object's name or an error in a Failure message.
const SHOWN_CHARS: usize = 128;

/// Which way an object is converted (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    AlphaToBeta,
    BetaToAlpha,
    /// Already in the desired version.
    Same,
    /// The object's or the desired version is not one we serve.
    Unknown,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::AlphaToBeta,
        Direction::BetaToAlpha,
        Direction::Same,
        Direction::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Direction::AlphaToBeta => "v1alpha1_to_v1beta1",
            Direction::BetaToAlpha => "v1beta1_to_v1alpha1",
            Direction::Same => "same",
            Direction::Unknown => "unknown",
        }
    }

    fn of(from: Option<ApiVersion>, to: Option<ApiVersion>) -> Direction {
        match (from, to) {
            (Some(from), Some(to)) if from == to => Direction::Same,
            (Some(ApiVersion::V1alpha1), Some(ApiVersion::V1beta1)) => Direction::AlphaToBeta,
            (Some(ApiVersion::V1beta1), Some(ApiVersion::V1alpha1)) => Direction::BetaToAlpha,
            _ => Direction::Unknown,
        }
    }
}

/// A review's objects counted by [`Direction`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally([u64; 4]);

impl Tally {
    fn add(&mut self, direction: Direction) {
        self.0[direction as usize] += 1;
    }

    /// Each direction with its count, zeros left out.
    pub fn counts(&self) -> impl Iterator<Item = (Direction, u64)> + '_ {
        Direction::ALL
            .into_iter()
            .map(|d| (d, self.0[d as usize]))
            .filter(|&(_, n)| n > 0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// What was decided about one review, before it is encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub uid: String,
    /// The converted objects in request order, or why none were.
    pub outcome: Result<Vec<Value>, String>,
    pub tally: Tally,
}

/// One review's answer, and what the metrics and logs record.
#[derive(Debug, PartialEq)]
pub struct ConversionReply {
    /// 200 for every ConversionReview, Failure included; 400 for a body that is none.
    pub status: u16,
    pub body: Vec<u8>,
    /// Empty when the body was refused before its uid was read.
    pub uid: String,
    /// Whether the answer carries converted objects (`result.status: Success`).
    pub converted: bool,
    pub tally: Tally,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<ConversionRequest>,
}

fn bad(message: String) -> Refusal {
    Refusal::new(400, "BadRequest", message)
}

/// Decodes a ConversionReview body; the refusal names what is wrong.
pub fn parse(body: &[u8]) -> Result<ConversionRequest, Refusal> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "body is not a JSON {CONVERSION_KIND} {CONVERSION_API_VERSION}: {}",
            crate::text::describe_json_error(&e)
        ))
    })?;
    if envelope.api_version.as_deref() != Some(CONVERSION_API_VERSION)
        || envelope.kind.as_deref() != Some(CONVERSION_KIND)
    {
        let shown = |t: Option<&str>| {
            t.map_or_else(
                || "(none)".to_owned(),
                |t| crate::validation::finding::shown_max(t, 64),
            )
        };
        return Err(bad(format!(
            "expected apiVersion {CONVERSION_API_VERSION} kind {CONVERSION_KIND}, got {} {}",
            shown(envelope.api_version.as_deref()),
            shown(envelope.kind.as_deref())
        )));
    }
    let request = envelope
        .request
        .ok_or_else(|| bad(format!("{CONVERSION_KIND} has no request")))?;
    if !is_plausible_uid(&request.uid) {
        return Err(bad(format!(
            "request.uid is empty or not a UID (at most {} printable ASCII characters)",
            super::review::MAX_UID_BYTES
        )));
    }
    Ok(request)
}

/// Converts every object of `request` to its `desiredAPIVersion`, or none.
pub fn decide(request: ConversionRequest) -> Decision {
    let desired = ApiVersion::from_api_version(&request.desired_api_version);
    let mut tally = Tally::default();
    for object in &request.objects {
        tally.add(Direction::of(version_of(object).ok(), desired));
    }
    let outcome = convert_all(request.objects, desired, &request.desired_api_version);
    Decision {
        uid: request.uid,
        outcome,
        tally,
    }
}

fn convert_all(
    mut objects: Vec<Value>,
    desired: Option<ApiVersion>,
    desired_text: &str,
) -> Result<Vec<Value>, String> {
    let Some(to) = desired else {
        return Err(format!(
            "desiredAPIVersion {} is not served; served: {}",
            crate::validation::finding::shown_max(desired_text, SHOWN_CHARS),
            ApiVersion::served_list()
        ));
    };
    if objects.len() > MAX_CONVERSION_OBJECTS {
        return Err(format!(
            "{} objects in one {CONVERSION_KIND}; roost-keeper converts at most {MAX_CONVERSION_OBJECTS} at once (list in pages, or read {})",
            objects.len(),
            ApiVersion::STORAGE.api_version()
        ));
    }
    for (i, object) in objects.iter_mut().enumerate() {
        let from = version_of(object)
            .map_err(|err| format!("object {i}{}: {}", name_of(object), cut(&err.to_string())))?;
        convert_in_place(object, from, to);
    }
    Ok(objects)
}

/// `text` (whose quoted input is already escaped) cut to [`SHOWN_CHARS`].
fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// ` (namespace/name)` of an object, when it has a name.
fn name_of(object: &Value) -> String {
    let metadata = &object["metadata"];
    match (metadata["namespace"].as_str(), metadata["name"].as_str()) {
        (Some(ns), Some(name)) => format!(
            " ({})",
            crate::validation::finding::shown_max(&format!("{ns}/{name}"), SHOWN_CHARS)
        ),
        (None, Some(name)) => format!(
            " ({})",
            crate::validation::finding::shown_max(name, SHOWN_CHARS)
        ),
        _ => String::new(),
    }
}

/// The ConversionReview the apiserver reads, serialized once and at most
/// `max_bytes` long: past it, a Failure saying so.
pub fn encode(decision: Decision, max_bytes: usize) -> ConversionReply {
    let Decision {
        uid,
        outcome,
        tally,
    } = decision;
    let response = ConversionResponse {
        types: None,
        uid: uid.clone(),
        result: Status::success(),
        converted_objects: Vec::new(),
    };
    let (response, converted) = match outcome {
        Ok(objects) => (response.success(objects), true),
        Err(message) => (response.failure(failure(&message)), false),
    };
    let mut out = Limited {
        bytes: Vec::with_capacity(256),
        max: max_bytes,
    };
    if serde_json::to_writer(&mut out, &response.into_review()).is_ok() {
        return ConversionReply {
            status: 200,
            body: out.bytes,
            uid,
            converted,
            tally,
        };
    }
    let message = format!(
        "the converted objects exceed {} MiB; convert fewer at once",
        max_bytes / (1024 * 1024)
    );
    let response = ConversionResponse {
        types: None,
        uid: uid.clone(),
        result: failure(&message),
        converted_objects: Vec::new(),
    };
    ConversionReply {
        status: 200,
        // A Status and a uid of at most MAX_UID_BYTES: serializing cannot fail.
        body: serde_json::to_vec(&response.into_review()).unwrap_or_default(),
        uid,
        converted: false,
        tally,
    }
}

fn failure(message: &str) -> Status {
    Status::failure(message, "BadRequest").with_code(400)
}

/// A writer that refuses to grow past `max` bytes.
struct Limited {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            return Err(std::io::Error::other("reply too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Answers one ConversionReview body.
pub fn review(body: &[u8]) -> ConversionReply {
    review_within(body, MAX_CONVERSION_REPLY_BYTES)
}

/// [`review`] with answers bounded by `max_reply_bytes`.
pub fn review_within(body: &[u8], max_reply_bytes: usize) -> ConversionReply {
    match parse(body) {
        Ok(request) => encode(decide(request), max_reply_bytes),
        Err(refusal) => ConversionReply {
            status: refusal.status,
            body: refusal.into_reply().body,
            uid: String::new(),
            converted: false,
            tally: Tally::default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::convert::CONVERSION_ANNOTATION;
    use serde_json::json;

    fn alpha(name: &str) -> Value {
        json!({
            "apiVersion": "roost.birb.party/v1alpha1",
            "kind": "ManagedRoost",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "chart": {
                    "name": "nginx",
                    "version": "1.2.3",
                    "repository": {
                        "url": "https://charts.example.com",
                        "auth": {"password": "hunter2"}
                    },
                },
                "healthChecks": [{"name": "http", "type": "tcp", "interval": 30}]
            }
        })
    }

    fn body(desired: &str, objects: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "desiredAPIVersion": desired,
                "objects": objects
            }
        }))
        .unwrap()
    }

    fn answered(reply: &ConversionReply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn objects_are_converted_both_ways_and_back_unchanged() {
        let original = alpha("web");
        let up = review(&body("roost.birb.party/v1beta1", vec![original.clone()]));
        assert_eq!((up.status, up.converted), (200, true));
        let out = answered(&up);
        assert_eq!(out["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(out["kind"], "ConversionReview");
        assert_eq!(
            out["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
        assert_eq!(out["response"]["result"]["status"], "Success");
        let beta = &out["response"]["convertedObjects"][0];
        assert_eq!(beta["apiVersion"], "roost.birb.party/v1beta1");
        let auth = &beta["spec"]["chart"]["repository"]["auth"];
        assert_eq!(auth["deprecatedPassword"], "hunter2");
        assert_eq!(beta["spec"]["healthChecks"][0]["interval"], "30");
        assert!(beta["metadata"]["annotations"][CONVERSION_ANNOTATION].is_string());

        let down = review(&body("roost.birb.party/v1alpha1", vec![beta.clone()]));
        let back = &answered(&down)["response"]["convertedObjects"][0];
        assert_eq!(back, &original);
        assert_eq!(
            up.tally.counts().collect::<Vec<_>>(),
            [(Direction::AlphaToBeta, 1)]
        );
        assert_eq!(
            down.tally.counts().collect::<Vec<_>>(),
            [(Direction::BetaToAlpha, 1)]
        );
    }

    #[test]
    fn an_object_already_in_the_desired_version_is_returned_as_it_is() {
        let reply = review(&body("roost.birb.party/v1alpha1", vec![alpha("a")]));
        assert_eq!(
            answered(&reply)["response"]["convertedObjects"][0],
            alpha("a")
        );
        assert_eq!(
            reply.tally.counts().collect::<Vec<_>>(),
            [(Direction::Same, 1)]
        );
    }

    #[test]
    fn an_empty_list_converts_to_an_empty_list() {
        let reply = review(&body("roost.birb.party/v1beta1", vec![]));
        assert!(reply.converted);
        assert_eq!(answered(&reply)["response"]["convertedObjects"], json!([]));
    }

    #[test]
    fn one_bad_object_fails_the_whole_review_naming_it() {
        let cases = [
            (json!([1, 2]), "object 1: the object is not a JSON object"),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
                "object 1 (\"cm\"): kind \"ConfigMap\" is not ManagedRoost",
            ),
            (
                json!({"apiVersion": "roost.birb.party/v2", "kind": "ManagedRoost", "metadata": {"name": "n", "namespace": "ns"}}),
                "object 1 (\"ns/n\"): apiVersion \"roost.birb.party/v2\" is not served",
            ),
        ];
        for (object, expected) in cases {
            let reply = review(&body("roost.birb.party/v1beta1", vec![alpha("ok"), object]));
            assert_eq!((reply.status, reply.converted), (200, false));
            let out = answered(&reply);
            let result = &out["response"]["result"];
            assert_eq!(result["status"], "Failure", "{out}");
            let message = result["message"].as_str().unwrap();
            assert!(message.starts_with(expected), "{message}");
            assert_eq!(out["response"]["convertedObjects"], json!([]), "{out}");
            assert_eq!(
                out["response"]["uid"],
                "705ab4f5-6393-11e8-b7cc-42010a800002"
            );
            assert_eq!(reply.tally.total(), 2);
        }
    }

    #[test]
    fn an_unknown_desired_version_fails_every_object() {
        let reply = review(&body("roost.birb.party/v9", vec![alpha("a")]));
        let out = answered(&reply);
        assert_eq!(out["response"]["result"]["status"], "Failure");
        let message = out["response"]["result"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("desiredAPIVersion \"roost.birb.party/v9\" is not served; served: roost.birb.party/v1alpha1, roost.birb.party/v1beta1"),
            "{message}"
        );
        assert_eq!(
            reply.tally.counts().collect::<Vec<_>>(),
            [(Direction::Unknown, 1)]
        );
    }

    #[test]
    fn more_objects_than_the_cap_fail_and_the_cap_itself_converts() {
        let at_cap = review(&body(
            "roost.birb.party/v1beta1",
            vec![alpha("a"); MAX_CONVERSION_OBJECTS],
        ));
        assert!(at_cap.converted);
        let over = review(&body(
            "roost.birb.party/v1beta1",
            vec![alpha("a"); MAX_CONVERSION_OBJECTS + 1],
        ));
        assert!(!over.converted);
        let message = answered(&over)["response"]["result"]["message"].to_string();
        assert!(
            message.contains("1001 objects in one ConversionReview"),
            "{message}"
        );
    }

    #[test]
    fn an_answer_past_the_reply_bound_is_a_failure_within_it() {
        let request = body("roost.birb.party/v1beta1", vec![alpha("a"); 20]);
        let fits = review_within(&request, 64 * 1024);
        assert!(fits.converted);
        let max = fits.body.len() - 1;
        let over = review_within(&request, max);
        assert!(!over.converted);
        assert!(over.body.len() <= max);
        let message = answered(&over)["response"]["result"]["message"].to_string();
        assert!(
            message.contains("the converted objects exceed"),
            "{message}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_conversion_review_is_a_400_naming_the_problem() {
        let cases: [(&[u8], &str); 5] = [
            (b"{\"apiVersion\": ", "body is not a JSON ConversionReview apiextensions.k8s.io/v1: truncated at line 1"),
            (
                br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "desiredAPIVersion": "x", "objects": []}}"#,
                "expected apiVersion apiextensions.k8s.io/v1 kind ConversionReview, got \"admission.k8s.io/v1\" \"AdmissionReview\"",
            ),
            (
                br#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}"#,
                "ConversionReview has no request",
            ),
            (
                br#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {"uid": "", "desiredAPIVersion": "x", "objects": []}}"#,
                "request.uid is empty or not a UID",
            ),
            (
                br#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {"uid": "u", "objects": {}}}"#,
                "body is not a JSON ConversionReview apiextensions.k8s.io/v1: ",
            ),
        ];
        for (body, expected) in cases {
            let reply = review(body);
            assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
            let out = answered(&reply);
            assert_eq!(out["kind"], "Status");
            assert_eq!(out["reason"], "BadRequest");
            let message = out["message"].as_str().unwrap();
            assert!(message.starts_with(expected), "{message}");
            assert_eq!(reply.tally.total(), 0);
        }
    }
}
