//! What a rule's CEL sees of an object: its JSON with every secret replaced
//! by [`REDACTED`] before evaluation, so that no expression (a comparison,
//! `split`, `substring`, `size()`, an error message) can reveal one.
//!
//! Redacted, wherever they are in the object: every value under an `auth`
//! block but its `type`, `username` and `secretRef`; fields named like a
//! credential (`password`, `token`, `caBundle`, … see [`is_secret_key`]);
//! request headers that carry credentials (`Authorization`, cookies, API
//! keys, see [`is_secret_header`]); the user information of every URL in any
//! string (`https://<redacted>@host/…`); the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation (a copy of
//! the whole object). `metadata.managedFields` is left out (bookkeeping of
//! the apiserver, absent from the objects the controller judges). A key that
//! is there stays there: `has()` answers as on the original.

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull};
use cel::common::types::{CelString, CelUInt};
use cel::common::value::Val;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// What a secret reads as.
pub const REDACTED: &str = "<redacted>";
/// The annotation kubectl keeps a copy of the applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Fields of an `auth` block that are not secret.
const AUTH_PUBLIC: &[&str] = &["type", "username", "secretRef"];

/// Where a value sits, as far as secrets go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Plain,
    /// Inside an `auth` block.
    Auth,
    /// A map of request headers.
    Headers,
    /// Every scalar here is a secret.
    Secret,
}

/// Names of credential fields, lower case, without `-` and `_`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "token",
    // v1beta1's names of the inline credentials (api::version renames them).
    "deprecatedpassword",
    "deprecatedtoken",
    "bearertoken",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "secret",
    "clientsecret",
    "privatekey",
    "cabundle",
    "credentials",
];

/// A field named like a credential (compared without case, `-` and `_`;
/// called for every key of the object, so without allocating).
pub fn is_secret_key(key: &str) -> bool {
    if key.len() > 32 {
        return false;
    }
    let mut folded = [0u8; 32];
    let mut len = 0;
    for byte in key.bytes().filter(|b| !matches!(b, b'-' | b'_')) {
        folded[len] = byte.to_ascii_lowercase();
        len += 1;
    }
    let folded = &folded[..len];
    SECRET_KEYS.iter().any(|k| k.as_bytes() == folded)
}

/// A request header that carries credentials.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "cookie",
        "session",
        "signature",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// `text` with the user information of every URL in it replaced: from
/// `://` to the last `@` before the URL ends (at white space, a quote or
/// the end), as `checks::shown_url` reads a URL.
pub fn without_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        match url.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = tail;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The object as CEL sees it.
pub fn object(object: &Value) -> Box<dyn Val + '_> {
    match object {
        Value::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("metadata", Value::Object(metadata)) => metadata_val(metadata),
                        _ => val(value, place_of(Place::Plain, key)),
                    };
                    (CelMapKey::from(key.as_str()), value)
                })
                .collect::<HashMap<_, _>>(),
        )),
        other => val(other, Place::Plain),
    }
}

fn metadata_val(metadata: &serde_json::Map<String, Value>) -> Box<dyn Val + '_> {
    Box::new(CelMap::from(
        metadata
            .iter()
            .filter(|(k, _)| k.as_str() != "managedFields")
            .map(|(k, v)| {
                let value = match (k.as_str(), v) {
                    ("annotations", Value::Object(annotations)) => Box::new(CelMap::from(
                        annotations
                            .iter()
                            .map(|(name, value)| {
                                let place = if name == LAST_APPLIED {
                                    Place::Secret
                                } else {
                                    Place::Plain
                                };
                                (CelMapKey::from(name.as_str()), val(value, place))
                            })
                            .collect::<HashMap<_, _>>(),
                    ))
                        as Box<dyn Val + '_>,
                    _ => val(v, place_of(Place::Plain, k)),
                };
                (CelMapKey::from(k.as_str()), value)
            })
            .collect::<HashMap<_, _>>(),
    ))
}

/// Where the value of field `key` sits, in a map that sits at `parent`.
fn place_of(parent: Place, key: &str) -> Place {
    match parent {
        Place::Secret => Place::Secret,
        Place::Auth if AUTH_PUBLIC.contains(&key) => Place::Plain,
        Place::Auth => Place::Secret,
        Place::Headers if is_secret_header(key) => Place::Secret,
        _ if key == "auth" => Place::Auth,
        _ if key == "headers" => Place::Headers,
        _ if is_secret_key(key) => Place::Secret,
        _ => Place::Plain,
    }
}

/// JSON as CEL values, strings borrowed where nothing is hidden; integers
/// are `int` (`uint` beyond its range), other numbers `double`.
fn val(value: &Value, place: Place) -> Box<dyn Val + '_> {
    let secret = matches!(place, Place::Secret | Place::Auth);
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(_) | Value::String(_) if secret => Box::new(CelString::from(REDACTED)),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(without_userinfo(s))),
        Value::Array(items) => Box::new(CelList::from(
            items.iter().map(|v| val(v, place)).collect::<Vec<_>>(),
        )),
        Value::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), val(v, place_of(place, k))))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_leaves_every_url() {
        let cases = [
            (
                "https://charts.example.com/x",
                "https://charts.example.com/x",
            ),
            ("https://u:p@h/x", "https://<redacted>@h/x"),
            ("https://u:p/ss@h?q#f", "https://<redacted>@h?q#f"),
            ("https://u:p@@h", "https://<redacted>@h"),
            (
                "a https://u:p@h b http://v:q@i\nc",
                "a https://<redacted>@h b http://<redacted>@i\nc",
            ),
            ("url: 'oci://t0k3n@reg/x'", "url: 'oci://<redacted>@reg/x'"),
            ("mail me@example.com", "mail me@example.com"),
            ("no url", "no url"),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(text, shown)| without_userinfo(text) != *shown)
            .map(|(text, shown)| (text, shown, without_userinfo(text)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn credentials_are_recognised_by_name() {
        for key in [
            "password",
            "Token",
            "bearer_token",
            "api-key",
            "caBundle",
            "clientSecret",
            "deprecatedPassword",
            "deprecatedToken",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["name", "username", "type", "secretRef", "tokenFile"] {
            assert!(!is_secret_key(key), "{key}");
        }
        for header in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
        ] {
            assert!(is_secret_header(header), "{header}");
        }
        for header in ["Accept", "Content-Type", "User-Agent"] {
            assert!(!is_secret_header(header), "{header}");
        }
    }
}
