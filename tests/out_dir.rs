//! The commands that write files into a directory the user names (`schema
//! --out-dir`, `man --out-dir`, `certs generate --out-dir`), run as users
//! run them: a symlink already in the directory is replaced, never written
//! through, and a directory in a file's place is refused.

use roost_testcluster::text;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

/// Each command, the file names it writes that a symlink is planted at (the
/// certificates' former temporary names too) and a file it writes.
const COMMANDS: &[(&[&str], &[&str])] = &[
    (&["schema"], &["managedroost-roost-v1alpha1.json"]),
    (&["man"], &["roost-keeper.1", "roost-keeper-validate.1"]),
    (
        &["certs", "generate"],
        &["tls.key", "ca.crt", "ca.tmp", "tls.tmp"],
    ),
];

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roost-keeper"))
        .args(args)
        .arg("--out-dir")
        .arg(dir)
        .env_remove("ROOST_KEEPER_SCHEMA_KIND")
        .output()
        .expect("binary runs")
}

#[test]
fn a_symlink_in_the_out_dir_is_replaced_not_followed() {
    let mut wrong = Vec::new();
    for (args, names) in COMMANDS {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for name in *names {
            let victim = outside.path().join(name);
            std::fs::write(&victim, "precious\n").unwrap();
            symlink(&victim, dir.path().join(name)).unwrap();
        }
        let out = run(args, dir.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        for name in *names {
            let victim = std::fs::read_to_string(outside.path().join(name));
            if victim.ok().as_deref() != Some("precious\n") {
                wrong.push(format!("{args:?} wrote through the symlink {name}"));
            }
            let meta = std::fs::symlink_metadata(dir.path().join(name));
            let regular = meta.is_ok_and(|m| m.is_file() && m.len() > 0);
            // The certificates' former temporary names are left alone.
            if !name.ends_with(".tmp") && !regular {
                wrong.push(format!("{args:?}: {name} is no regular file with content"));
            }
        }
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        if !leftovers.is_empty() {
            wrong.push(format!("{args:?} left {leftovers:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_directory_in_a_files_place_is_refused() {
    let mut wrong = Vec::new();
    for (args, names) in COMMANDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(names[0]);
        std::fs::create_dir(&path).unwrap();
        let out = run(args, dir.path());
        let stderr = text(&out.stderr);
        let said = stderr.contains(&format!("cannot write {}", path.display()))
            && stderr.contains("a directory is in the way");
        if out.status.success() || !said {
            wrong.push(format!("{args:?}: {stderr}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
