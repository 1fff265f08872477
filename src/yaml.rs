//! YAML as the cluster reads it. kubectl and Helm turn YAML into JSON with
//! go-yaml v2, a port of libyaml that resolves plain scalars by YAML 1.1
//! rules (`no` is a boolean, `0755` is octal). serde_norway parses with
//! libyaml but resolves by YAML 1.2 rules, so this module reads libyaml's
//! events itself, through libyaml-safer (libyaml ported to safe Rust,
//! vendored with fixes in vendor/libyaml-safer), and resolves scalars the way
//! go-yaml v2 does.
//!
//! Nesting is bounded ([`MAX_DEPTH`]) while the events stream in: libyaml's
//! scanner does work proportional to the open flow collections for every
//! token, so a deep `[[[[...` must be refused before it is all scanned.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Deepest nesting of collections read, the same bound serde_json and
/// serde_norway apply; past it the text is refused before it is all parsed.
pub const MAX_DEPTH: usize = 128;
/// Deepest nesting of flow collections (`[`, `{`). libyaml's scanner does
/// work proportional to this depth for every token, so it is kept well under
/// [`MAX_DEPTH`]: at 32, a 1.5 MiB text (etcd's object limit) of one-character
/// tokens parses in about half a second; hand-written YAML nests a few levels.
pub const MAX_FLOW_DEPTH: usize = 32;

/// A syntax error, or YAML that has no JSON form; `line` and `column` are 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What the root node of a one-document text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// An empty document, or `null`/`~`.
    Null,
    Mapping,
    Sequence,
    Scalar,
}

/// Why a text has no usable root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    Syntax(YamlError),
    /// Deeper than [`MAX_DEPTH`] or [`MAX_FLOW_DEPTH`].
    TooDeep,
    SeveralDocuments,
}

/// Tracks nesting while events stream in.
#[derive(Default)]
struct Depth {
    /// Whether each open collection is a flow one, outermost first.
    open: Vec<bool>,
    flow: usize,
}

impl Depth {
    /// Enters a collection; `Err` names the limit passed.
    fn enter(&mut self, flow: bool) -> Result<(), String> {
        self.open.push(flow);
        self.flow += usize::from(flow);
        if self.open.len() > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if self.flow > MAX_FLOW_DEPTH {
            return Err(format!(
                "flow collections ([ or {{) nested deeper than {MAX_FLOW_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        if self.open.pop() == Some(true) {
            self.flow -= 1;
        }
    }
}

/// The kind of the root of `text` without building its value: syntax is
/// checked to the end, nesting is bounded by [`MAX_DEPTH`].
pub fn root_kind(text: &str) -> Result<RootKind, ShapeError> {
    let mut events = events::Reader::new(text);
    let mut root = None;
    let mut depth = Depth::default();
    loop {
        let (event, _) = events.next().map_err(ShapeError::Syntax)?;
        let kind = match event {
            events::Event::StreamEnd => return Ok(root.unwrap_or(RootKind::Null)),
            events::Event::DocumentStart if root.is_some() => {
                return Err(ShapeError::SeveralDocuments);
            }
            events::Event::SequenceStart { flow, .. }
            | events::Event::MappingStart { flow, .. } => {
                depth.enter(flow).map_err(|_| ShapeError::TooDeep)?;
                if matches!(event, events::Event::MappingStart { .. }) {
                    RootKind::Mapping
                } else {
                    RootKind::Sequence
                }
            }
            events::Event::SequenceEnd | events::Event::MappingEnd => {
                depth.leave();
                continue;
            }
            events::Event::Scalar { value, plain, .. } => {
                if plain && resolve_plain(&value) == Ok(Value::Null) {
                    RootKind::Null
                } else {
                    RootKind::Scalar
                }
            }
            events::Event::Alias(_) => RootKind::Scalar,
            _ => continue,
        };
        root.get_or_insert(kind);
    }
}

/// The documents of a YAML stream, one JSON value each, as kubectl would
/// send them; stops after the first error.
pub struct Documents<'a> {
    events: events::Reader<'a>,
    anchors: HashMap<String, (Value, Positions)>,
    depth: Depth,
    /// Values still allowed to come from aliases, so a few anchors cannot
    /// expand into billions of nodes.
    alias_budget: usize,
    finished: bool,
}

/// One document: its JSON value and where each of its nodes is written.
#[derive(Clone, Debug)]
pub struct Document {
    pub value: Value,
    pub positions: Positions,
}

impl Document {
    /// The line (1-based) of the document's root node.
    pub fn line(&self) -> usize {
        self.positions.at.line
    }
}

/// A place in the text; 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where the nodes of a value are written, in the shape of the value. A
/// mapping entry is at its key (where an editor puts the cursor for a field);
/// a sequence item at the item; a value from an alias at the alias, with the
/// anchored nodes' positions below it (that is where their text is).
#[derive(Clone, Debug)]
pub struct Positions {
    pub at: Position,
    children: Children,
}

/// Boxed slices, not vectors: a tree is kept for every document until its
/// findings are known, so it holds no spare capacity.
#[derive(Clone, Debug)]
enum Children {
    Scalar,
    Mapping(Box<[(Box<str>, Positions)]>),
    Sequence(Box<[Positions]>),
}

/// A mapping's keys in written order, each with its entry's positions.
type Entries = Vec<(Box<str>, Positions)>;
/// A mapping a `<<` merges in, with its positions.
type MergeSource = (Map<String, Value>, Positions);

impl Positions {
    fn scalar(at: Position) -> Self {
        Positions {
            at,
            children: Children::Scalar,
        }
    }

    /// The position of the node `field` names (`spec.healthChecks[1].http.url`,
    /// `spec.custom[gpu]`, a key with dots such as `metadata.labels.app.kubernetes.io/name`),
    /// or of its nearest parent that is written when the node is not (a
    /// missing required field, a default).
    pub fn locate(&self, field: &str) -> Position {
        let mut node = self;
        let mut rest = field;
        loop {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if rest.is_empty() {
                return node.at;
            }
            let next = match rest.strip_prefix('[') {
                Some(inner) => {
                    let Some(end) = inner.find(']') else {
                        return node.at;
                    };
                    let key = inner[..end].trim_matches('"');
                    rest = &inner[end + 1..];
                    node.child(key)
                }
                None => node.entry_prefixing(&mut rest),
            };
            match next {
                Some(child) => node = child,
                None => return node.at,
            }
        }
    }

    /// The item at `key` of a sequence, or the entry `key` of a mapping.
    pub fn child(&self, key: &str) -> Option<&Positions> {
        match &self.children {
            Children::Sequence(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            Children::Mapping(entries) => entries.iter().find(|(k, _)| &**k == key).map(|(_, p)| p),
            Children::Scalar => None,
        }
    }

    /// The mapping entry whose key starts `rest` (the longest, since keys may
    /// hold dots), with `rest` moved past it.
    fn entry_prefixing(&self, rest: &mut &str) -> Option<&Positions> {
        let Children::Mapping(entries) = &self.children else {
            return None;
        };
        let (key, child) = entries
            .iter()
            .filter(|(key, _)| {
                rest.strip_prefix(&**key)
                    .is_some_and(|after| after.is_empty() || after.starts_with(['.', '[']))
            })
            .max_by_key(|(key, _)| key.len())?;
        *rest = &rest[key.len()..];
        Some(child)
    }

    /// The positions of item `index` of a sequence.
    pub fn item(&self, index: usize) -> Option<&Positions> {
        match &self.children {
            Children::Sequence(items) => items.get(index),
            _ => None,
        }
    }
}

impl<'a> Documents<'a> {
    pub fn new(text: &'a str) -> Self {
        Documents {
            events: events::Reader::new(text),
            anchors: HashMap::new(),
            depth: Depth::default(),
            alias_budget: text.len().saturating_mul(4).max(100_000),
            finished: false,
        }
    }

    fn next_document(&mut self) -> Result<Option<Document>, YamlError> {
        loop {
            let (event, _) = self.events.next()?;
            match event {
                events::Event::StreamEnd => return Ok(None),
                events::Event::DocumentStart => {
                    self.anchors.clear();
                    let (root, mark) = self.events.next()?;
                    let (value, positions) = self.node(root, mark)?;
                    return Ok(Some(Document { value, positions }));
                }
                _ => {}
            }
        }
    }

    fn node(
        &mut self,
        event: events::Event,
        mark: events::Mark,
    ) -> Result<(Value, Positions), YamlError> {
        let at = mark.position();
        let (value, positions, anchor) = match event {
            events::Event::Alias(name) => {
                let Some((value, positions)) = self.anchors.get(&name) else {
                    return Err(mark.error(format!("unknown anchor {name:?}")));
                };
                let size = node_count(value);
                self.alias_budget = self
                    .alias_budget
                    .checked_sub(size)
                    .ok_or_else(|| mark.error("document contains excessive aliasing".into()))?;
                let positions = Positions {
                    at,
                    children: positions.children.clone(),
                };
                return Ok((value.clone(), positions));
            }
            events::Event::Scalar {
                anchor,
                tag,
                value,
                plain,
            } => (
                scalar(tag.as_deref(), value, plain, mark)?,
                Positions::scalar(at),
                anchor,
            ),
            events::Event::SequenceStart { anchor, flow } => {
                self.depth.enter(flow).map_err(|m| mark.error(m))?;
                let mut items = Vec::new();
                let mut item_positions = Vec::new();
                loop {
                    let (event, at) = self.events.next()?;
                    if matches!(event, events::Event::SequenceEnd) {
                        break;
                    }
                    let (item, positions) = self.node(event, at)?;
                    items.push(item);
                    item_positions.push(positions);
                }
                self.depth.leave();
                let positions = Positions {
                    at,
                    children: Children::Sequence(item_positions.into_boxed_slice()),
                };
                (Value::Array(items), positions, anchor)
            }
            events::Event::MappingStart { anchor, flow } => {
                self.depth.enter(flow).map_err(|m| mark.error(m))?;
                let (entries, entry_positions) = self.mapping()?;
                self.depth.leave();
                let positions = Positions {
                    at,
                    children: Children::Mapping(entry_positions.into_boxed_slice()),
                };
                (Value::Object(entries), positions, anchor)
            }
            _ => return Err(mark.error("unexpected YAML event".into())),
        };
        if let Some(anchor) = anchor {
            self.anchors
                .insert(anchor, (value.clone(), positions.clone()));
        }
        Ok((value, positions))
    }

    /// A mapping's entries; `<<` merges (YAML 1.1 merge keys, as go-yaml v2
    /// reads them) never override keys written in the mapping itself.
    fn mapping(&mut self) -> Result<(Map<String, Value>, Entries), YamlError> {
        let mut entries = Map::new();
        let mut positions: Entries = Vec::new();
        let mut merged: Vec<MergeSource> = Vec::new();
        loop {
            let (event, at) = self.events.next()?;
            if matches!(event, events::Event::MappingEnd) {
                break;
            }
            let is_merge = matches!(&event, events::Event::Scalar { value, plain: true, tag: None, .. } if value == "<<");
            let (key, _) = self.node(event, at)?;
            let (value_event, value_at) = self.events.next()?;
            let (value, value_positions) = self.node(value_event, value_at)?;
            if is_merge {
                merged.extend(merge_sources(value, value_positions, value_at)?);
                continue;
            }
            let key = json_key(key, at)?;
            if entries.contains_key(&key) {
                let line = positions
                    .iter()
                    .find(|(k, _)| **k == *key)
                    .map_or(0, |(_, earlier)| earlier.at.line);
                return Err(at.error(format!(
                    "mapping key {key:?} already defined at line {line}"
                )));
            }
            positions.push((
                key.as_str().into(),
                Positions {
                    at: at.position(),
                    children: value_positions.children,
                },
            ));
            entries.insert(key, value);
        }
        for (source, source_positions) in &merged {
            let Children::Mapping(source_positions) = &source_positions.children else {
                continue;
            };
            for (key, key_positions) in source_positions {
                if !entries.contains_key(&**key)
                    && let Some(value) = source.get(&**key)
                {
                    entries.insert(key.to_string(), value.clone());
                    positions.push((key.clone(), key_positions.clone()));
                }
            }
        }
        Ok((entries, positions))
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<Document, YamlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let next = self.next_document().transpose();
        self.finished = !matches!(next, Some(Ok(_)));
        next
    }
}

/// Values in `value`, counting itself.
fn node_count(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(node_count).sum::<usize>(),
        _ => 1,
    }
}

/// The mappings a `<<` value stands for, with their positions; earlier ones
/// win, as in YAML 1.1.
fn merge_sources(
    value: Value,
    positions: Positions,
    at: events::Mark,
) -> Result<Vec<MergeSource>, YamlError> {
    let refused = || at.error("map merge requires a mapping or a list of mappings".into());
    match (value, positions.children) {
        (Value::Object(map), children) => Ok(vec![(
            map,
            Positions {
                at: positions.at,
                children,
            },
        )]),
        (Value::Array(items), Children::Sequence(item_positions)) => items
            .into_iter()
            .zip(item_positions)
            .map(|item| match item {
                (Value::Object(map), positions) => Ok((map, positions)),
                _ => Err(refused()),
            })
            .collect(),
        _ => Err(refused()),
    }
}

/// A key as sigs.k8s.io/yaml writes it in JSON: numbers and booleans become
/// their text, null and collections are refused.
fn json_key(key: Value, at: events::Mark) -> Result<String, YamlError> {
    match key {
        Value::String(text) => Ok(text),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(at.error("a mapping key is null; JSON keys are strings".into())),
        Value::Array(_) | Value::Object(_) => {
            Err(at.error("a mapping key is a collection; JSON keys are strings".into()))
        }
    }
}

const TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// A scalar resolved as go-yaml v2 resolves it: quoted and block scalars are
/// strings, untagged plain ones follow YAML 1.1, `!!str` forces a string and
/// `!!int`, `!!float`, `!!bool`, `!!null` must resolve to their type.
fn scalar(
    tag: Option<&str>,
    text: String,
    plain: bool,
    at: events::Mark,
) -> Result<Value, YamlError> {
    let short = tag.and_then(|t| t.strip_prefix(TAG_PREFIX));
    let resolved = match short {
        None if tag.is_some() => return Ok(Value::String(text)),
        None if !plain => return Ok(Value::String(text)),
        Some("str") => return Ok(Value::String(text)),
        Some("binary") => return binary(&text, at),
        _ => resolve_plain(&text),
    };
    let value = resolved.map_err(|special| {
        at.error(format!(
            "{special} has no JSON form (kubectl refuses it: unsupported value)"
        ))
    })?;
    let fits = match (short, &value) {
        (None | Some("timestamp"), _) => true,
        (Some("int"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Some("float"), Value::Number(_)) => true,
        (Some("bool"), Value::Bool(_)) | (Some("null"), Value::Null) => true,
        (Some(other), _) => !matches!(other, "int" | "float" | "bool" | "null"),
    };
    if fits {
        Ok(value)
    } else {
        Err(at.error(format!(
            "the value cannot be decoded as !!{}",
            short.unwrap_or_default()
        )))
    }
}

fn binary(text: &str, at: events::Mark) -> Result<Value, YamlError> {
    use base64::Engine;
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Value::String)
        .ok_or_else(|| at.error("!!binary value is not base64 of UTF-8 text".into()))
}

/// An untagged plain scalar by go-yaml v2's `resolve`; `Err` names a float
/// JSON cannot carry (`+Inf`, `-Inf`, `NaN`).
fn resolve_plain(text: &str) -> Result<Value, &'static str> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Err("+Inf"),
        "-.inf" | "-.Inf" | "-.INF" => return Err("-Inf"),
        ".nan" | ".NaN" | ".NAN" => return Err("NaN"),
        _ => {}
    }
    let number = match text.as_bytes()[0] {
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = text.replace('_', "");
            go_int(&plain)
                .map(Number::from)
                .or_else(|| go_uint(&plain).map(Number::from))
                .or_else(|| yaml_style_float(&plain).and_then(json_number))
        }
        b'.' if is_float_text(text) => ("0".to_owned() + text)
            .parse::<f64>()
            .ok()
            .and_then(json_number),
        _ => None,
    };
    Ok(number.map_or_else(|| Value::String(text.to_owned()), Value::Number))
}

/// Go's `strconv.ParseInt(text, 0, 64)`: sign, then `0x`, `0o`, `0b` or a
/// leading `0` (octal) prefix.
fn go_int(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = i128::from(go_uint(unsigned)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Go's `strconv.ParseUint(text, 0, 64)`.
fn go_uint(text: &str) -> Option<u64> {
    let lower = text.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &text[2..]),
        Some("0o") => (8, &text[2..]),
        Some("0b") => (2, &text[2..]),
        _ if text.len() > 1 && text.starts_with('0') => (8, &text[1..]),
        _ => (10, text),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// go-yaml v2's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`,
/// parsed; `None` when it does not match or overflows (Go then keeps a string).
fn yaml_style_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !is_float_text(unsigned) {
        return None;
    }
    let unsigned = if unsigned.starts_with('.') {
        format!("0{unsigned}")
    } else {
        unsigned.to_owned()
    };
    let value: f64 = unsigned.parse().ok()?;
    let value = if text.starts_with('-') { -value } else { value };
    value.is_finite().then_some(value)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` in full.
fn is_float_text(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// The number the webhook holds after the float went through Go's JSON
/// encoder and serde_json: integral values that fit 64 bits are integers.
fn json_number(value: f64) -> Option<Number> {
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;
    // Go writes integral floats below 1e21 as plain digits, which serde_json
    // reads back as an integer when it fits.
    if value.fract() == 0.0 && value.abs() < 1e21 {
        if (-TWO_TO_63..TWO_TO_63).contains(&value) {
            return Some(Number::from(value as i64));
        }
        if (0.0..TWO_TO_64).contains(&value) {
            return Some(Number::from(value as u64));
        }
    }
    Number::from_f64(value)
}

/// libyaml's event parser, as libyaml-safer ports it to safe Rust.
mod events {
    use super::YamlError;
    use libyaml_safer::{Encoding, EventData, MappingStyle, Parser, ScalarStyle, SequenceStyle};
    use std::io::BufReader;

    /// Where an event starts; 1-based.
    #[derive(Clone, Copy, Debug)]
    pub struct Mark {
        pub line: usize,
        pub column: usize,
    }

    impl Mark {
        /// libyaml's marks are 0-based.
        fn from_lib(mark: libyaml_safer::Mark) -> Self {
            Mark {
                line: mark.line as usize + 1,
                column: mark.column as usize + 1,
            }
        }

        pub fn position(self) -> super::Position {
            super::Position {
                line: self.line,
                column: self.column,
            }
        }

        pub fn error(self, message: String) -> YamlError {
            YamlError {
                line: self.line,
                column: self.column,
                message,
            }
        }
    }

    #[derive(Debug)]
    pub enum Event {
        StreamStart,
        StreamEnd,
        DocumentStart,
        DocumentEnd,
        Alias(String),
        Scalar {
            anchor: Option<String>,
            tag: Option<String>,
            value: String,
            plain: bool,
        },
        SequenceStart {
            anchor: Option<String>,
            flow: bool,
        },
        SequenceEnd,
        MappingStart {
            anchor: Option<String>,
            flow: bool,
        },
        MappingEnd,
    }

    /// A libyaml parser reading a borrowed UTF-8 text.
    pub struct Reader<'a> {
        parser: Parser<BufReader<&'a [u8]>>,
        /// The first error, returned again by every later call: the parser
        /// must not be driven past an error (its state is then undefined).
        failed: Option<YamlError>,
    }

    impl<'a> Reader<'a> {
        pub fn new(text: &'a str) -> Self {
            let mut parser = Parser::new();
            parser.set_encoding(Encoding::Utf8);
            // In libyaml's 16 KiB chunks: the port decodes each chunk it is
            // handed before its next event, so a text refused early (too
            // deep) is not decoded to its end first, and a control character
            // is reported after the same events as libyaml reported it.
            parser.set_input(BufReader::with_capacity(16 * 1024, text.as_bytes()));
            Reader {
                parser,
                failed: None,
            }
        }

        /// The next event; after an error every call returns that error again.
        pub fn next(&mut self) -> Result<(Event, Mark), YamlError> {
            if let Some(error) = &self.failed {
                return Err(error.clone());
            }
            match self.parser.parse() {
                Ok(event) => Ok((convert(event.data), Mark::from_lib(event.start_mark))),
                Err(error) => {
                    let error = parse_error(&error);
                    self.failed = Some(error.clone());
                    Err(error)
                }
            }
        }
    }

    fn convert(data: EventData) -> Event {
        match data {
            EventData::StreamStart { .. } => Event::StreamStart,
            EventData::StreamEnd => Event::StreamEnd,
            EventData::DocumentStart { .. } => Event::DocumentStart,
            EventData::DocumentEnd { .. } => Event::DocumentEnd,
            EventData::Alias { anchor } => Event::Alias(anchor),
            EventData::Scalar {
                anchor,
                tag,
                value,
                style,
                ..
            } => Event::Scalar {
                anchor,
                tag,
                value,
                plain: style == ScalarStyle::Plain,
            },
            EventData::SequenceStart { anchor, style, .. } => Event::SequenceStart {
                anchor,
                flow: style == SequenceStyle::Flow,
            },
            EventData::SequenceEnd => Event::SequenceEnd,
            EventData::MappingStart { anchor, style, .. } => Event::MappingStart {
                anchor,
                flow: style == MappingStyle::Flow,
            },
            EventData::MappingEnd => Event::MappingEnd,
        }
    }

    /// The parser's error, worded like serde_norway's (`problem, context`):
    /// libyaml's own static wording, never the input's text. A reader error
    /// (a control character) has no mark; libyaml's was 1:1 as well.
    fn parse_error(error: &libyaml_safer::Error) -> YamlError {
        let mut message = error.problem().to_owned();
        if let Some(context) = error.context() {
            message = format!("{message}, {context}");
        }
        let mark = error
            .problem_mark()
            .map_or(Mark { line: 1, column: 1 }, Mark::from_lib);
        mark.error(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Result<Value, YamlError> {
        Documents::new(text)
            .next()
            .expect("a document")
            .map(|d| d.value)
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        let cases: &[(&str, &str, Value)] = &[
            ("yaml 1.1 false", "no", json!(false)),
            ("yaml 1.1 true", "On", json!(true)),
            ("single letter", "y", json!(true)),
            ("quoted stays a string", "'no'", json!("no")),
            ("str tag", "!!str yes", json!("yes")),
            ("null tilde", "~", json!(null)),
            ("leading zero is octal", "0755", json!(493)),
            ("0o prefix", "0o17", json!(15)),
            ("hex", "0x1F", json!(31)),
            ("binary", "0b101", json!(5)),
            ("negative binary", "-0b101", json!(-5)),
            ("underscores", "1_000", json!(1000)),
            ("bad octal is a float", "089", json!(89)),
            (
                "beyond i64 fits u64",
                "18446744073709551615",
                json!(18446744073709551615u64),
            ),
            (
                "beyond u64 is a float",
                "100000000000000000000",
                json!(1e20),
            ),
            ("exponent", "1e3", json!(1000)),
            ("fraction", "-1.5", json!(-1.5)),
            ("dot float", ".5", json!(0.5)),
            ("float overflow stays text", "1e400", json!("1e400")),
            ("timestamp stays text", "2001-12-14", json!("2001-12-14")),
            ("version stays text", "1.2.3", json!("1.2.3")),
            ("int tag on quoted", "!!int '12'", json!(12)),
            ("local tag keeps text", "!thing 12", json!("12")),
        ];
        for (name, text, want) in cases {
            assert_eq!(one(text).as_ref(), Ok(want), "{name}");
        }
    }

    #[test]
    fn refusals_name_the_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("infinity", "a: 1\nb: .inf\n", 2, "+Inf has no JSON form"),
            ("not a number", "a: .nan\n", 1, "NaN has no JSON form"),
            (
                "duplicate key",
                "a: 1\nb: 2\na: 3\n",
                3,
                "mapping key \"a\" already defined at line 1",
            ),
            (
                "int tag on text",
                "a: !!int x\n",
                1,
                "cannot be decoded as !!int",
            ),
            ("unknown alias", "a: *nope\n", 1, "unknown anchor"),
            (
                "deep flow",
                &format!("a: {}", "[".repeat(100_000)),
                1,
                "flow collections ([ or {) nested deeper than 32 levels",
            ),
            (
                "deep blocks",
                &(0..200)
                    .map(|i| format!("{}k:\n", " ".repeat(i)))
                    .collect::<String>(),
                129,
                "nested deeper than 128 levels",
            ),
            ("syntax", "a: [1, 2\n", 2, "did not find expected"),
        ];
        for (name, text, line, message) in cases {
            let err = one(text).expect_err(name);
            assert_eq!(err.line, *line, "{name}: {err:?}");
            assert!(err.message.contains(message), "{name}: {err:?}");
        }
    }

    #[test]
    fn keys_merges_and_aliases() {
        let cases: &[(&str, &str, Value)] = &[
            ("boolean key", "yes: 1", json!({"true": 1})),
            ("a key y is a boolean too", "y: 1", json!({"true": 1})),
            ("number key", "0x10: a", json!({"16": "a"})),
            (
                "merge keeps own keys",
                "base: &b {x: 1, w: 2}\nuse:\n  <<: *b\n  w: 3\n",
                json!({"base": {"x": 1, "w": 2}, "use": {"x": 1, "w": 3}}),
            ),
            (
                "merge a list, earlier wins",
                "a: &a {x: 1}\nb: &b {x: 2, z: 3}\nc: {<<: [*a, *b]}\n",
                json!({"a": {"x": 1}, "b": {"x": 2, "z": 3}, "c": {"x": 1, "z": 3}}),
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(one(text).as_ref(), Ok(want), "{name}");
        }
    }

    /// The published libyaml-safer panicked on each; libyaml (go-yaml v2)
    /// reads them as here (vendor/libyaml-safer/PATCHES.md).
    #[test]
    fn inputs_the_published_port_panicked_on() {
        let read: &[(&str, &str, Value)] = &[
            (
                "block scalar without a final break",
                "a: |\n  x",
                json!({"a": "x"}),
            ),
            (
                "folded, nested",
                "a:\n  b: >\n    x\n    y",
                json!({"a": {"b": "x y"}}),
            ),
            (
                "tag before a comma in a flow",
                "[!!null, a]",
                json!([null, "a"]),
            ),
            (
                "tag right before a comma",
                "{a: !!str, b: 1}",
                json!({"a": "", "b": 1}),
            ),
        ];
        for (name, text, want) in read {
            assert_eq!(one(text).as_ref(), Ok(want), "{name}");
        }
        let err = one("a: \"x\\").expect_err("a '\\' ending the text");
        assert_eq!((err.line, err.column), (1, 6), "{err:?}");
        assert_eq!(
            err.message,
            "found unknown escape character, while parsing a quoted scalar"
        );
    }

    #[test]
    fn aliases_cannot_expand_without_bound() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = one(&text).expect_err("refused");
        assert!(err.message.contains("excessive aliasing"), "{err:?}");
    }

    #[test]
    fn documents_stream_with_root_lines() {
        let lines: Vec<usize> = Documents::new("a: 1\n---\nb: 2\n--- # c\nc: 3\n")
            .map(|d| d.unwrap().line())
            .collect();
        assert_eq!(lines, [1, 3, 5]);
    }

    #[test]
    fn fields_are_located_at_their_key_or_nearest_written_parent() {
        let text = "\
apiVersion: v1
spec:
  chart: &chart
    name: web
  healthChecks:
  - name: a
  -   name: b
      http: {url: 'x'}
  custom:
    app.kubernetes.io/name: x
    gpu: 1
  copy:
    <<: *chart
    version: 1
";
        let document = Documents::new(text).next().unwrap().unwrap();
        let cases: &[(&str, &str, (usize, usize))] = &[
            ("root field", "apiVersion", (1, 1)),
            ("nested key", "spec.chart.name", (4, 5)),
            ("list item", "spec.healthChecks[1]", (7, 7)),
            ("inside a list item", "spec.healthChecks[1].name", (7, 7)),
            ("flow mapping", "spec.healthChecks[1].http.url", (8, 14)),
            (
                "missing leaf: its parent",
                "spec.healthChecks[1].http.method",
                (8, 7),
            ),
            (
                "missing item: the list",
                "spec.healthChecks[5].name",
                (5, 3),
            ),
            (
                "missing subtree: nearest",
                "spec.teardownPolicy.triggers[0]",
                (2, 1),
            ),
            (
                "a key with dots",
                "spec.custom.app.kubernetes.io/name",
                (10, 5),
            ),
            ("a key in brackets", "spec.custom[gpu]", (11, 5)),
            (
                "a merged key: where it is written",
                "spec.copy.name",
                (4, 5),
            ),
            ("own key beside a merge", "spec.copy.version", (14, 5)),
            ("an index into a mapping", "spec.chart[0]", (3, 3)),
            ("the whole document", "", (1, 1)),
        ];
        for (name, field, (line, column)) in cases {
            let at = document.positions.locate(field);
            assert_eq!((at.line, at.column), (*line, *column), "{name}: {field}");
        }
    }

    #[test]
    fn json_is_located_too() {
        let text = "{\"spec\": {\n  \"chart\": {\"name\": \"a\"}}}";
        let document = Documents::new(text).next().unwrap().unwrap();
        let at = document.positions.locate("spec.chart.name");
        assert_eq!((at.line, at.column), (2, 13));
    }

    #[test]
    fn root_kinds() {
        let cases: &[(&str, &str, Result<RootKind, ShapeError>)] = &[
            ("mapping", "a: 1", Ok(RootKind::Mapping)),
            ("list", "- a", Ok(RootKind::Sequence)),
            ("scalar", "words", Ok(RootKind::Scalar)),
            ("empty", "", Ok(RootKind::Null)),
            ("tilde", "~", Ok(RootKind::Null)),
            (
                "two documents",
                "a: 1\n---\nb: 2\n",
                Err(ShapeError::SeveralDocuments),
            ),
            ("deep", &"[".repeat(100_000), Err(ShapeError::TooDeep)),
        ];
        for (name, text, want) in cases {
            assert_eq!(&root_kind(text), want, "{name}");
        }
    }
}
