//! Every relative link in the docs resolves: README.md, the other top-level
//! `*.md` files and `docs/*.md` (the mdBook pages, SUMMARY.md included).
//! A link to a file must name one that exists; an `#anchor` (in the same
//! file or `page.md#anchor`) must be the GitHub slug of one of the target's
//! headings. Links with a scheme (`https:`, `mailto:`) and anything inside
//! code blocks or code spans are not checked.
//!
//! A small Markdown reader rather than a Markdown crate: the docs use ATX
//! headings (`## Title`), inline links and fenced code, and this is all it
//! needs to read. Its own cases below show that it finds what it must.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's anchor for a heading: the heading's text (code spans and links
/// reduced to their text), lowercased, every character but letters, digits,
/// spaces, `-` and `_` removed, spaces turned into `-`.
fn slug(heading: &str) -> String {
    plain_text(heading)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Inline Markdown as the text it shows: code-span backticks dropped,
/// `[text](target)` as `text`.
fn plain_text(inline: &str) -> String {
    let without_code = inline.replace('`', "");
    let mut text = String::new();
    let mut rest = without_code.as_str();
    while let Some(at) = rest.find("](") {
        let Some(end) = rest[at..].find(')') else {
            break;
        };
        text.push_str(&rest[..at]);
        rest = &rest[at + end + 1..];
    }
    text.push_str(rest);
    text.replace('[', "")
}

/// The anchors of a page's headings, duplicates numbered as GitHub does
/// (`usage`, `usage-1`, `usage-2`, ...).
fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = Vec::new();
    for block in blocks(markdown) {
        for line in block.lines() {
            let Some(title) = heading(line) else { continue };
            let base = slug(title);
            let count = seen.entry(base.clone()).or_insert(0);
            anchors.push(match *count {
                0 => base,
                n => format!("{base}-{n}"),
            });
            *count += 1;
        }
    }
    anchors
}

/// The text of an ATX heading line (`## Title ##` -> `Title`).
fn heading(line: &str) -> Option<&str> {
    // Up to three spaces of indentation; four make an indented code block.
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let trimmed = &line[indent..];
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

/// The page without its fenced code blocks, as runs of consecutive
/// non-blank lines (a code span cannot cross a blank line, but it can cross
/// a line break, so spans are found per run).
fn blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    // The open fence's character and length: a fence closes with at least as many.
    let mut fence: Option<(char, usize)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'));
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|&c| c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => {
                fence = Some((m, run));
                blocks.push(std::mem::take(&mut current));
                continue;
            }
            (Some((open, length)), Some(m))
                if m == open && run >= length && trimmed[run..].trim().is_empty() =>
            {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            _ => {}
        }
        if line.trim().is_empty() {
            blocks.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    blocks.push(current);
    blocks.retain(|b| !b.is_empty());
    blocks
}

/// `text` with its code spans blanked out: a run of N backticks up to the
/// next run of exactly N. A run with no match is literal text.
fn without_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let open = run_at(i);
        let mut j = i + open;
        let close = loop {
            match chars[j..].iter().position(|&c| c == '`') {
                None => break None,
                Some(k) => {
                    let at = j + k;
                    let run = run_at(at);
                    if run == open {
                        break Some(at);
                    }
                    j = at + run;
                }
            }
        };
        match close {
            Some(at) => {
                out.push_str(&" ".repeat(at + open - i));
                i = at + open;
            }
            None => {
                out.extend(&chars[i..i + open]);
                i += open;
            }
        }
    }
    out
}

/// Every link target of a page outside code: inline links and images
/// (`[text](target "title")`, `<target>` allowed) and reference
/// definitions (`[label]: target`).
fn links(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for block in blocks(markdown) {
        let text = without_code_spans(&block);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            // The destination ends at the `)` that balances the opening one.
            let mut depth = 0usize;
            let end = rest
                .char_indices()
                .find(|&(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    _ => false,
                })
                .map_or(rest.len(), |(i, _)| i);
            targets.push(destination(&rest[..end]));
            rest = &rest[end..];
        }
        for line in text.lines() {
            let line = line.trim_start();
            if let Some((label, target)) = line.strip_prefix('[').and_then(|l| l.split_once("]:"))
                && !label.is_empty()
                && !label.contains(']')
            {
                targets.push(destination(target));
            }
        }
    }
    targets.retain(|t| !t.is_empty());
    targets
}

/// A link's destination without its title or angle brackets.
fn destination(inside: &str) -> String {
    let inside = inside.trim();
    match inside.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or_default().to_owned(),
        None => inside
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Whether a target names a scheme (`https:`, `mailto:`): not ours to check.
fn is_external(target: &str) -> bool {
    let scheme: String = target
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .collect();
    !scheme.is_empty() && target[scheme.len()..].starts_with(':')
}

/// What is wrong with the relative links of `file` (text `markdown`), one
/// line per broken link.
fn problems(file: &Path, markdown: &str) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    for target in links(markdown) {
        if is_external(&target) {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            file.to_owned()
        } else {
            dir.join(path)
        };
        if !linked.exists() {
            problems.push(format!(
                "{}: {target}: no such file {}",
                file.display(),
                linked.display()
            ));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if linked.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let page = if path.is_empty() {
            markdown.to_owned()
        } else {
            std::fs::read_to_string(&linked).unwrap()
        };
        if !anchors(&page).iter().any(|a| a == anchor) {
            problems.push(format!(
                "{}: {target}: no heading of {} has the anchor #{anchor}",
                file.display(),
                linked.display()
            ));
        }
    }
    problems
}

/// README.md, the other top-level Markdown files and docs/*.md.
fn doc_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [repo(), repo().join("docs")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let files = doc_files();
    for expected in [
        "README.md",
        "ARCHITECTURE.md",
        "docs/SUMMARY.md",
        "docs/serving.md",
    ] {
        assert!(
            files.contains(&repo().join(expected)),
            "{expected} is not among {files:?}"
        );
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        checked += links(&text).len();
        broken.extend(problems(file, &text));
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_in_the_book() {
    let summary = std::fs::read_to_string(repo().join("docs/SUMMARY.md")).unwrap();
    let listed = links(&summary);
    for file in doc_files() {
        let Ok(page) = file.strip_prefix(repo().join("docs")) else {
            continue;
        };
        let page = page.to_str().unwrap();
        assert!(
            page == "SUMMARY.md" || listed.iter().any(|l| l == page),
            "docs/{page} is not in docs/SUMMARY.md, so `make docs` leaves it out"
        );
    }
}

#[test]
fn slugs_are_github_s() {
    for (heading, expected) in [
        ("The two commands", "the-two-commands"),
        (
            "Offline validation: `roost-keeper validate`",
            "offline-validation-roost-keeper-validate",
        ),
        (
            "What a failure does to `kubectl apply`",
            "what-a-failure-does-to-kubectl-apply",
        ),
        (
            "Install: the container image, kustomize and Helm",
            "install-the-container-image-kustomize-and-helm",
        ),
        ("C++ & Rust!", "c--rust"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
        ("See [the docs](docs/x.md) now", "see-the-docs-now"),
        ("Größe", "größe"),
    ] {
        assert_eq!(slug(heading), expected, "{heading}");
    }
}

#[test]
fn anchors_number_duplicate_headings_and_skip_code() {
    let page = "# Usage\n\n## Usage\n\n```sh\n# not a heading\n```\n\n### Usage ###\n#hashtag\n";
    assert_eq!(anchors(page), ["usage", "usage-1", "usage-2"]);
}

#[test]
fn links_outside_code_are_found() {
    let page = "\
See [a](a.md), ![img](img/x.png \"title\") and [b](<b c.md>).
`[not](code.md)` and ``[not](either.md)`` but [yes](yes.md#part).
A span `across
a line [no](no.md)` ends.

```md
[fenced](fenced.md)
```

  ~~~
  [tilde](tilde.md)
  ~~~

[ref]: ref.md#top
[nested](f(x).md) and [web](https://example.invalid/x) [mail](mailto:a@b.invalid)
";
    assert_eq!(
        links(page),
        [
            "a.md",
            "img/x.png",
            "b c.md",
            "yes.md#part",
            "f(x).md",
            "https://example.invalid/x",
            "mailto:a@b.invalid",
            "ref.md#top",
        ]
    );
    assert!(is_external("https://example.invalid/x") && is_external("mailto:a@b.invalid"));
    assert!(!is_external("docs/a.md#x") && !is_external("#top"));
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.md"), "# Other page\n\n## Part two\n").unwrap();
    let file = dir.path().join("page.md");
    let page = "\
# Page

[ok](other.md) [ok](other.md#part-two) [ok](#page) [ok](https://example.invalid/#nothing)
[missing](gone.md) [bad anchor](other.md#part-3) [bad here](#nowhere)
`[in code](gone-too.md)`
";
    std::fs::write(&file, page).unwrap();
    let found = problems(&file, page);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].contains("gone.md: no such file"), "{}", found[0]);
    assert!(
        found[1].contains("other.md#part-3: no heading"),
        "{}",
        found[1]
    );
    assert!(found[2].contains("#nowhere: no heading"), "{}", found[2]);
}
