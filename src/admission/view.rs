//! A borrowed view of an AdmissionReview: the facts a verdict needs (uid,
//! kind, operation, names, dry run, the silence and conversion-data
//! annotations) and the raw bytes
//! of `object.spec`, `object.metadata.labels` and `oldObject.spec`, read in
//! one pass without building the object. A cache hit is answered from it
//! alone; a miss decodes only the objects it needs.
//!
//! The view must never accept what [`super::review::parse_review`] would
//! refuse, or read it differently: [`read`] gives up (and the caller takes
//! the full decode) on anything the two parsers could treat differently:
//! invalid UTF-8, nesting deeper than [`MAX_DEPTH`], exponents or long
//! numbers (out-of-range floats), `\u` escapes of surrogates, duplicate
//! fields, and fields of another type than the view expects.

use super::review::{ADMISSION_API_VERSION, ADMISSION_KIND, Operation, is_plausible_uid};
use crate::api::convert::CONVERSION_ANNOTATION;
use crate::validation::SILENCE_ANNOTATION;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Deepest nesting the view reads; the full decoder allows 128.
pub const MAX_DEPTH: usize = 100;
/// Longest number the view reads; longer ones could be out of range.
const MAX_NUMBER_CHARS: usize = 64;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeView<'a> {
    #[serde(borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<MapOnly<RequestView<'a>>>,
}

/// The objects of `request`, kept raw: read (a second pass) only when a
/// verdict needs the whole object, with policies in force or on a miss of the
/// mutating webhook.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    request: RawObjects<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawObjects<'a> {
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
}

/// The raw `object` and `oldObject` of a body [`read`] accepted.
pub fn raw_objects(body: &[u8]) -> Option<RawObjects<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    serde_json::from_str::<RawEnvelope<'_>>(text)
        .ok()
        .map(|e| e.request)
}

/// A struct read only from a JSON object: serde's derived structs also
/// accept an array of their fields, which a decoded object never is.
pub struct MapOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Map<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Map<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        deserializer.deserialize_map(Map(std::marker::PhantomData))
    }
}

/// Group, version and kind, as [`super::review::GroupVersionKind`] reads them.
#[derive(Deserialize)]
pub struct KindView<'a> {
    #[serde(default, borrow)]
    pub group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub version: Cow<'a, str>,
    #[serde(default, borrow)]
    pub kind: Cow<'a, str>,
}

#[derive(Default, Deserialize)]
struct ResourceView<'a> {
    #[serde(default, borrow, rename = "group")]
    _group: Cow<'a, str>,
    #[serde(default, borrow, rename = "version")]
    _version: Cow<'a, str>,
    #[serde(default, borrow, rename = "resource")]
    _resource: Cow<'a, str>,
}

/// `request`, typed as [`super::review::AdmissionRequest`] types it, with
/// the objects left as raw JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: KindView<'a>,
    /// Read only to refuse what the full decode refuses (`null` included).
    #[serde(default, borrow, rename = "resource")]
    _resource: ResourceView<'a>,
    #[serde(default, borrow)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    /// `None` when absent or `null`.
    #[serde(default, borrow)]
    pub object: Option<MapOnly<ObjectParts<'a>>>,
    #[serde(default, borrow)]
    pub old_object: Option<MapOnly<ObjectParts<'a>>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// The parts of `object` (or `oldObject`) the quick path reads.
#[derive(Deserialize)]
pub struct ObjectParts<'a> {
    /// `None` when absent; a metadata that is not an object (even `null`) ends the quick path.
    #[serde(default, borrow, deserialize_with = "present_map")]
    pub metadata: Option<MetadataView<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub spec: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataView<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub generate_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub labels: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub annotations: Option<Annotations<'a>>,
}

/// A field that is present, `null` included: `null` and absent decode to
/// different objects (and defaults), so they must not share a cache key.
fn present<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'a RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// A field that must be a JSON object when present.
fn present_map<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    MapOnly::<T>::deserialize(deserializer).map(|m| Some(m.0))
}

/// The annotations a verdict reads: the silence annotation, and the
/// conversion data a v1beta1 spec is converted to the hub with.
#[derive(Default)]
pub struct Annotations<'a> {
    pub silence: Option<Cow<'a, str>>,
    pub conversion: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = Annotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut read = Annotations::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    // A repeated key: the last one counts, as in a decoded object.
                    let slot = match key.as_ref() {
                        SILENCE_ANNOTATION => &mut read.silence,
                        CONVERSION_ANNOTATION => &mut read.conversion,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<BorrowedText<'de>>()?.0);
                }
                Ok(read)
            }
        }
        deserializer.deserialize_map(Map)
    }
}

/// A string, borrowed from the body when it has no escapes.
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = BorrowedText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// The request of a review the quick path can answer: a well-formed
/// AdmissionReview whose uid is usable; `None` for anything else, which the
/// full decode answers with its precise error.
pub fn read(body: &[u8]) -> Option<RequestView<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    if !decodes_alike(text.as_bytes()) {
        return None;
    }
    let envelope: EnvelopeView<'_> = serde_json::from_str(text).ok()?;
    let request = envelope.request?.0;
    let ours = envelope.api_version.as_deref() == Some(ADMISSION_API_VERSION)
        && envelope.kind.as_deref() == Some(ADMISSION_KIND)
        && is_plausible_uid(&request.uid);
    ours.then_some(request)
}

/// Whether `body` is JSON on which a borrowed, skipping parse and a full
/// `serde_json::Value` decode cannot disagree: nesting within [`MAX_DEPTH`],
/// no exponents, numbers within [`MAX_NUMBER_CHARS`], no surrogate escapes.
/// Syntax is left to the parser.
fn decodes_alike(body: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut digits = 0usize;
    let mut i = 0;
    while i < body.len() {
        let byte = body[i];
        if byte.is_ascii_digit() {
            digits += 1;
            if digits > MAX_NUMBER_CHARS {
                return false;
            }
            i += 1;
            continue;
        }
        let after_number = digits > 0;
        digits = 0;
        match byte {
            b'"' => match string_end(body, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'e' | b'E' if after_number => return false,
            b'.' if after_number => {
                // Keep counting the fraction's digits as part of the number.
                digits = 1;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// The index of the quote closing the string that starts at `from`, or
/// `None` for a surrogate `\u` escape or an unterminated string.
fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + quote_or_backslash(&body[from..])?;
        if body[at] == b'"' {
            return Some(at);
        }
        let escaped = *body.get(at + 1)?;
        if escaped == b'u' {
            let hex = body.get(at + 2..at + 6)?;
            // D800-DFFF: one half of a surrogate pair, lone or not.
            if matches!(hex[0], b'd' | b'D')
                && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
            {
                return None;
            }
        }
        from = at + 2;
    }
}

/// The index of the first `"` or `\\`. Eight bytes at a time: most strings
/// of a review are short keys, for which a vectorised search costs more to
/// set up than it saves.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // A byte of `word ^ pattern` is zero where `word` has the byte; the lowest
    // flagged byte is exact (borrows only run toward higher bytes).
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let tail = bytes.len() - chunks.remainder().len();
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|at| tail + at)
}

/// Whether the spec could ask for debug logs (`observability.logging.level:
/// debug`): false only when it surely does not, so the caller decodes it to be sure.
pub fn may_want_debug(spec: &RawValue) -> bool {
    let bytes = spec.get().as_bytes();
    memchr::memmem::find(bytes, b"debug").is_some() || memchr::memmem::find(bytes, b"\\u").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_the_two_parsers_read_alike() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        for (name, text, alike) in [
            (
                "plain object",
                r#"{"a": [1, 2.5, -3], "b": "x"}"#.to_owned(),
                true,
            ),
            (
                "words with e",
                r#"{"a": true, "b": false, "c": null}"#.to_owned(),
                true,
            ),
            ("e inside a string", r#"{"a": "1e400"}"#.to_owned(), true),
            ("escaped quote", r#"{"a": "say \"1e5\""}"#.to_owned(), true),
            (
                "escaped non-surrogate",
                r#"{"a": "\u003c\u00e9"}"#.to_owned(),
                true,
            ),
            ("nesting at the limit", nested(MAX_DEPTH), true),
            ("nesting past the limit", nested(MAX_DEPTH + 1), false),
            ("exponent", r#"{"a": 1e400}"#.to_owned(), false),
            (
                "exponent after a fraction",
                r#"{"a": 1.5E3}"#.to_owned(),
                false,
            ),
            (
                "long number",
                format!(r#"{{"a": {}}}"#, "9".repeat(65)),
                false,
            ),
            (
                "long fraction",
                format!(r#"{{"a": 0.{}}}"#, "1".repeat(64)),
                false,
            ),
            ("lone surrogate", r#"{"a": "\ud800"}"#.to_owned(), false),
            (
                "surrogate pair",
                r#"{"a": "\uD83D\uDE00"}"#.to_owned(),
                false,
            ),
            ("unterminated string", r#"{"a": "x"#.to_owned(), false),
        ] {
            assert_eq!(decodes_alike(text.as_bytes()), alike, "{name}");
        }
    }

    #[test]
    fn the_first_quote_or_backslash_is_found() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    // Bytes just above a match must not hide it (borrows run upward).
                    if at + 1 < len {
                        bytes[at + 1] = special ^ 0x01;
                    }
                    assert_eq!(quote_or_backslash(&bytes), Some(at), "{len} {at}");
                }
            }
            assert_eq!(quote_or_backslash(&vec![0x80 | b'"'; len]), None, "{len}");
        }
    }

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {request}}}"#
        )
    }

    #[test]
    fn the_view_reads_what_a_verdict_needs() {
        let body = review(
            r#"{"uid": "u1", "kind": {"group": "g", "version": "v", "kind": "K"}, "operation": "UPDATE",
                "namespace": "ns", "dryRun": true, "userInfo": {"username": "me"},
                "object": {"metadata": {"name": "w\u0065b", "labels": {"a": "b"},
                           "annotations": {"x": "y", "roost.birb.party/silence-warnings": "A,B",
                                           "roost.birb.party/conversion-data": "{\"numbers\":[\"/n\"]}"},
                           "managedFields": [{"manager": "kubectl"}]},
                           "spec": {"chart": {"name": "c"}}, "status": {"phase": "Ready"}},
                "oldObject": {"spec": null}}"#,
        );
        let request = read(body.as_bytes()).expect("a plain review is read");
        assert_eq!(request.uid, "u1");
        assert_eq!(request.operation, Operation::Update);
        assert_eq!(request.dry_run, Some(true));
        let object = &request.object.as_ref().unwrap().0;
        let metadata = object.metadata.as_ref().unwrap();
        assert_eq!(metadata.name.as_deref(), Some("web"));
        assert_eq!(metadata.labels.map(RawValue::get), Some(r#"{"a": "b"}"#));
        let annotations = metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.silence.as_deref(), Some("A,B"));
        assert_eq!(
            annotations.conversion.as_deref(),
            Some(r#"{"numbers":["/n"]}"#)
        );
        assert_eq!(
            object.spec.map(RawValue::get),
            Some(r#"{"chart": {"name": "c"}}"#)
        );
        let old = &request.old_object.as_ref().unwrap().0;
        assert_eq!(
            old.spec.map(RawValue::get),
            Some("null"),
            "null is kept apart from absent"
        );
        assert!(old.metadata.is_none());
    }

    #[test]
    fn the_view_leaves_to_the_full_decode_what_it_could_read_otherwise() {
        let kind = r#""kind": {"group": "g", "version": "v", "kind": "K"}, "operation": "CREATE""#;
        for (name, request) in [
            ("request is an array", r#"["u1"]"#.to_owned()),
            (
                "object is an array",
                format!(r#"{{"uid": "u1", {kind}, "object": [{{}}, {{}}]}}"#),
            ),
            (
                "metadata is null",
                format!(r#"{{"uid": "u1", {kind}, "object": {{"metadata": null}}}}"#),
            ),
            (
                "metadata is an array",
                format!(r#"{{"uid": "u1", {kind}, "object": {{"metadata": []}}}}"#),
            ),
            (
                "name is a number",
                format!(r#"{{"uid": "u1", {kind}, "object": {{"metadata": {{"name": 5}}}}}}"#),
            ),
            (
                "duplicate spec",
                format!(r#"{{"uid": "u1", {kind}, "object": {{"spec": {{}}, "spec": {{}}}}}}"#),
            ),
            (
                "resource is null",
                format!(r#"{{"uid": "u1", {kind}, "resource": null}}"#),
            ),
            ("uid is not a UID", format!(r#"{{"uid": "a b", {kind}}}"#)),
            (
                "exponent in an ignored field",
                format!(r#"{{"uid": "u1", {kind}, "userInfo": {{"x": 1e999}}}}"#),
            ),
        ] {
            assert!(read(review(&request).as_bytes()).is_none(), "{name}");
        }
        assert!(read(b"\xff").is_none(), "not UTF-8");
        assert!(
            read(
                review(&format!(r#"{{"uid": "u1", {kind}}}"#))
                    .replace("admission.k8s.io/v1", "v1")
                    .as_bytes()
            )
            .is_none(),
            "another apiVersion"
        );
    }

    #[test]
    fn a_spec_may_ask_for_debug_only_if_it_says_debug() {
        fn raw(text: &str) -> &RawValue {
            serde_json::from_str(text).unwrap()
        }
        assert!(!may_want_debug(raw(
            r#"{"observability": {"logging": {"level": "info"}}}"#
        )));
        assert!(may_want_debug(raw(
            r#"{"observability": {"logging": {"level": "debug"}}}"#
        )));
        assert!(may_want_debug(raw(
            r#"{"observability": {"logging": {"level": "\u0064ebug"}}}"#
        )));
    }
}
