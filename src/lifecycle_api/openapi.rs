//! The OpenAPI 3 description of the lifecycle API, served at
//! `/openapi.json`. Its paths are the router's ([`super::http::ROUTES`]);
//! [`conforms`] checks an answer against its schemas, which the unit tests
//! do for the views the handlers serialise and the end-to-end tests for the
//! real answers: the description cannot drift from the handlers silently.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::LazyLock;

pub const PATH: &str = "/openapi.json";

fn nullable(schema: Value) -> Value {
    let mut schema = schema;
    schema["nullable"] = json!(true);
    schema
}

fn string() -> Value {
    json!({"type": "string"})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn counts() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "integer"}})
}

fn schemas() -> Value {
    let time = || json!({"type": "string", "format": "date-time"});
    json!({
        "Error": object(json!({
            "error": {"type": "string", "enum": ["unauthenticated", "forbidden", "not_found", "bad_request", "too_many_streams", "unavailable"]},
            "message": string(),
        }), &["error", "message"]),
        "Validated": object(json!({
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": string(), "message": string(),
        }), &["status", "reason", "message"]),
        "Chart": object(json!({"name": nullable(string()), "version": nullable(string())}), &["name", "version"]),
        "RoostSummary": object(json!({
            "namespace": string(), "name": string(), "uid": string(),
            "generation": nullable(json!({"type": "integer"})),
            "phase": nullable(string()), "health": nullable(string()),
            "validated": nullable(reference("Validated")),
            "chart": nullable(reference("Chart")),
            "counts": counts(),
            "lastActivity": nullable(time()), "createdAt": nullable(time()),
        }), &["namespace", "name", "uid", "generation", "phase", "health", "validated", "chart", "counts", "lastActivity", "createdAt"]),
        "RoostList": object(json!({
            "items": {"type": "array", "items": reference("RoostSummary")},
            "lastEventId": {"type": "string", "description": "Send as Last-Event-ID to the stream to miss no change after this list"},
        }), &["items", "lastEventId"]),
        "Record": object(json!({
            "type": string(), "timestamp": time(), "message": string(),
            "details": nullable(json!({"type": "object", "additionalProperties": {"type": "string"}})),
        }), &["type", "timestamp", "message", "details"]),
        "Occurred": object(json!({
            "type": string(), "within": string(), "occurred": {"type": "boolean"}, "at": nullable(time()),
        }), &["type", "within", "occurred", "at"]),
        "Lifecycle": object(json!({
            "namespace": string(), "name": string(), "uid": string(),
            "counts": counts(),
            "records": {"type": "array", "items": reference("Record"), "description": "Oldest first"},
            "occurred": reference("Occurred"),
            "phaseDurations": {"type": "object", "additionalProperties": {"type": "string"}},
            "currentPhase": nullable(string()), "phaseSince": nullable(time()), "createdAt": nullable(time()),
        }), &["namespace", "name", "uid", "counts", "records", "phaseDurations", "currentPhase", "phaseSince", "createdAt"]),
        "Finding": object(json!({
            "code": string(),
            "level": {"type": "string", "enum": ["error", "warning", "info"]},
            "field": string(), "message": string(),
            "summary": nullable(json!({"type": "string", "description": "The code's summary (roost-keeper explain)"})),
            "fix": nullable(json!({"type": "string", "description": "How to fix it (roost-keeper explain)"})),
        }), &["code", "level", "field", "message", "summary", "fix"]),
        "Findings": object(json!({
            "namespace": string(), "name": string(),
            "generation": nullable(json!({"type": "integer"})),
            "valid": {"type": "boolean"},
            "findings": {"type": "array", "items": reference("Finding")},
        }), &["namespace", "name", "generation", "valid", "findings"]),
    })
}

/// The 200 answer and the errors a route can give (each by its status code).
fn answers(ok: Value, errors: &[u16]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("200".into(), ok);
    for code in errors {
        let what = match code {
            400 => "A parameter is malformed",
            401 => "No bearer token, or the cluster did not accept it",
            403 => {
                "The caller may not list and watch managedroosts in the namespace, or the Origin is not allowed"
            }
            404 => "No such roost",
            429 => "Too many event streams open",
            _ => "The cluster could not review the request, or the roosts are still being listed",
        };
        all.insert(
            code.to_string(),
            json!({"description": what, "content": {"application/json": {"schema": reference("Error")}}}),
        );
    }
    Value::Object(all)
}

/// Every route: no token, a namespace not readable, the cluster unavailable.
const AUTH: [u16; 3] = [401, 403, 503];

fn json_answer(schema: &str) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": reference(schema)}}})
}

fn roost_parameters() -> Value {
    json!([
        {"name": "namespace", "in": "path", "required": true, "schema": string()},
        {"name": "name", "in": "path", "required": true, "schema": string()},
    ])
}

fn namespace_filter() -> Value {
    json!({"name": "namespace", "in": "query", "required": false, "schema": string(),
           "description": "Only this namespace (403 when the caller may not read it); without it, every namespace the caller may read"})
}

/// The whole description.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        use super::http::{FINDINGS, LIFECYCLE, ROOST, ROOSTS, STREAM};
        let mut paths = serde_json::Map::new();
        paths.insert(
            ROOSTS.into(),
            json!({"get": {
                "operationId": "listRoosts", "summary": "The roosts the caller may read",
                "parameters": [namespace_filter()],
                "responses": answers(json_answer("RoostList"), &AUTH),
            }}),
        );
        paths.insert(
            ROOST.into(),
            json!({"get": {
                "operationId": "getRoost", "summary": "One roost's summary",
                "parameters": roost_parameters(),
                "responses": answers(json_answer("RoostSummary"), &[AUTH.as_slice(), &[404]].concat()),
            }}),
        );
        let mut lifecycle_parameters = roost_parameters();
        if let Some(list) = lifecycle_parameters.as_array_mut() {
            list.extend([
                json!({"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": super::view::MAX_RECORDS, "default": super::view::DEFAULT_RECORDS}, "description": "How many of the most recent records"}),
                json!({"name": "type", "in": "query", "schema": {"type": "string", "maxLength": super::view::MAX_TYPE_CHARS}, "description": "Only records of this type (Created, Installing, Ready, Upgrading, Healthy, Unhealthy, Failed, TeardownTriggered)"}),
                json!({"name": "within", "in": "query", "schema": string(), "description": "With type: whether such a record was made within this Go duration before now (e.g. 5m); answered in `occurred`"}),
            ]);
        }
        paths.insert(LIFECYCLE.into(), json!({"get": {
            "operationId": "getLifecycle", "summary": "One roost's lifecycle: counts by type, the last records, whether a type occurred recently, phase durations",
            "parameters": lifecycle_parameters,
            "responses": answers(json_answer("Lifecycle"), &[AUTH.as_slice(), &[400, 404]].concat()),
        }}));
        paths.insert(FINDINGS.into(), json!({"get": {
            "operationId": "getFindings", "summary": "One roost's current findings, with each code's explanation",
            "parameters": roost_parameters(),
            "responses": answers(json_answer("Findings"), &[AUTH.as_slice(), &[404]].concat()),
        }}));
        paths.insert(STREAM.into(), json!({"get": {
            "operationId": "streamEvents",
            "summary": "Server-Sent Events: lifecycle, phase, health, validated, roost, deleted and resync events of the namespaces the caller may read",
            "description": "Each event has `id`, `event` and one line of JSON `data`; every data but deleted's and resync's holds `roost` (a RoostSummary). A `: heartbeat` comment comes every 15 s. Send `Last-Event-ID` to resume; an id this replica cannot resume from, or a client too slow to keep up, gets a `resync` event: list again.",
            "parameters": [namespace_filter(), {"name": "Last-Event-ID", "in": "header", "required": false, "schema": string()}],
            "responses": answers(json!({"description": "An endless event stream", "content": {"text/event-stream": {"schema": string()}}}), &[AUTH.as_slice(), &[429]].concat()),
        }}));
        json!({
            "openapi": "3.0.3",
            "info": {
                "title": "roost-keeper lifecycle API",
                "version": "v1",
                "description": "Read-only: ManagedRoosts, their lifecycles and findings, and a stream of their changes. Authenticate with a Kubernetes bearer token; the caller sees the namespaces where it may list and watch managedroosts.",
            },
            "security": [{"bearer": []}],
            "paths": paths,
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": schemas(),
            },
        })
    });
    &DOCUMENT
}

pub async fn serve() -> Response {
    axum::Json(document()).into_response()
}

/// Whether `value` conforms to the component schema `name` (the subset
/// this description uses: type, properties, required, additionalProperties,
/// items, enum, nullable, `$ref`). The problems, by JSON path.
pub fn conforms(value: &Value, name: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    check(&reference(name), value, "$", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if value.is_null() && schema.get("nullable") == Some(&json!(true)) {
        return;
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.trim_start_matches("#/components/schemas/");
        match document()["components"]["schemas"].get(name) {
            Some(resolved) => return check(resolved, value, at, problems),
            None => return problems.push(format!("{at}: unknown schema {name}")),
        }
    }
    if value.is_null() {
        if schema.get("nullable") != Some(&json!(true)) {
            problems.push(format!("{at}: null where the schema does not allow it"));
        }
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {values:?}"));
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        return problems.push(format!("{at}: {value} is not of type {}", schema["type"]));
    }
    if let Some(items) = schema.get("items") {
        for (i, item) in value.as_array().into_iter().flatten().enumerate() {
            check(items, item, &format!("{at}[{i}]"), problems);
        }
    }
    let Some(fields) = value.as_object() else {
        return;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = required.as_str().filter(|k| !fields.contains_key(*k)) {
            problems.push(format!("{at}: {key} is missing"));
        }
    }
    for (key, field) in fields {
        let path = format!("{at}.{key}");
        match (
            properties.and_then(|p| p.get(key)),
            schema.get("additionalProperties"),
        ) {
            (Some(property), _) => check(property, field, &path, problems),
            (None, Some(Value::Bool(false))) => {
                problems.push(format!("{path}: not in the description"))
            }
            (None, Some(additional)) if additional.is_object() => {
                check(additional, field, &path, problems)
            }
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::{self, LifecycleQuery};
    use super::*;
    use crate::api::{LifecycleStatus, ManagedRoostStatus, Phase};
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn the_description_lists_exactly_the_routes() {
        let mut described: Vec<&str> = document()["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut routed = super::super::http::ROUTES.to_vec();
        described.sort_unstable();
        routed.sort_unstable();
        assert_eq!(described, routed);
        // Each route lists the errors it gives, not every error there is.
        let codes = |path: &str| -> Vec<String> {
            document()["paths"][path]["get"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        use super::super::http::{LIFECYCLE, ROOSTS, STREAM};
        assert_eq!(codes(ROOSTS), ["200", "401", "403", "503"]);
        assert_eq!(codes(LIFECYCLE), ["200", "400", "401", "403", "404", "503"]);
        assert_eq!(codes(STREAM), ["200", "401", "403", "429", "503"]);
    }

    fn status() -> ManagedRoostStatus {
        let mut lifecycle = LifecycleStatus::default();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        crate::controller::lifecycle::track_lifecycle(
            &mut lifecycle,
            "Created",
            "created",
            [("k".to_owned(), "v".to_owned())].into(),
            now,
        );
        ManagedRoostStatus {
            phase: Some(Phase::Pending),
            lifecycle: Some(lifecycle),
            ..Default::default()
        }
    }

    #[test]
    fn the_views_the_handlers_send_conform() {
        let identity = view::Identity {
            namespace: "a",
            name: "b",
            uid: "u",
            generation: Some(1),
            created_at: None,
        };
        let spec = json!({"chart": {"name": "web", "version": "1.0.0"}});
        let status = status();
        let summary = view::summary(&identity, Some(&spec), Some(&status));
        conforms(&serde_json::to_value(&summary).unwrap(), "RoostSummary").unwrap();
        let bare = view::summary(&identity, None, None);
        conforms(&serde_json::to_value(&bare).unwrap(), "RoostSummary").unwrap();
        conforms(
            &json!({"items": [summary], "lastEventId": "e-1"}),
            "RoostList",
        )
        .unwrap();
        for query in [
            LifecycleQuery::parse(None, None, None).unwrap(),
            LifecycleQuery::parse(Some("5"), Some("Created"), Some("5m")).unwrap(),
        ] {
            let lifecycle = view::lifecycle_view(&summary, Some(&status), &query, Timestamp::now());
            conforms(&serde_json::to_value(&lifecycle).unwrap(), "Lifecycle").unwrap();
        }
    }

    #[test]
    fn a_drifted_answer_does_not_conform() {
        let problems =
            conforms(&json!({"items": [{"name": 3, "extra": true}]}), "RoostList").unwrap_err();
        let text = problems.join("\n");
        for expected in [
            "lastEventId is missing",
            "$.items[0].name: 3 is not of type",
            "$.items[0].extra: not in the description",
            "$.items[0]: uid is missing",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }
}
