//! Text helpers every layer may use (a leaf: it uses no other module of
//! the crate): typo suggestions, parser errors described without input, and
//! untrusted text made safe to print.

use std::fmt::Write as _;

/// The choice `value` is closest to, when close enough to be a typo: the same
/// letters in another case, at most one edit per three letters of the choice
/// (at least one), the choice followed by a few more letters (`warnng`,
/// `debugging`), or the choice with a prefix (`helmChart` for `chart`).
pub fn closest<'a>(value: &str, choices: &[&'a str]) -> Option<&'a str> {
    nearest(value, choices, 1).into_iter().next()
}

/// Up to `most` choices close enough to `value` to be a typo of it (as
/// [`closest`] judges), nearest first; equally near ones keep their order.
pub fn nearest<'a>(value: &str, choices: &[&'a str], most: usize) -> Vec<&'a str> {
    const LONGEST_COMPARED: usize = 64;
    if value.chars().count() > LONGEST_COMPARED {
        return Vec::new();
    }
    let value = value.to_lowercase();
    let distance = |choice: &str| {
        let choice = choice.to_lowercase();
        if choice.chars().count() >= 3 && (value.starts_with(&choice) || value.ends_with(&choice)) {
            return 1;
        }
        edit_distance(&value, &choice)
    };
    let mut near: Vec<(usize, &'a str)> = choices
        .iter()
        .map(|choice| (distance(choice), *choice))
        .filter(|(distance, choice)| *distance <= (choice.chars().count() / 3).max(1))
        .collect();
    near.sort_by_key(|(distance, _)| *distance);
    // A far second guess next to a near first one is noise.
    let Some(&(best, _)) = near.first() else {
        return Vec::new();
    };
    near.into_iter()
        .take_while(|(distance, _)| *distance <= best + 2)
        .take(most)
        .map(|(_, choice)| choice)
        .collect()
}

/// Levenshtein distance (insertions, deletions, substitutions), with
/// adjacent transpositions counted as one edit (`htpp` → `http`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The parser's message without any quoted input (it could be a secret).
pub fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Eof => format!("truncated at line {} column {}", err.line(), err.column()),
        Category::Syntax => {
            let text = err.to_string();
            let reason = text
                .split(" at line")
                .next()
                .unwrap_or("syntax error")
                .to_owned();
            format!("{reason} at line {} column {}", err.line(), err.column())
        }
        Category::Data => {
            let text = err.to_string();
            match text.split_once("expected ") {
                Some((_, expected)) => format!(
                    "a field has the wrong type: expected {}",
                    expected.split(" at line").next().unwrap_or(expected)
                ),
                None => text
                    .split(" at line")
                    .next()
                    .unwrap_or("wrong data")
                    .to_owned(),
            }
        }
        Category::Io => "unreadable body".to_owned(),
    }
}

/// `text` with every character a terminal or a log reader acts on escaped
/// (`\n`, `\u{1b}`, `\u{202e}`): output for people passes each string an
/// input, a request or a policy controls through it, so none can break a
/// line, forge one or send escape sequences.
pub fn printable(text: &str) -> String {
    if is_plain(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_printable(&mut out, c);
    }
    out
}

/// [`printable`], cut to `max_chars` characters of `text` (then `…`): for a
/// name or a kind from a request, written in a reply or a log line.
pub fn printable_cut(text: &str, max_chars: usize) -> String {
    if text.len() <= max_chars && is_plain(text) {
        return text.to_owned();
    }
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        push_printable(&mut out, c);
    }
    out
}

/// Pushes `c`, escaped when a reader acts on it.
pub fn push_printable(out: &mut String, c: char) {
    if !acted_on(c) {
        out.push(c);
    } else if c.is_control() {
        // The short forms where there are some: `\n`, `\r`, `\t`.
        let _ = write!(out, "{}", c.escape_debug());
    } else {
        let _ = write!(out, "{}", c.escape_unicode());
    }
}

/// Printable ASCII only (the common case: names, paths, codes), which
/// nothing escapes; one pass over the bytes.
fn is_plain(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Control characters (C0, DEL, C1), the line and paragraph separators
/// (some editors and log viewers break lines there) and the bidi controls
/// (they reorder what a reader sees).
fn acted_on(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let cases = [
            ("plain", "dir/a.yaml", "dir/a.yaml"),
            ("newline", "a\nb.yaml", "a\\nb.yaml"),
            ("escape sequence", "\x1b[31mred.yaml", "\\u{1b}[31mred.yaml"),
            ("DEL and C1", "a\u{7f}\u{9b}b", "a\\u{7f}\\u{9b}b"),
            (
                "line separator",
                "a\u{2028}b\u{2029}c",
                "a\\u{2028}b\\u{2029}c",
            ),
            ("bidi override", "\u{202e}lmth.yaml", "\\u{202e}lmth.yaml"),
            ("bidi isolate", "a\u{2067}b\u{200f}", "a\\u{2067}b\\u{200f}"),
            ("non-ASCII kept", "nid-\u{e9}.yaml", "nid-\u{e9}.yaml"),
        ];
        for (name, raw, want) in cases {
            assert_eq!(printable(raw), want, "{name}");
            assert_eq!(printable_cut(raw, 100), want, "{name}");
        }
    }

    #[test]
    fn printable_cut_escapes_and_cuts_long_text() {
        assert_eq!(printable_cut("web\nINFO forged", 253), "web\\nINFO forged");
        let long = printable_cut(&"n".repeat(10_000), 253);
        assert_eq!(long.chars().count(), 254);
        assert!(long.ends_with('…'));
        assert_eq!(printable_cut("\u{202e}abc", 2), "\\u{202e}a…");
        assert_eq!(printable_cut("abc", 2), "ab…");
        assert_eq!(printable_cut("abc", 3), "abc");
        assert_eq!(printable("a b~"), "a b~");
    }
}
