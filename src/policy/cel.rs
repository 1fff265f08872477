//! CEL for policy rules: compiled once per policy generation, with a fixed
//! list of functions (anything else is a compile error, never a surprise at
//! evaluation) and bounds that keep one evaluation small.
//!
//! Bounds: an expression has at most [`MAX_EXPRESSION_BYTES`] bytes and
//! [`MAX_NODES`] syntax nodes, nests at most [`MAX_COMPREHENSION_DEPTH`]
//! macros that loop (`all`, `exists`, `exists_one`, `map`, `filter`), and
//! the parser refuses nesting deeper than 96. What evaluations cost is
//! counted while they run, against one budget per review ([`cost`]); what
//! they see has every secret hidden ([`super::seen`]).

use super::cost::{self, Budget};
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{CelBool, CelNull, CelString, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Context, Env, Value};
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
        cost::declare(&mut env).expect("the metering functions are declared once");
        Arc::new(env)
    });
    &ENV
}

/// Compiled patterns kept for reuse (a policy's patterns are few; compiling
/// one costs about 30 µs, matching it well under 1 µs).
const REGEX_CACHE_ENTRIES: u64 = 512;
/// Most memory one compiled pattern may take (the regex crate's size limit).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The compiled `pattern`; compiling one not cached is charged to the
/// running evaluation (a pattern can come from the object, one per loop step).
fn compiled_regex(pattern: &str) -> Result<Arc<regex::Regex>, cel::ExecutionError> {
    static CACHE: LazyLock<moka::sync::Cache<String, Arc<regex::Regex>>> =
        LazyLock::new(|| moka::sync::Cache::new(REGEX_CACHE_ENTRIES));
    if let Some(regex) = CACHE.get(pattern) {
        return Ok(regex);
    }
    cost::charge(
        (pattern.len() as u64 + 1).saturating_mul(cost::REGEX_UNITS_PER_BYTE),
        0,
    )?;
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| {
            cel::ExecutionError::function_error("matches", "not a valid regular expression")
        })?;
    let regex = Arc::new(regex);
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
    let regex = compiled_regex(text(1)?)?;
    Ok(CowVal::owned(CelBool::from(regex.is_match(text(0)?))))
}

/// A compiled expression, rewritten to be metered.
#[derive(Debug)]
pub struct Expression {
    metered: IdedExpr,
    /// Syntax nodes of the expression as written: what one evaluation costs at least.
    nodes: u64,
    source: String,
}

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
    let expression = Expression {
        metered: cost::metered(program.expression()),
        // Exact: counting stops only past MAX_NODES, refused above.
        nodes: shape.nodes as u64,
        source: source.to_owned(),
    };
    // An expression that reads no object costs the same on every review:
    // one that uses up a review's budget alone is refused now, not on each review.
    let references = program.references();
    if !references.has_variable("object") && !references.has_variable("oldObject") {
        let mut budget = Budget::default();
        let nothing = serde_json::Value::Null;
        let _ = expression.evaluate(&Variables::new(&nothing, None), &mut budget);
        if let Some(exceeded) = budget.exceeded() {
            return Err(CompileError::new(format!(
                "it reads no object and alone it exceeds what one review may spend: {exceeded}"
            )));
        }
    }
    Ok(expression)
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
        context.add_variable_as_val("object", super::seen::object(object));
        context.add_variable_as_val(
            "oldObject",
            old_object.map_or_else(
                || Box::new(CelNull) as Box<dyn Val + 'v>,
                super::seen::object,
            ),
        );
        Variables { context }
    }
}

impl Expression {
    fn evaluate(&self, variables: &Variables<'_>, budget: &mut Budget) -> Result<Value, String> {
        budget
            .run(self.nodes, || {
                Value::resolve(&self.metered, &variables.context)
            })
            .map_err(|exceeded| exceeded.to_string())?
            .map_err(|err| self.shown_error(&err))
    }

    /// Evaluates to a bool on `budget`, or says why not (a missing field, a
    /// wrong type, the budget used up).
    pub fn is_true(&self, variables: &Variables<'_>, budget: &mut Budget) -> Result<bool, String> {
        match self.evaluate(variables, budget)? {
            Value::Bool(passes) => Ok(passes),
            other => Err(format!("evaluates to {}, not a bool", value_kind(&other))),
        }
    }

    /// Evaluates to a string on `budget`, or says why not.
    pub fn text(&self, variables: &Variables<'_>, budget: &mut Budget) -> Result<String, String> {
        match self.evaluate(variables, budget)? {
            Value::String(text) => Ok(text.to_string()),
            other => Err(format!("evaluates to {}, not a string", value_kind(&other))),
        }
    }

    /// The evaluation error without any value from the object: what failed,
    /// naming keys only where the expression itself spells them.
    fn shown_error(&self, err: &cel::ExecutionError) -> String {
        use cel::ExecutionError as E;
        let written = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && self.source.contains(name)
        };
        match err {
            E::NoSuchKey(key) if written(key) => format!("no such key {key:?}"),
            E::NoSuchKey(_) => "no such key".to_owned(),
            E::UndeclaredReference(name) if written(name) => {
                format!("undeclared reference {name:?}")
            }
            E::UndeclaredReference(_) => "undeclared reference".to_owned(),
            E::InvalidArgumentCount { expected, actual } => {
                format!("{actual} arguments where {expected} are expected")
            }
            E::UnexpectedType { got, want } => format!(
                "unexpected type: got {}, want {}",
                type_name(got),
                type_name(want)
            ),
            E::NoSuchOverload(overload) => {
                let types: Vec<&str> = overload
                    .argument_types()
                    .iter()
                    .map(|t| type_name(t))
                    .collect();
                format!(
                    "no overload of {} for ({})",
                    type_name(overload.function()),
                    types.join(", ")
                )
            }
            E::FunctionError { function, .. } if function == "budget" => {
                "the review's CEL budget is used up".to_owned()
            }
            E::FunctionError { function, .. } => format!("{} failed", type_name(function)),
            E::UnsupportedKeyType(_) => "a value of this type cannot be a map key".to_owned(),
            E::ValuesNotComparable(..) => "values of these types cannot be compared".to_owned(),
            E::UnsupportedBinaryOperator(operator, ..) => {
                format!("{operator} does not apply to these types")
            }
            E::UnsupportedIndex(..) => "this value cannot be indexed so".to_owned(),
            E::DivisionByZero(_) => "division by zero".to_owned(),
            E::RemainderByZero(_) => "remainder by zero".to_owned(),
            E::Overflow(operator, ..) => format!("overflow in {operator}"),
            E::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
            E::DuplicateKey(_) => "a map key is repeated".to_owned(),
            E::MissingArgumentOrTarget => "missing argument or target".to_owned(),
            _ => "evaluation error".to_owned(),
        }
    }
}

/// A type or function name as shown: a short name of the type system, else `?`.
fn type_name(name: &str) -> &str {
    let plain = name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '<' | '>' | ',' | ' '));
    if plain { name } else { "?" }
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

#[cfg(test)]
mod tests {
    use super::super::seen;
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
            match compile(source).map(|e| e.is_true(&variables, &mut Budget::default())) {
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
            if compile(source)
                .unwrap()
                .is_true(&variables, &mut Budget::default())
                != Ok(true)
            {
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
            missing
                .is_true(&variables, &mut Budget::default())
                .unwrap_err(),
            "no such key \"teardownPolicy\""
        );
        let not_bool = compile("object.spec.chart.name").unwrap();
        assert_eq!(
            not_bool
                .is_true(&variables, &mut Budget::default())
                .unwrap_err(),
            "evaluates to a string, not a bool"
        );
        let old = compile("oldObject == null").unwrap();
        assert_eq!(old.is_true(&variables, &mut Budget::default()), Ok(true));
    }

    /// Evaluates `source` on `object`, metered, on a fresh budget; returns
    /// the outcome and what is left of the budget.
    fn metered(source: &str, object: &serde_json::Value) -> (Result<bool, String>, Budget) {
        let variables = Variables::new(object, None);
        let mut budget = Budget::default();
        let outcome = compile(source).unwrap().is_true(&variables, &mut budget);
        (outcome, budget)
    }

    #[test]
    fn metering_changes_no_result() {
        let object = json!({"metadata": {"name": "web"},
            "spec": {"values": {"inline": "a: 1\nb: 2\na: 1"},
                     "healthChecks": [{"name": "a", "port": 1}, {"name": "bb", "port": 2}, {"name": "a", "port": 3}]}});
        let sources = [
            "object.spec.healthChecks.map(h, h.name).join(',') == 'a,bb,a'",
            "object.spec.healthChecks.filter(h, h.port > 1).size() == 2",
            "object.spec.healthChecks.exists_one(h, h.name == 'bb')",
            "object.spec.healthChecks.all(a, object.spec.healthChecks.exists(b, a.name == b.name))",
            "object.spec.healthChecks.map(h, h.port, h.name + '!') == ['bb!', 'a!']",
            "object.spec.values.inline.split('\\n').size() == 3",
            "object.spec.values.inline.split('\\n', 2)[1] == 'b: 2\\na: 1'",
            "object.spec.values.inline.replace('a', 'xyz') == 'xyz: 1\\nb: 2\\nxyz: 1'",
            "object.spec.values.inline.replace('a', 'x', 1).startsWith('x: 1\\nb')",
            "'abc'.replace('', '-') == '-a-b-c-'",
            "''.split('').size() == 0",
            "[1, 2] + [3] == [1, 2, 3] && 'a' + 'b' == 'ab' && 1 + 2 == 3 && 1.5 + 1.0 == 2.5",
            "duration('1h') + duration('1m') == duration('61m')",
            "object.metadata.name in ['web', 'api'] && 'name' in object.metadata",
            "object.spec.values.inline.lowerAscii().upperAscii().trim().substring(1, 3) == ': '",
            "object.spec.values.inline.indexOf('b') == 5 && object.spec.values.inline.lastIndexOf('a') == 10",
            "object.spec.values.inline.charAt(0) == 'a' && size(object.spec.values.inline) == 14",
            "object.spec.values.inline.matches('^a') && matches(object.metadata.name, 'e')",
            "'b' < 'c' && 2 >= 1 && string(1) == '1' && int('2') == 2",
            "object.spec.healthChecks.all(h, h.name.size() < 3)",
            "object.spec.missing.x == 1",
            "object.spec.healthChecks[5].name == 'x'",
            "object.spec.healthChecks.all(h, h.nope == 1)",
            "object.spec.healthChecks.exists(h, h.nope == 1 || true)",
            "[[1], [2]].map(l, l + [0]) == [[1, 0], [2, 0]]",
            "{'a': 1}.all(k, k == 'a')",
        ];
        let variables = Variables::new(&object, None);
        let mut differences = Vec::new();
        for source in sources {
            let plain = env().compile(source).unwrap().execute(&variables.context);
            let metered = compile(source).unwrap();
            let ours = Value::resolve(&metered.metered, &variables.context);
            let mut budget = Budget::default();
            let checked = metered.is_true(&variables, &mut budget);
            if plain != ours
                || plain.as_ref().ok() != checked.as_ref().ok().map(|b| Value::Bool(*b)).as_ref()
                    && plain.is_ok()
            {
                differences.push(format!("{source}: {plain:?} vs {ours:?} / {checked:?}"));
            }
            if budget.cost_left() >= cost::REVIEW_COST_UNITS {
                differences.push(format!("{source}: nothing charged"));
            }
        }
        assert!(differences.is_empty(), "{differences:#?}");
    }

    fn inline(lines: usize) -> serde_json::Value {
        let text: Vec<String> = (0..lines).map(|i| format!("key{i}: value")).collect();
        json!({"spec": {"values": {"inline": text.join("\n")}}})
    }

    /// "No duplicate lines in values.inline": quadratic in the lines the
    /// tenant writes, where the CRD bounds no list.
    const NO_DUPLICATE_LINES: &str = "object.spec.values.inline.split('\\n').all(a, object.spec.values.inline.split('\\n').exists_one(b, b == a))";

    #[test]
    fn loops_over_lists_a_tenant_makes_run_out_of_budget() {
        let (small, left) = metered(NO_DUPLICATE_LINES, &inline(100));
        assert_eq!(small, Ok(true));
        assert!(left.exceeded().is_none());
        for lines in [3_000, 10_000] {
            let (outcome, left) = metered(NO_DUPLICATE_LINES, &inline(lines));
            assert_eq!(left.exceeded(), Some(cost::Exceeded::Cost), "{lines}");
            assert_eq!(left.cost_left(), 0, "{lines}");
            let error = outcome.unwrap_err();
            assert!(error.contains("cost budget"), "{error}");
        }
    }

    #[test]
    fn strings_that_would_outgrow_memory_are_refused_before_they_are_made() {
        let a = "a".repeat(100);
        let b = "b".repeat(100);
        let chain = |n: usize| {
            let mut source = format!("(object.name + '{a}')");
            for _ in 0..n {
                source = format!("{source}.replace('', '{b}')");
            }
            format!("size({source}) > 0")
        };
        let named = json!({"name": ""});
        let (one, left) = metered(&chain(1), &named);
        assert_eq!(one, Ok(true));
        assert!(left.exceeded().is_none());
        // 1 MB passes; 101 MB and 10 GB fail when charged, before they are made.
        let (two, left) = metered(&chain(2), &named);
        assert_eq!(two, Ok(true));
        assert!(left.exceeded().is_none());
        for n in [3, 4] {
            let (outcome, left) = metered(&chain(n), &named);
            assert_eq!(left.exceeded(), Some(cost::Exceeded::Memory), "{n}");
            assert!(outcome.unwrap_err().contains("memory budget"), "{n}");
        }
        // Strings made to be looped over.
        let made = format!("(object.name + '{a}').replace('', '{a}').split('')");
        let cpu = format!("{made}.all(x, {made}.all(y, x == y || true))");
        let (outcome, left) = metered(&cpu, &named);
        assert_eq!(left.exceeded(), Some(cost::Exceeded::Cost), "{outcome:?}");
        // Without the object, the same is refused when the policy is compiled.
        for source in [
            cpu.replace("object.name + ", ""),
            chain(4).replace("object.name + ", ""),
        ] {
            let refused = compile(&source).unwrap_err().message;
            assert!(
                refused.starts_with("it reads no object and alone it exceeds"),
                "{refused}"
            );
        }
        let join = format!(
            "['{a}', '{a}'].map(x, x).join('{b}').size() > 0 && [{}].join('{}').size() > 0",
            vec!["'x'"; 90].join(", "),
            "s".repeat(1000)
        );
        let (outcome, _) = metered(&join, &json!({}));
        assert_eq!(outcome, Ok(true));
        let huge_join = format!(
            "(object.name + '{a}').replace('', 'x').split('').map(x, '{a}'.replace('', 'x').split('')).map(l, l.join('{}')).size() > 0",
            "s".repeat(1500)
        );
        let (_, left) = metered(&huge_join, &named);
        assert!(left.exceeded().is_some());
    }

    #[test]
    fn copies_of_the_object_in_literals_and_map_results_are_counted() {
        let entries: serde_json::Map<String, serde_json::Value> =
            (0..20_000).map(|i| (format!("k{i}"), json!("v"))).collect();
        let object = json!({"spec": {"values": {"data": entries}}});
        let (few, left) = metered("[object, object].size() == 2", &object);
        assert_eq!(few, Ok(true));
        assert!(left.exceeded().is_none());
        let many = format!("[{}].size() > 0", vec!["object"; 200].join(", "));
        let mapped = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(a, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(b, {'o': object})).size() > 0";
        for source in [many.as_str(), mapped] {
            let (outcome, left) = metered(source, &object);
            assert_eq!(
                left.exceeded(),
                Some(cost::Exceeded::Memory),
                "{source}: {outcome:?}"
            );
        }
    }

    #[test]
    fn patterns_from_the_object_are_charged_when_compiled() {
        let names: Vec<serde_json::Value> = (0..100)
            .map(|i| json!({"name": format!("{}{i}", "(a|b)*c".repeat(15))}))
            .collect();
        let object = json!({"spec": {"healthChecks": names}});
        let (outcome, left) = metered(
            "object.spec.healthChecks.all(a, object.spec.healthChecks.all(b, !a.name.matches(b.name + a.name) || true))",
            &object,
        );
        assert_eq!(left.exceeded(), Some(cost::Exceeded::Cost), "{outcome:?}");
    }

    #[test]
    fn rules_never_see_secrets() {
        let secret = "hunter2-s3cr3t";
        let object = json!({
        "metadata": {"name": "web", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"password\":\"{secret}\"}}"),
            "team": "a"}},
        "spec": {
            "chart": {"repository": {
                "url": format!("https://user:{secret}@charts.example.com/x"),
                "auth": {"type": "basic", "username": "user", "password": secret, "token": secret,
                         "secretRef": {"name": "creds"}}}},
            "healthChecks": [
                {"http": {"url": format!("https://{secret}@h/"), "headers": {"Authorization": format!("Bearer {secret}"), "Accept": "json"}}},
                {"grpc": {"auth": {"type": "bearer", "bearerToken": secret, "pin": 1234}}}],
            "observability": {"tracing": {"endpoint": {"url": format!("otlp://x:{secret}@h:4317")}}},
            "tls": {"caBundle": secret}
        }});
        let variables = Variables::new(&object, None);
        let auth = "object.spec.chart.repository.auth";
        let texts = [
            format!("{auth}.password"),
            format!("{auth}.token"),
            format!("{auth}.password.substring(0, 5)"),
            format!("{auth}.password.split('').join('.')"),
            "object.spec.chart.repository.url".to_owned(),
            "object.spec.healthChecks[0].http.url".to_owned(),
            "object.spec.healthChecks[0].http.headers.Authorization".to_owned(),
            "object.spec.healthChecks[1].grpc.auth.bearerToken".to_owned(),
            "string(object.spec.healthChecks[1].grpc.auth.pin)".to_owned(),
            "object.spec.observability.tracing.endpoint.url".to_owned(),
            "object.spec.tls.caBundle".to_owned(),
            "object.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']"
                .to_owned(),
            format!("string(size({auth}.password))"),
        ];
        let mut shown = Vec::new();
        for source in &texts {
            shown.push(
                compile(source)
                    .unwrap()
                    .text(&variables, &mut Budget::default()),
            );
        }
        let failing = [
            format!("{{[{auth}.password]: 1}}.size() == 1"),
            format!("1 / (size({auth}.password) - 10) == 1"),
            format!("{auth}.password.charAt(100) == 'x'"),
            format!("{{'a': 1}}[{auth}.password] == 1"),
            format!("int({auth}.password) == 1"),
            format!("object.spec.chart[{auth}.password] == 1"),
            format!("{auth}.password.matches({auth}.password + '(')"),
        ];
        for source in &failing {
            shown.push(
                compile(source)
                    .unwrap()
                    .is_true(&variables, &mut Budget::default())
                    .map(|b| b.to_string()),
            );
        }
        let leaks: Vec<_> = shown
            .iter()
            .filter(|s| format!("{s:?}").contains("hunter2") || format!("{s:?}").contains("s3cr3t"))
            .collect();
        assert!(leaks.is_empty(), "{leaks:#?}");
        assert_eq!(shown[0], Ok(seen::REDACTED.to_owned()));
        assert_eq!(
            shown[4],
            Ok("https://<redacted>@charts.example.com/x".to_owned())
        );
        assert_eq!(
            shown[12],
            Ok("10".to_owned()),
            "the length of the redaction, not of the secret"
        );
        assert!(
            shown[texts.len()..].iter().all(Result::is_err),
            "{shown:#?}"
        );
        // What is not secret is seen as written, and secrets are still there to test for.
        for source in [
            format!("has({auth}.password) && {auth}.username == 'user' && {auth}.type == 'basic'"),
            format!("{auth}.secretRef.name == 'creds'"),
            "object.spec.healthChecks[0].http.headers.Accept == 'json'".to_owned(),
            "object.metadata.annotations.team == 'a'".to_owned(),
        ] {
            assert_eq!(
                compile(&source)
                    .unwrap()
                    .is_true(&variables, &mut Budget::default()),
                Ok(true),
                "{source}"
            );
        }
    }
}
