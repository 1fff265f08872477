//! What one review's CEL evaluations may cost, counted while they run.
//!
//! The cel crate has no cost hook, so a compiled expression is rewritten
//! (see [`metered`]) so that everything whose work grows with its input
//! passes through a function of ours first: comprehension ranges (each
//! iteration costs the nodes of the loop body), the operands of `+`, `==`,
//! `!=`, `<`, `in` and of the string functions, and the three functions whose
//! output can be far larger than their input (`replace`, `split`, `join`),
//! which are charged their output's size before it is made. Those functions
//! charge the [`Budget`] of the evaluation under way on this thread; past it
//! they fail, and every later charge fails too, so the evaluation unwinds
//! quickly and is reported as over budget whatever its result.
//!
//! Units: one per syntax node evaluated or loop iteration step, one per
//! [`BYTES_PER_UNIT`] bytes of strings scanned, compared or copied. Memory is
//! counted apart, in bytes of strings and list entries made.

use cel::ExecutionError;
use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::ast::{IdedEntryExpr, operators};
use cel::common::ast::{ListExpr, MapEntryExpr, MapExpr, SelectExpr, StructExpr, StructFieldExpr};
use cel::common::types::DYN_TYPE;
use cel::common::types::{CelBytes, CelInt, CelList, CelMap, CelMapKey, CelOptional, CelString};
use cel::common::value::{CowVal, Val};
use std::cell::Cell;

/// Cost units one review's custom rules may spend, over every matching
/// policy: 0.09 to 0.15 s of evaluation at worst on a 2-vCPU machine
/// (BENCHMARKS.md, "CEL budget").
pub const REVIEW_COST_UNITS: u64 = 4_000_000;
/// Bytes of strings and lists one review's custom rules may make.
pub const REVIEW_MADE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes scanned or copied per cost unit (as Kubernetes CEL counts strings).
pub const BYTES_PER_UNIT: u64 = 10;
/// Bytes a list entry takes besides its content.
const ENTRY_BYTES: u64 = 48;
/// Cost of compiling a regular expression not in the cache, per byte of pattern.
pub const REGEX_UNITS_PER_BYTE: u64 = 20;

/// Which part of the budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Cost,
    Memory,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::Cost => write!(
                f,
                "the review's CEL cost budget ({REVIEW_COST_UNITS} units) is used up"
            ),
            Exceeded::Memory => write!(
                f,
                "the review's CEL memory budget ({} MiB of strings and lists made) is used up",
                REVIEW_MADE_BYTES / (1024 * 1024)
            ),
        }
    }
}

/// What is left of one review's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    cost_left: u64,
    bytes_left: u64,
    exceeded: Option<Exceeded>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(REVIEW_COST_UNITS, REVIEW_MADE_BYTES)
    }
}

thread_local! {
    /// The budget of the evaluation running on this thread, if any.
    static RUNNING: Cell<Option<Budget>> = const { Cell::new(None) };
}

impl Budget {
    pub fn new(cost: u64, bytes: u64) -> Self {
        Budget {
            cost_left: cost,
            bytes_left: bytes,
            exceeded: None,
        }
    }

    /// Cost units left.
    pub fn cost_left(&self) -> u64 {
        self.cost_left
    }

    /// Why the budget ran out, once it has.
    pub fn exceeded(&self) -> Option<Exceeded> {
        self.exceeded
    }

    fn take(&mut self, cost: u64, bytes: u64) -> Result<(), Exceeded> {
        if let Some(exceeded) = self.exceeded {
            return Err(exceeded);
        }
        if bytes > self.bytes_left {
            self.bytes_left = 0;
            self.exceeded = Some(Exceeded::Memory);
        } else if cost > self.cost_left {
            self.cost_left = 0;
            self.exceeded = Some(Exceeded::Cost);
        } else {
            self.cost_left -= cost;
            self.bytes_left -= bytes;
            return Ok(());
        }
        Err(self.exceeded.unwrap_or(Exceeded::Cost))
    }

    /// Runs one evaluation of `nodes` syntax nodes on this budget: the
    /// functions of [`metered`] trees charge it while `evaluate` runs.
    pub fn run<T>(&mut self, nodes: u64, evaluate: impl FnOnce() -> T) -> Result<T, Exceeded> {
        self.take(nodes, 0)?;
        let installed = Installed {
            outer: RUNNING.replace(Some(*self)),
        };
        let result = evaluate();
        if let Some(left) = RUNNING.get() {
            *self = left;
        }
        drop(installed);
        match self.exceeded {
            Some(exceeded) => Err(exceeded),
            None => Ok(result),
        }
    }
}

/// Puts back the budget that ran before (none, usually) when an evaluation
/// ends, also if it panics.
struct Installed {
    outer: Option<Budget>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        RUNNING.set(self.outer.take());
    }
}

/// Charges the running evaluation; without one (nothing to count) it is free.
pub fn charge(cost: u64, bytes: u64) -> Result<(), ExecutionError> {
    RUNNING.with(|running| match running.get() {
        None => Ok(()),
        Some(mut budget) => {
            let taken = budget.take(cost, bytes);
            running.set(Some(budget));
            taken.map_err(|e| ExecutionError::function_error("budget", e.to_string()))
        }
    })
}

/// Fails once the running evaluation's budget is used up: a meter calls it
/// before doing any work of its own, as loops that absorb errors (`all`,
/// `exists`) go on calling it.
fn still_running() -> Result<(), ExecutionError> {
    charge(0, 0)
}

/// Cost units left in the running evaluation (unbounded without one).
fn units_left() -> u64 {
    RUNNING.with(|running| running.get().map_or(u64::MAX, |b| b.cost_left))
}

fn units_of_bytes(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_UNIT)
}

/// What comparing or copying `value` costs and the bytes a copy takes,
/// counted until the cost passes `limit` (the rest is not looked at).
fn weigh(value: &dyn Val, limit: u64) -> (u64, u64) {
    let mut cost = 0u64;
    let mut bytes = 0u64;
    let mut pending: Vec<&dyn Val> = vec![value];
    while let Some(value) = pending.pop() {
        cost += 1;
        bytes += ENTRY_BYTES;
        if cost > limit {
            break;
        }
        if let Some(s) = value.downcast_ref::<CelString>() {
            cost += units_of_bytes(s.inner().len());
            bytes += s.inner().len() as u64;
        } else if let Some(b) = value.downcast_ref::<CelBytes>() {
            cost += units_of_bytes(b.inner().len());
            bytes += b.inner().len() as u64;
        } else if let Some(list) = value.downcast_ref::<CelList>() {
            pending.extend(list.inner().iter().map(|v| &**v));
        } else if let Some(map) = value.downcast_ref::<CelMap>() {
            for (key, value) in map.inner() {
                if let CelMapKey::String(key) = key {
                    cost += units_of_bytes(key.inner().len());
                    bytes += key.inner().len() as u64;
                }
                pending.push(&**value);
            }
        } else if let Some(optional) = value.downcast_ref::<CelOptional>() {
            pending.extend(optional.inner());
        }
    }
    (cost, bytes)
}

/// The text of a string argument, if it is one.
fn text<'a>(args: &'a [CowVal<'_, '_>], i: usize) -> Option<&'a str> {
    args.get(i)?.downcast_ref::<CelString>().map(|s| s.inner())
}

fn int(args: &[CowVal<'_, '_>], i: usize) -> Option<i64> {
    args.get(i)?.downcast_ref::<CelInt>().map(|n| *n.inner())
}

/// The first argument, handed on unchanged.
fn first<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.into_iter()
        .next()
        .ok_or(ExecutionError::MissingArgumentOrTarget)
}

/// A string or list argument read in full: its length in units.
fn scan<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    let cost = match args.first() {
        Some(value) => match (
            value.downcast_ref::<CelString>(),
            value.downcast_ref::<CelBytes>(),
        ) {
            (Some(s), _) => 1 + units_of_bytes(s.inner().len()),
            (_, Some(b)) => 1 + units_of_bytes(b.inner().len()),
            _ => 1,
        },
        None => 1,
    };
    charge(cost, 0)?;
    first(args)
}

/// An operand compared in full (`==`, `in`, …).
fn compared<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    if let Some(value) = args.first() {
        let (cost, _) = weigh(value.as_ref(), units_left());
        charge(cost, 0)?;
    }
    first(args)
}

/// An operand copied into a new value (`+`, `lowerAscii`, …).
fn copied<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    if let Some(value) = args.first() {
        let (cost, bytes) = weigh(value.as_ref(), units_left());
        charge(cost, bytes)?;
    }
    first(args)
}

/// A comprehension's range: every element costs the loop body's nodes (and
/// is copied into the loop variable).
fn range<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    let body = int(&args, 1)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(1);
    if let Some(value) = args.first() {
        let items = value
            .as_sizer()
            .map_or(0, |s| u64::try_from(*s.size().inner()).unwrap_or(0));
        let (copy, _) = weigh(value.as_ref(), units_left());
        charge(items.saturating_mul(body).saturating_add(copy), 0)?;
    }
    first(args)
}

/// `text.replace(from, to[, n])`: the output's size before it is made.
fn replace<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    if let (Some(s), Some(from), Some(to)) = (text(&args, 0), text(&args, 1), text(&args, 2)) {
        let found = if from.is_empty() {
            s.chars().count() + 1
        } else {
            s.matches(from).count()
        };
        let found = match int(&args, 3).map(usize::try_from) {
            Some(Ok(n)) => found.min(n),
            _ => found,
        };
        let made = s.len().saturating_add(found.saturating_mul(to.len()));
        charge(units_of_bytes(s.len()) + units_of_bytes(made), made as u64)?;
    }
    first(args)
}

/// `text.split(separator[, n])`: the pieces' size before they are made.
fn split<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    if let (Some(s), Some(separator)) = (text(&args, 0), text(&args, 1)) {
        let pieces = if separator.is_empty() {
            s.chars().count()
        } else {
            s.matches(separator).count() + 1
        };
        let pieces = match int(&args, 2).map(usize::try_from) {
            Some(Ok(n)) => pieces.min(n),
            _ => pieces,
        } as u64;
        let made = s.len() as u64 + pieces.saturating_mul(ENTRY_BYTES);
        charge(units_of_bytes(s.len()) * 2 + pieces, made)?;
    }
    first(args)
}

/// `list.join([separator])`: the output's size before it is made.
fn join<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    still_running()?;
    if let Some(list) = args.first() {
        let (cost, bytes) = weigh(list.as_ref(), units_left());
        let items = list
            .as_sizer()
            .map_or(0, |s| u64::try_from(*s.size().inner()).unwrap_or(0));
        let separators = text(&args, 1).map_or(0, str::len) as u64 * items.saturating_sub(1);
        charge(
            cost + separators.div_ceil(BYTES_PER_UNIT),
            bytes.saturating_add(separators),
        )?;
    }
    first(args)
}

/// A metering function: its name in rewritten trees, the arities it takes
/// (its first argument is what it hands on) and what it charges.
struct Meter {
    name: &'static str,
    arities: &'static [usize],
    function: cel::common::functions::Function,
}

const SCAN: &str = "@meter_scan";
const COMPARED: &str = "@meter_compared";
const COPIED: &str = "@meter_copied";
const RANGE: &str = "@meter_range";
const REPLACE: &str = "@meter_replace";
const SPLIT: &str = "@meter_split";
const JOIN: &str = "@meter_join";

const METERS: &[Meter] = &[
    Meter {
        name: SCAN,
        arities: &[1],
        function: scan,
    },
    Meter {
        name: COMPARED,
        arities: &[1],
        function: compared,
    },
    Meter {
        name: COPIED,
        arities: &[1],
        function: copied,
    },
    Meter {
        name: RANGE,
        arities: &[2],
        function: range,
    },
    Meter {
        name: REPLACE,
        arities: &[3, 4],
        function: replace,
    },
    Meter {
        name: SPLIT,
        arities: &[2, 3],
        function: split,
    },
    Meter {
        name: JOIN,
        arities: &[1, 2],
        function: join,
    },
];

/// Declares the metering functions in `env` (any argument types: a call
/// with the wrong ones is left to fail where the user wrote it).
pub fn declare(env: &mut cel::Env) -> Result<(), cel::DeclarationError> {
    for meter in METERS {
        for &arity in meter.arities {
            env.add_overload(
                meter.name,
                &format!("{}_{arity}", meter.name),
                (0..arity).map(|_| DYN_TYPE).collect(),
                meter.function,
            )?;
        }
    }
    Ok(())
}

/// Syntax nodes in `expr`.
pub fn nodes(expr: &IdedExpr) -> u64 {
    let mut count = 0u64;
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        count += 1;
        match &expr.expr {
            Expr::Call(call) => {
                pending.extend(call.target.as_deref());
                pending.extend(&call.args);
            }
            Expr::Comprehension(c) => pending.extend([
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]),
            Expr::List(list) => pending.extend(&list.elements),
            Expr::Map(map) => pending.extend(map.entries.iter().flat_map(entry_parts)),
            Expr::Struct(s) => pending.extend(s.entries.iter().flat_map(entry_parts)),
            Expr::Select(select) => pending.push(&select.operand),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    count
}

fn entry_parts(entry: &IdedEntryExpr) -> Vec<&IdedExpr> {
    match &entry.expr {
        EntryExpr::StructField(field) => vec![&field.value],
        EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
    }
}

/// How a function's operands are charged.
enum Charge {
    /// Nothing grows with the input (`&&`, `[]`, `has`, …).
    Free,
    /// Every operand read in full.
    Scan,
    /// Every operand compared in full.
    Compare,
    /// The target copied, the arguments read.
    CopyTarget,
    /// Every operand copied (`+`).
    Copy,
    /// Charged by a function of its own before the call, given the call's target and arguments.
    Before(&'static str),
}

fn charge_of(function: &str) -> Charge {
    match function {
        operators::ADD => Charge::Copy,
        operators::EQUALS
        | operators::NOT_EQUALS
        | operators::LESS
        | operators::LESS_EQUALS
        | operators::GREATER
        | operators::GREATER_EQUALS
        | operators::IN => Charge::Compare,
        "size" | "contains" | "startsWith" | "endsWith" | "matches" | "indexOf" | "lastIndexOf"
        | "charAt" | "string" | "int" | "uint" | "double" | "bool" | "duration" | "timestamp" => {
            Charge::Scan
        }
        "lowerAscii" | "upperAscii" | "trim" | "substring" => Charge::CopyTarget,
        "replace" => Charge::Before(REPLACE),
        "split" => Charge::Before(SPLIT),
        "join" => Charge::Before(JOIN),
        _ => Charge::Free,
    }
}

fn call(function: &str, args: Vec<IdedExpr>) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Call(CallExpr {
            func_name: function.to_owned(),
            target: None,
            args,
        }),
    }
}

fn wrapped(meter: &str, expr: IdedExpr) -> IdedExpr {
    call(meter, vec![expr])
}

/// `expr` rewritten so that what it costs is charged as it runs (see the
/// module's documentation). The result evaluates to what `expr` does.
pub fn metered(expr: &IdedExpr) -> IdedExpr {
    Rewriter {
        accumulators: Vec::new(),
    }
    .rewrite(expr)
}

struct Rewriter {
    /// Accumulators of the comprehensions around the node being rewritten.
    accumulators: Vec<String>,
}

impl Rewriter {
    fn rewrite(&mut self, expr: &IdedExpr) -> IdedExpr {
        let rewritten = match &expr.expr {
            Expr::Call(call) => return self.rewrite_call(expr.id, call),
            Expr::Comprehension(c) => Expr::Comprehension(Box::new(self.rewrite_comprehension(c))),
            // A literal's elements are copied into it (a map or list of the
            // object's, deeply), e.g. on every step of `map`.
            Expr::List(list) => Expr::List(ListExpr {
                elements: list
                    .elements
                    .iter()
                    .map(|e| wrapped(COPIED, self.rewrite(e)))
                    .collect(),
                optional_indices: list.optional_indices.clone(),
            }),
            Expr::Map(map) => Expr::Map(MapExpr {
                entries: map
                    .entries
                    .iter()
                    .map(|e| self.rewrite_entry(e, true))
                    .collect(),
            }),
            Expr::Struct(s) => Expr::Struct(StructExpr {
                type_name: s.type_name.clone(),
                entries: s
                    .entries
                    .iter()
                    .map(|e| self.rewrite_entry(e, false))
                    .collect(),
            }),
            Expr::Select(select) => Expr::Select(SelectExpr {
                operand: Box::new(self.rewrite(&select.operand)),
                field: select.field.clone(),
                test: select.test,
            }),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => expr.expr.clone(),
        };
        IdedExpr {
            id: expr.id,
            expr: rewritten,
        }
    }

    /// An entry of a map (whose keys and values are `copied`) or struct literal.
    fn rewrite_entry(&mut self, entry: &IdedEntryExpr, copied: bool) -> IdedEntryExpr {
        let mut part = |expr: &IdedExpr| {
            let rewritten = self.rewrite(expr);
            if copied {
                wrapped(COPIED, rewritten)
            } else {
                rewritten
            }
        };
        IdedEntryExpr {
            id: entry.id,
            expr: match &entry.expr {
                EntryExpr::StructField(field) => EntryExpr::StructField(StructFieldExpr {
                    field: field.field.clone(),
                    value: part(&field.value),
                    optional: field.optional,
                }),
                EntryExpr::MapEntry(entry) => EntryExpr::MapEntry(MapEntryExpr {
                    key: part(&entry.key),
                    value: part(&entry.value),
                    optional: entry.optional,
                }),
            },
        }
    }

    fn rewrite_comprehension(&mut self, c: &ComprehensionExpr) -> ComprehensionExpr {
        let body = 1 + nodes(&c.loop_cond) + nodes(&c.loop_step);
        let iter_range = call(
            RANGE,
            vec![
                self.rewrite(&c.iter_range),
                IdedExpr {
                    id: 0,
                    expr: Expr::Literal(LiteralValue::Int(CelInt::from(
                        i64::try_from(body).unwrap_or(i64::MAX),
                    ))),
                },
            ],
        );
        let accu_init = self.rewrite(&c.accu_init);
        self.accumulators.push(c.accu_var.clone());
        let rewritten = ComprehensionExpr {
            iter_range,
            iter_var: c.iter_var.clone(),
            iter_var2: c.iter_var2.clone(),
            accu_var: c.accu_var.clone(),
            accu_init,
            loop_cond: self.rewrite(&c.loop_cond),
            loop_step: self.rewrite(&c.loop_step),
            result: self.rewrite(&c.result),
        };
        self.accumulators.pop();
        rewritten
    }

    /// Whether `expr` names the accumulator of a comprehension around it: the
    /// `@result + [x]` steps of `map` and `filter` are left as the
    /// interpreter recognises them (it appends in place; the range pays).
    fn is_accumulator(&self, expr: &IdedExpr) -> bool {
        matches!(&expr.expr, Expr::Ident(name) if self.accumulators.contains(name))
    }

    fn rewrite_call(&mut self, id: u64, c: &CallExpr) -> IdedExpr {
        let target = c.target.as_deref().map(|t| self.rewrite(t));
        let args: Vec<IdedExpr> = c.args.iter().map(|a| self.rewrite(a)).collect();
        let appends =
            c.func_name == operators::ADD && c.args.first().is_some_and(|a| self.is_accumulator(a));
        let charge = if appends {
            Charge::Free
        } else {
            charge_of(&c.func_name)
        };
        let (target, args) = match charge {
            Charge::Free => (target, args),
            Charge::Scan => (
                target.map(|t| wrapped(SCAN, t)),
                args.into_iter().map(|a| wrapped(SCAN, a)).collect(),
            ),
            Charge::Compare => (
                target.map(|t| wrapped(COMPARED, t)),
                args.into_iter().map(|a| wrapped(COMPARED, a)).collect(),
            ),
            Charge::CopyTarget => (
                target.map(|t| wrapped(COPIED, t)),
                args.into_iter().map(|a| wrapped(SCAN, a)).collect(),
            ),
            Charge::Copy => (
                target.map(|t| wrapped(COPIED, t)),
                args.into_iter().map(|a| wrapped(COPIED, a)).collect(),
            ),
            // The arguments are evaluated twice, by the charge and by the
            // call; they are pure, and what they cost is charged each time.
            Charge::Before(meter) => match target {
                Some(target) => {
                    let mut charged = vec![target];
                    charged.extend(args.iter().cloned());
                    (Some(call(meter, charged)), args)
                }
                None => (None, args),
            },
        };
        IdedExpr {
            id,
            expr: Expr::Call(CallExpr {
                func_name: c.func_name.clone(),
                target: target.map(Box::new),
                args,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Functions whose work does not grow with their input.
    const FREE: &[&str] = &["type", "orValue", "hasValue", "value"];

    #[test]
    fn every_function_a_rule_may_call_is_charged() {
        let uncharged: Vec<&&str> = crate::policy::cel::FUNCTIONS
            .iter()
            .filter(|f| matches!(charge_of(f), Charge::Free) != FREE.contains(f))
            .collect();
        assert!(uncharged.is_empty(), "{uncharged:?}");
    }

    #[test]
    fn a_budget_is_spent_once_and_then_refuses_everything() {
        let mut budget = Budget::new(10, 100);
        assert_eq!(budget.run(4, || charge(5, 50)), Ok(Ok(())));
        assert_eq!(budget.cost_left(), 1);
        let over = budget.run(1, || charge(1, 0));
        assert_eq!(over, Err(Exceeded::Cost));
        assert_eq!(budget.run(0, || 1), Err(Exceeded::Cost));
        let mut memory = Budget::new(100, 10);
        assert_eq!(
            memory.run(0, || charge(1, 11).is_err()),
            Err(Exceeded::Memory)
        );
        // Outside an evaluation nothing is counted.
        assert_eq!(charge(u64::MAX, u64::MAX), Ok(()));
    }
}
