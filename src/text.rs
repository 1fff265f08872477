//! Text helpers every layer may use (a leaf: it uses no other module of
//! the crate): typo suggestions and parser errors described without input.

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
