//! CEL for policy rules: compiled once per policy generation, with a fixed
//! list of functions (anything else is a compile error, never a surprise at
//! evaluation) and bounds that keep one evaluation small.
//!
//! Bounds: an expression has at most [`MAX_EXPRESSION_BYTES`] bytes and
//! [`MAX_NODES`] syntax nodes, nests at most [`MAX_COMPREHENSION_DEPTH`]
//! macros that loop (`all`, `exists`, `exists_one`, `map`, `filter`), and
//! the parser refuses nesting deeper than 96. Lists and maps in a spec hold
//! at most 100 entries (the CRD), so one rule visits at most 100² elements.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
    STRING_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::{Context, Env, Program, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Longest expression accepted.
pub const MAX_EXPRESSION_BYTES: usize = 2048;
/// Most syntax nodes in one expression (after macro expansion).
pub const MAX_NODES: usize = 1000;
/// Most looping macros nested inside each other.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

/// Functions and methods a rule may call, besides operators (`==`, `&&`,
/// `in`, `[]`, `?:`, …) and the macros `has`, `all`, `exists`,
/// `exists_one`, `map` and `filter`. Each is checked to evaluate by a test.
pub const FUNCTIONS: &[&str] = &[
    // standard library
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "string",
    "int",
    "uint",
    "double",
    "bool",
    "type",
    "duration",
    "timestamp",
    "orValue",
    "hasValue",
    "value",
    // strings extension (as in Kubernetes CEL)
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
];

fn env() -> &'static Arc<Env> {
    static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
        let mut env = Env::stdlib();
        // The strings extension and `matches` register once on a fresh
        // standard environment (built without the crate's own `matches`).
        env.add_extension(cel::extensions::strings)
            .expect("the strings extension fits the standard environment");
        env.add_overload(
            "matches",
            "matches",
            vec![STRING_TYPE, STRING_TYPE],
            matches,
        )
        .expect("matches is not declared yet");
        env.add_member_overload(
            "matches",
            "string_matches",
            STRING_TYPE,
            vec![STRING_TYPE],
            matches,
        )
        .expect("matches is not declared yet");
        Arc::new(env)
    });
    &ENV
}

/// Compiled patterns kept for reuse (a policy's patterns are few; compiling
/// one costs about 30 µs, matching it well under 1 µs).
const REGEX_CACHE_ENTRIES: u64 = 512;
/// Most memory one compiled pattern may take (the regex crate's size limit).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn compiled_regex(pattern: &str) -> Result<Arc<regex::Regex>, regex::Error> {
    static CACHE: LazyLock<moka::sync::Cache<String, Arc<regex::Regex>>> =
        LazyLock::new(|| moka::sync::Cache::new(REGEX_CACHE_ENTRIES));
    if let Some(regex) = CACHE.get(pattern) {
        return Ok(regex);
    }
    let regex = Arc::new(
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()?,
    );
    CACHE.insert(pattern.to_owned(), Arc::clone(&regex));
    Ok(regex)
}

/// `matches(text, pattern)` and `text.matches(pattern)`: RE2 syntax, linear
/// time, compiled patterns cached.
fn matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, cel::ExecutionError> {
    let text = |i: usize| {
        args.get(i)
            .and_then(|a| a.downcast_ref::<CelString>())
            .map(|s| s.inner())
            .ok_or_else(|| cel::ExecutionError::function_error("matches", "expects two strings"))
    };
    let regex = compiled_regex(text(1)?).map_err(|_| {
        cel::ExecutionError::function_error("matches", "not a valid regular expression")
    })?;
    Ok(CowVal::owned(CelBool::from(regex.is_match(text(0)?))))
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expression(Program);

/// Why an expression does not compile; `line` and `column` are 1-based
/// positions inside the expression when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub position: Option<(usize, usize)>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "line {line} column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl CompileError {
    fn new(message: impl Into<String>) -> Self {
        CompileError {
            message: message.into(),
            position: None,
        }
    }
}

/// Compiles `source`: syntax, bounds, and every function known.
pub fn compile(source: &str) -> Result<Expression, CompileError> {
    if source.trim().is_empty() {
        return Err(CompileError::new("the expression is empty"));
    }
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(CompileError::new(format!(
            "the expression has {} bytes; at most {MAX_EXPRESSION_BYTES}",
            source.len()
        )));
    }
    let program = env().compile(source).map_err(|errors| {
        let first = errors.errors.first();
        CompileError {
            message: first.map_or_else(
                || "syntax error".to_owned(),
                |e| e.msg.chars().take(200).collect(),
            ),
            position: first.and_then(|e| {
                Some((
                    usize::try_from(e.pos.0).ok()?,
                    usize::try_from(e.pos.1).ok()?,
                ))
            }),
        }
    })?;
    let mut shape = Shape::default();
    shape.visit(program.expression(), 0);
    if shape.nodes > MAX_NODES {
        return Err(CompileError::new(format!(
            "the expression has more than {MAX_NODES} nodes"
        )));
    }
    if shape.comprehension_depth > MAX_COMPREHENSION_DEPTH {
        return Err(CompileError::new(format!(
            "all/exists/exists_one/map/filter nest {} deep; at most {MAX_COMPREHENSION_DEPTH}",
            shape.comprehension_depth
        )));
    }
    for function in program.references().functions() {
        let operator = function.starts_with(['_', '@', '!']);
        if !operator && !FUNCTIONS.contains(&function) {
            return Err(CompileError::new(format!(
                "unsupported function {function:?}; supported: {}",
                FUNCTIONS.join(", ")
            )));
        }
    }
    Ok(Expression(program))
}

/// Size and loop nesting of an expression tree.
#[derive(Default)]
struct Shape {
    nodes: usize,
    comprehension_depth: usize,
}

impl Shape {
    fn visit(&mut self, node: &IdedExpr, depth: usize) {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return;
        }
        match &node.expr {
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.visit(target, depth);
                }
                call.args.iter().for_each(|a| self.visit(a, depth));
            }
            Expr::Comprehension(c) => {
                let inner = depth + 1;
                self.comprehension_depth = self.comprehension_depth.max(inner);
                self.visit(&c.iter_range, depth);
                for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.visit(part, inner);
                }
            }
            Expr::List(list) => list.elements.iter().for_each(|e| self.visit(e, depth)),
            Expr::Map(map) => map
                .entries
                .iter()
                .for_each(|e| self.visit_entry(&e.expr, depth)),
            Expr::Struct(s) => s
                .entries
                .iter()
                .for_each(|e| self.visit_entry(&e.expr, depth)),
            Expr::Select(select) => self.visit(&select.operand, depth),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn visit_entry(&mut self, entry: &EntryExpr, depth: usize) {
        match entry {
            EntryExpr::StructField(field) => self.visit(&field.value, depth),
            EntryExpr::MapEntry(entry) => {
                self.visit(&entry.key, depth);
                self.visit(&entry.value, depth);
            }
        }
    }
}

/// The variables a rule sees: `object` and `oldObject` (null on CREATE),
/// borrowed from the JSON they were read from.
pub struct Variables<'v> {
    context: Context<'v, 'v>,
}

impl<'v> Variables<'v> {
    pub fn new(object: &'v serde_json::Value, old_object: Option<&'v serde_json::Value>) -> Self {
        let mut context = Context::with_env(Arc::clone(env()));
        context.add_variable_as_val("object", object_val(object));
        context.add_variable_as_val(
            "oldObject",
            old_object.map_or_else(|| Box::new(CelNull) as Box<dyn Val + 'v>, object_val),
        );
        Variables { context }
    }
}

/// An object as CEL sees it: its JSON, without `metadata.managedFields`
/// (bookkeeping of the apiserver, absent from the stored objects the
/// controller judges).
fn object_val(object: &serde_json::Value) -> Box<dyn Val + '_> {
    match object {
        serde_json::Value::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("metadata", serde_json::Value::Object(metadata)) => Box::new(CelMap::from(
                            metadata
                                .iter()
                                .filter(|(k, _)| k.as_str() != "managedFields")
                                .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
                                .collect::<HashMap<_, _>>(),
                        ))
                            as Box<dyn Val + '_>,
                        _ => json_val(value),
                    };
                    (CelMapKey::from(key.as_str()), value)
                })
                .collect::<HashMap<_, _>>(),
        )),
        other => json_val(other),
    }
}

/// JSON as CEL values, strings borrowed; integers are `int` (`uint` beyond
/// its range), other numbers `double`.
fn json_val(value: &serde_json::Value) -> Box<dyn Val + '_> {
    use serde_json::Value as J;
    match value {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(CelList::from(
            items.iter().map(json_val).collect::<Vec<_>>(),
        )),
        J::Object(fields) => Box::new(CelMap::from(
            fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

impl Expression {
    /// Evaluates to a bool, or says why not (a missing field, a wrong type).
    pub fn is_true(&self, variables: &Variables<'_>) -> Result<bool, String> {
        match self.0.execute(&variables.context) {
            Ok(Value::Bool(passes)) => Ok(passes),
            Ok(other) => Err(format!("evaluates to {}, not a bool", value_kind(&other))),
            Err(err) => Err(shown_error(&err)),
        }
    }

    /// Evaluates to a string, or says why not.
    pub fn text(&self, variables: &Variables<'_>) -> Result<String, String> {
        match self.0.execute(&variables.context) {
            Ok(Value::String(text)) => Ok(text.to_string()),
            Ok(other) => Err(format!("evaluates to {}, not a string", value_kind(&other))),
            Err(err) => Err(shown_error(&err)),
        }
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Bool(_) => "a bool",
        Value::Null => "null",
        _ => "another type",
    }
}

/// The evaluation error, short and without values from the object.
fn shown_error(err: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    match err {
        E::NoSuchKey(key) => format!(
            "no such key {}",
            crate::validation::finding::shown_max(key, 64)
        ),
        E::UndeclaredReference(name) => format!(
            "undeclared reference {}",
            crate::validation::finding::shown_max(name, 64)
        ),
        _ => {
            let text = err.to_string();
            // Messages of other errors can quote values; keep the kind only.
            text.split(':')
                .next()
                .unwrap_or("evaluation error")
                .chars()
                .take(120)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object() -> serde_json::Value {
        json!({"metadata": {"name": "web", "labels": {"env": "prod"}},
               "spec": {"chart": {"name": "Nginx", "version": "1.2.3"},
                        "healthChecks": [{"name": "a"}, {"name": "bb"}]}})
    }

    #[test]
    fn every_supported_function_compiles_and_evaluates() {
        let samples = [
            ("size", "size(object.spec.healthChecks) == 2"),
            ("contains", "object.spec.chart.name.contains('gin')"),
            ("startsWith", "object.spec.chart.name.startsWith('Ng')"),
            ("endsWith", "object.spec.chart.name.endsWith('nx')"),
            ("matches", "object.spec.chart.version.matches('^[0-9.]+$')"),
            ("string", "string(1) == '1'"),
            ("int", "int('5') == 5"),
            ("uint", "uint(5) == 5u"),
            ("double", "double(1) == 1.0"),
            ("bool", "bool('true')"),
            ("type", "type(1) == int"),
            ("duration", "duration('1h') > duration('1m')"),
            (
                "timestamp",
                "timestamp('2024-01-01T00:00:00Z') < timestamp('2025-01-01T00:00:00Z')",
            ),
            ("orValue", "object.metadata.?namespace.orValue('d') == 'd'"),
            ("hasValue", "!object.metadata.?namespace.hasValue()"),
            ("value", "object.metadata.?name.value() == 'web'"),
            ("charAt", "'abc'.charAt(1) == 'b'"),
            ("indexOf", "'abc'.indexOf('c') == 2"),
            ("lastIndexOf", "'abca'.lastIndexOf('a') == 3"),
            (
                "lowerAscii",
                "object.spec.chart.name.lowerAscii() == 'nginx'",
            ),
            ("upperAscii", "'a'.upperAscii() == 'A'"),
            ("replace", "'a-b'.replace('-', '_') == 'a_b'"),
            ("split", "object.spec.chart.version.split('.').size() == 3"),
            ("substring", "'abc'.substring(1) == 'bc'"),
            ("trim", "' a '.trim() == 'a'"),
            (
                "join",
                "object.spec.healthChecks.map(h, h.name).join(',') == 'a,bb'",
            ),
        ];
        let object = object();
        let variables = Variables::new(&object, None);
        let mut failures = Vec::new();
        for (function, source) in samples {
            match compile(source).map(|e| e.is_true(&variables)) {
                Ok(Ok(true)) => {}
                other => failures.push(format!("{function}: {source}: {other:?}")),
            }
        }
        let sampled: Vec<&str> = samples.iter().map(|(f, _)| *f).collect();
        for function in FUNCTIONS {
            if !sampled.contains(function) {
                failures.push(format!("{function}: no sample"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn compile_errors_say_where_and_why() {
        let err = compile("object.spec.x ==").unwrap_err();
        assert_eq!(err.position, Some((1, 17)), "{err}");
        assert!(err.message.contains("Syntax error"), "{err}");
        let unknown = compile("nosuch(object)").unwrap_err();
        assert!(
            unknown
                .message
                .starts_with("unsupported function \"nosuch\""),
            "{unknown}"
        );
        let long = "true && ".repeat(300) + "true";
        assert!(compile(&long).unwrap_err().message.contains("bytes"));
        let nested = "object.spec.healthChecks.all(a, object.spec.healthChecks.all(b, object.spec.healthChecks.all(c, true)))";
        assert!(compile(nested).unwrap_err().message.contains("nest 3 deep"));
        assert!(
            compile("object.spec.healthChecks.all(a, object.spec.healthChecks.all(b, true))")
                .is_ok()
        );
        assert!(compile("  ").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn objects_are_json_without_managed_fields_and_integers_are_ints() {
        let object = json!({"metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]},
                            "spec": {"healthChecks": [{"tcp": {"port": 80}}], "weight": 0.5}});
        let variables = Variables::new(&object, None);
        let mut wrong = Vec::new();
        for source in [
            "!has(object.metadata.managedFields)",
            "object.spec.healthChecks[0].tcp.port == 80",
            "type(object.spec.healthChecks[0].tcp.port) == int",
            "object.spec.weight == 0.5",
        ] {
            if compile(source).unwrap().is_true(&variables) != Ok(true) {
                wrong.push(source);
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    }

    #[test]
    fn evaluation_errors_name_the_problem_without_values() {
        let object = object();
        let variables = Variables::new(&object, None);
        let missing = compile("object.spec.teardownPolicy.triggers.size() > 0").unwrap();
        assert_eq!(
            missing.is_true(&variables).unwrap_err(),
            "no such key \"teardownPolicy\""
        );
        let not_bool = compile("object.spec.chart.name").unwrap();
        assert_eq!(
            not_bool.is_true(&variables).unwrap_err(),
            "evaluates to a string, not a bool"
        );
        let old = compile("oldObject == null").unwrap();
        assert_eq!(old.is_true(&variables), Ok(true));
    }
}
