//! tests/cluster/crds/ holds verbatim copies of the report CRDs (OpenReports,
//! wgpolicyk8s.io) that the test control plane installs; ORIGIN.md there
//! records where each comes from and its sha256. This checks the files
//! against the record, offline (`tests/cluster/crds/refresh.sh` checks the
//! record against the modules themselves).

use std::path::Path;

fn crds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/crds")
}

/// The rows of ORIGIN.md's table: (file, module, version, path in the module, sha256).
fn recorded() -> Vec<[String; 5]> {
    let origin = std::fs::read_to_string(crds_dir().join("ORIGIN.md")).unwrap();
    origin
        .lines()
        .filter(|line| line.starts_with("| ") && line.contains(".yaml |"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect();
            cells.try_into().unwrap_or_else(|cells: Vec<String>| {
                panic!("ORIGIN.md row without 5 cells: {cells:?}")
            })
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_pinned_crd_has_its_recorded_sha256() {
    let rows = recorded();
    assert_eq!(rows.len(), 4, "ORIGIN.md records four CRDs: {rows:?}");
    for [file, module, version, path, sha] in &rows {
        let bytes = std::fs::read(crds_dir().join(file))
            .unwrap_or_else(|e| panic!("tests/cluster/crds/{file}: {e}"));
        assert_eq!(
            &sha256_hex(&bytes),
            sha,
            "tests/cluster/crds/{file} is not the copy of {module}@{version} {path} \
             that ORIGIN.md records: run tests/cluster/crds/refresh.sh"
        );
        assert!(
            path.ends_with(file.as_str()),
            "{file} should keep its name in the module ({path})"
        );
    }
}

#[test]
fn every_yaml_file_is_recorded() {
    let rows = recorded();
    let mut on_disk: Vec<String> = std::fs::read_dir(crds_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = rows.iter().map(|row| row[0].clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/cluster/crds/*.yaml and ORIGIN.md");
}

#[test]
fn the_groups_and_versions_are_the_ones_asked_for() {
    for (file, group, version, kind) in [
        (
            "openreports.io_reports.yaml",
            "openreports.io",
            "v1alpha1",
            "Report",
        ),
        (
            "openreports.io_clusterreports.yaml",
            "openreports.io",
            "v1alpha1",
            "ClusterReport",
        ),
        (
            "wgpolicyk8s.io_policyreports.yaml",
            "wgpolicyk8s.io",
            "v1alpha2",
            "PolicyReport",
        ),
        (
            "wgpolicyk8s.io_clusterpolicyreports.yaml",
            "wgpolicyk8s.io",
            "v1alpha2",
            "ClusterPolicyReport",
        ),
    ] {
        let text = std::fs::read_to_string(crds_dir().join(file)).unwrap();
        let crd: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(crd["kind"], "CustomResourceDefinition", "{file}");
        assert_eq!(crd["spec"]["group"], group, "{file}");
        assert_eq!(crd["spec"]["names"]["kind"], kind, "{file}");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert!(
            versions
                .iter()
                .any(|v| v["name"] == version && v["served"] == true && v["storage"] == true),
            "{file} serves and stores {version}"
        );
    }
}
