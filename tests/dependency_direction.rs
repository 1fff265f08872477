//! The dependency direction ARCHITECTURE.md writes down ("Layers"), checked
//! against every `crate::` path in the library's code: a module may use only
//! modules of lower layers (and itself). Tests inside a file (`#[cfg(test)]
//! mod …`) and comments are not looked at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Module name -> layer, from the `layer N: a b c` lines of ARCHITECTURE.md.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let Some((layer, modules)) = line.strip_prefix("layer ").and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let layer: usize = layer.trim().parse().expect("a layer number");
        for module in modules.split_whitespace() {
            assert!(
                layers.insert(module.to_owned(), layer).is_none(),
                "{module} is in two layers"
            );
        }
    }
    assert!(
        layers.len() > 10,
        "ARCHITECTURE.md lists the layers: {layers:?}"
    );
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of src/ belongs to (`None`: lib.rs, main.rs).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(repo().join("src")).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(module) => Some(module.to_owned()),
        None => Some(first.to_owned()),
    }
}

/// The modules `code` names through `crate::` (crate-root items such as
/// `crate::{Error, Result}` are the error module's re-exports).
fn used_modules(code: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .map(|n| n.trim().split("::").next().unwrap_or(""))
                .collect(),
            None => vec![
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            ],
        };
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            let module = if name.starts_with(char::is_uppercase) {
                "error"
            } else {
                name
            };
            used.push(module.to_owned());
        }
    }
    used
}

/// A file's code without its tests module and comment lines.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

#[test]
fn every_use_of_the_crate_points_down_the_layers() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let mut against = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(&layer) = layers.get(&module) else {
            against.push(format!("{module} ({}) is in no layer", file.display()));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for used in used_modules(&code) {
            if used == module {
                continue;
            }
            match layers.get(&used) {
                Some(&below) if below < layer => {}
                Some(&other) => against.push(format!(
                    "{} (layer {layer}) uses {used} (layer {other})",
                    file.strip_prefix(repo()).unwrap().display()
                )),
                None => against.push(format!("{used}, used by {module}, is in no layer")),
            }
        }
    }
    against.sort();
    against.dedup();
    assert!(against.is_empty(), "{against:#?}");
}

/// The checker itself finds an upward use, through both path forms.
#[test]
fn the_check_sees_paths_groups_and_skips_tests_and_comments() {
    let text = "use crate::{Error, validation::Level};\nfn f() { crate::server::run(); }\n// crate::cli in a comment\n#[cfg(test)]\nmod tests {\n    use crate::offline;\n}\n";
    let used = used_modules(&code_of(text));
    assert_eq!(used, ["error", "validation", "server"]);
}
