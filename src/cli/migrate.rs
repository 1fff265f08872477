//! `roost-keeper migrate`: rewrites every ManagedRoost in the storage
//! version, then lets the CRD forget the older one.
//!
//! The apiserver keeps each object in etcd in the version it was last
//! written in; v1alpha1 can be dropped from the CRD only once no object is
//! stored in it and `status.storedVersions` no longer lists it. Reading an
//! object and writing it back unchanged makes the apiserver encode it in the
//! storage version (an update of an object already stored so is a no-op).
//! Every step is safe to repeat, so an interrupted run is simply run again.

use crate::api::version::RENAMED_CREDENTIALS;
use crate::api::{ApiVersion, GROUP, KIND};
use crate::{Error, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;
use std::fmt;
use std::io::Write;

/// The CRD's name.
const CRD_NAME: &str = "managedroosts.roost.birb.party";

/// How a run goes.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// List what would be rewritten; write nothing.
    pub dry_run: bool,
    /// Objects per list page.
    pub page_size: u32,
    /// Attempts per object when another writer changes it in between.
    pub attempts: u32,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            dry_run: false,
            page_size: 500,
            attempts: 5,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationSummary {
    /// ManagedRoosts listed.
    pub total: usize,
    /// Rewritten in the storage version (or found deleted meanwhile); in a
    /// dry run, none.
    pub migrated: usize,
    /// `namespace/name` and why, of those that could not be rewritten.
    pub failed: Vec<(String, String)>,
    /// `namespace/name` of those whose spec holds inline credentials.
    pub inline_credentials: Vec<String>,
    /// Whether `status.storedVersions` was set to the storage version alone.
    pub stored_versions_updated: bool,
    pub dry_run: bool,
}

impl MigrationSummary {
    /// 0 when every object was rewritten (or a dry run listed them), else 1.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.failed.is_empty())
    }
}

impl fmt::Display for MigrationSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            write!(f, "dry run: would migrate {} ManagedRoosts", self.total)?;
        } else {
            write!(
                f,
                "migrated {} of {} ManagedRoosts",
                self.migrated, self.total
            )?;
        }
        match self.inline_credentials.as_slice() {
            [] => write!(f, "; none holds inline credentials")?,
            names => write!(
                f,
                "; {} still hold inline credentials: {}",
                names.len(),
                names.join(", ")
            )?,
        }
        if !self.failed.is_empty() {
            let failed: Vec<String> = self
                .failed
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            write!(f, "; failed: {}", failed.join(", "))?;
        }
        if self.stored_versions_updated {
            write!(
                f,
                "; the CRD's storedVersions is now [{}]",
                ApiVersion::STORAGE
            )?;
        } else if !self.dry_run {
            write!(f, "; storedVersions left as it was")?;
        }
        Ok(())
    }
}

/// The ManagedRoost resource in the storage version.
fn storage_resource() -> ApiResource {
    ApiResource {
        group: GROUP.to_owned(),
        version: ApiVersion::STORAGE.name().to_owned(),
        api_version: ApiVersion::STORAGE.api_version().to_owned(),
        kind: KIND.to_owned(),
        plural: "managedroosts".to_owned(),
    }
}

/// Whether a spec (in v1beta1) holds inline credentials; their values are
/// never read.
pub fn holds_inline_credentials(spec: Option<&Value>) -> bool {
    spec.and_then(|s| s.pointer("/chart/repository/auth"))
        .and_then(Value::as_object)
        .is_some_and(|auth| {
            RENAMED_CREDENTIALS
                .iter()
                .any(|(_, key)| auth.get(*key).is_some_and(|v| !v.is_null()))
        })
}

/// The version the CRD stores, from its spec.
fn stored_version(crd: &CustomResourceDefinition) -> Option<&str> {
    crd.spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.as_str())
}

fn kube_error(context: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { context, source }
}

/// Whether the apiserver answered with `code`.
fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Rewrites every ManagedRoost in the storage version (see the module doc);
/// progress lines go to `progress`.
pub async fn migrate(
    client: Client,
    options: &MigrateOptions,
    progress: &mut (dyn Write + Send),
) -> Result<MigrationSummary> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get(CRD_NAME)
        .await
        .map_err(kube_error(format!("cannot read the CRD {CRD_NAME}")))?;
    let storage = ApiVersion::STORAGE.name();
    if stored_version(&crd) != Some(storage) {
        return Err(Error::Config(format!(
            "the CRD {CRD_NAME} stores {}, not {storage}; install the current CRD first",
            stored_version(&crd).unwrap_or("no version")
        )));
    }
    let resource = storage_resource();
    let names = list_all(&client, &resource, options.page_size).await?;
    let mut summary = MigrationSummary {
        total: names.len(),
        dry_run: options.dry_run,
        ..MigrationSummary::default()
    };
    for (at, (namespace, name)) in names.iter().enumerate() {
        let shown = format!("{namespace}/{name}");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let outcome = rewrite(&api, name, options).await;
        let line = match outcome {
            Ok(Rewritten::Stored { inline_credentials }) => {
                if inline_credentials {
                    summary.inline_credentials.push(shown.clone());
                }
                if options.dry_run {
                    "would rewrite".to_owned()
                } else {
                    summary.migrated += 1;
                    "rewritten".to_owned()
                }
            }
            Ok(Rewritten::Gone) => {
                summary.migrated += usize::from(!options.dry_run);
                "deleted meanwhile".to_owned()
            }
            Err(why) => {
                summary.failed.push((shown.clone(), why.clone()));
                format!("failed: {why}")
            }
        };
        writeln!(progress, "[{}/{}] {shown}: {line}", at + 1, names.len())?;
    }
    if !options.dry_run && summary.failed.is_empty() {
        let patch = serde_json::json!({"status": {"storedVersions": [storage]}});
        crds.patch_status(CRD_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_error(format!(
                "cannot set status.storedVersions of the CRD {CRD_NAME}"
            )))?;
        summary.stored_versions_updated = true;
    }
    Ok(summary)
}

/// Every ManagedRoost's namespace and name, a page at a time.
async fn list_all(
    client: &Client,
    resource: &ApiResource,
    page_size: u32,
) -> Result<Vec<(String, String)>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(page_size.max(1));
    loop {
        let page = api
            .list_metadata(&params)
            .await
            .map_err(kube_error("cannot list ManagedRoosts".to_owned()))?;
        names.extend(
            page.items
                .into_iter()
                .filter_map(|object| Some((object.metadata.namespace?, object.metadata.name?))),
        );
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(names),
        }
    }
}

/// What became of one object.
enum Rewritten {
    /// Written back in the storage version (a dry run only read it).
    Stored {
        inline_credentials: bool,
    },
    Gone,
}

/// Reads `name` in the storage version and writes it back unchanged, with
/// its resourceVersion, again on a conflict; `Err` says why not (the value
/// of no field).
async fn rewrite(
    api: &Api<DynamicObject>,
    name: &str,
    options: &MigrateOptions,
) -> std::result::Result<Rewritten, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let object = match api.get(name).await {
            Ok(object) => object,
            Err(err) if is_status(&err, 404) => return Ok(Rewritten::Gone),
            Err(err) => return Err(format!("cannot read it: {err}")),
        };
        let inline_credentials = holds_inline_credentials(object.data.get("spec"));
        if options.dry_run {
            return Ok(Rewritten::Stored { inline_credentials });
        }
        match api.replace(name, &PostParams::default(), &object).await {
            Ok(_) => return Ok(Rewritten::Stored { inline_credentials }),
            Err(err) if is_status(&err, 404) => return Ok(Rewritten::Gone),
            Err(err) if is_status(&err, 409) && attempt < options.attempts => continue,
            Err(err) => return Err(format!("cannot write it back: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_credentials_are_found_by_name_only() {
        for (spec, holds) in [
            (
                json!({"chart": {"repository": {"auth": {"deprecatedPassword": "p"}}}}),
                true,
            ),
            (
                json!({"chart": {"repository": {"auth": {"deprecatedToken": "t"}}}}),
                true,
            ),
            (
                json!({"chart": {"repository": {"auth": {"deprecatedToken": null}}}}),
                false,
            ),
            (
                json!({"chart": {"repository": {"auth": {"secretRef": {"name": "s"}}}}}),
                false,
            ),
            (
                json!({"chart": {"repository": {"url": "https://x"}}}),
                false,
            ),
            (json!(null), false),
        ] {
            assert_eq!(holds_inline_credentials(Some(&spec)), holds, "{spec}");
        }
        assert!(!holds_inline_credentials(None));
    }

    #[test]
    fn the_summary_names_objects_never_values() {
        let summary = MigrationSummary {
            total: 3,
            migrated: 3,
            inline_credentials: vec!["team-a/web".into(), "team-b/api".into()],
            stored_versions_updated: true,
            ..MigrationSummary::default()
        };
        assert_eq!(
            summary.to_string(),
            "migrated 3 of 3 ManagedRoosts; 2 still hold inline credentials: team-a/web, team-b/api; \
             the CRD's storedVersions is now [v1beta1]"
        );
        assert_eq!(summary.exit_code(), 0);
        let failed = MigrationSummary {
            total: 2,
            migrated: 1,
            failed: vec![("team-a/old".into(), "cannot write it back: denied".into())],
            ..MigrationSummary::default()
        };
        assert_eq!(
            failed.to_string(),
            "migrated 1 of 2 ManagedRoosts; none holds inline credentials; \
             failed: team-a/old (cannot write it back: denied); storedVersions left as it was"
        );
        assert_eq!(failed.exit_code(), 1);
        let dry = MigrationSummary {
            total: 2,
            dry_run: true,
            ..MigrationSummary::default()
        };
        assert_eq!(
            dry.to_string(),
            "dry run: would migrate 2 ManagedRoosts; none holds inline credentials"
        );
    }

    /// A mocked apiserver (tower-test) with two roosts on two list pages; the
    /// first write of `team-a/web` meets a conflict. Answers every request
    /// until none comes for a while; returns what was asked.
    async fn apiserver(
        mut handle: tower_test::mock::Handle<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >,
    ) -> Vec<String> {
        use kube::client::Body;
        let roost = |namespace: &str, name: &str, auth: Value| {
            json!({"apiVersion": "roost.birb.party/v1beta1", "kind": "ManagedRoost",
                   "metadata": {"name": name, "namespace": namespace, "resourceVersion": "7"},
                   "spec": {"chart": {"name": "c", "repository": {"url": "https://x", "auth": auth}}}})
        };
        let mut asked = Vec::new();
        let mut conflicted = false;
        while let Ok(Some((request, respond))) =
            tokio::time::timeout(std::time::Duration::from_millis(500), handle.next_request()).await
        {
            let (method, uri) = (request.method().clone(), request.uri().to_string());
            let path = uri.split('?').next().unwrap_or_default().to_owned();
            let body = request.into_body().collect_bytes().await.unwrap();
            asked.push(format!("{method} {path}"));
            let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/managedroosts.roost.birb.party";
            let web = "/apis/roost.birb.party/v1beta1/namespaces/team-a/managedroosts/web";
            let api = "/apis/roost.birb.party/v1beta1/namespaces/team-b/managedroosts/api";
            let (status, reply) = match (method.as_str(), path.as_str()) {
                ("GET", p) if p == crd => (
                    200,
                    serde_json::to_value(crate::api::crd::managed_roost_crd()).unwrap(),
                ),
                ("GET", "/apis/roost.birb.party/v1beta1/managedroosts") => {
                    let first = !uri.contains("continue=");
                    let (item, next) = if first {
                        (("team-a", "web"), "page-2")
                    } else {
                        (("team-b", "api"), "")
                    };
                    (
                        200,
                        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                                 "metadata": {"continue": next},
                                 "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                            "metadata": {"namespace": item.0, "name": item.1}}]}),
                    )
                }
                ("GET", p) if p == web => (
                    200,
                    roost("team-a", "web", json!({"deprecatedPassword": "hunter2"})),
                ),
                ("GET", p) if p == api => (
                    200,
                    roost("team-b", "api", json!({"secretRef": {"name": "s"}})),
                ),
                ("PUT", p) if p == web && !conflicted => {
                    conflicted = true;
                    (
                        409,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
                    )
                }
                ("PUT", p) if p == web || p == api => {
                    let sent: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(
                        sent["metadata"]["resourceVersion"], "7",
                        "written with its resourceVersion"
                    );
                    (200, sent)
                }
                ("PATCH", p) if p == format!("{crd}/status") => {
                    let sent: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(sent, json!({"status": {"storedVersions": ["v1beta1"]}}));
                    (
                        200,
                        serde_json::to_value(crate::api::crd::managed_roost_crd()).unwrap(),
                    )
                }
                _ => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}),
                ),
            };
            respond.send_response(
                http::Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
        asked
    }

    async fn run(options: MigrateOptions) -> (MigrationSummary, Vec<String>, String) {
        let (service, handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let server = tokio::spawn(apiserver(handle));
        let options = MigrateOptions {
            page_size: 1,
            ..options
        };
        // Spawned, as a caller may: the run is Send.
        let client = Client::new(service, "default");
        let (summary, progress) = tokio::spawn(async move {
            let mut progress = Vec::new();
            let summary = migrate(client, &options, &mut progress).await.unwrap();
            (summary, progress)
        })
        .await
        .unwrap();
        (
            summary,
            server.await.unwrap(),
            String::from_utf8(progress).unwrap(),
        )
    }

    #[tokio::test]
    async fn every_roost_is_written_back_then_the_crd_forgets_v1alpha1() {
        let (summary, asked, progress) = run(MigrateOptions::default()).await;
        assert_eq!(
            summary,
            MigrationSummary {
                total: 2,
                migrated: 2,
                inline_credentials: vec!["team-a/web".into()],
                stored_versions_updated: true,
                ..MigrationSummary::default()
            }
        );
        let web = "/apis/roost.birb.party/v1beta1/namespaces/team-a/managedroosts/web";
        let api = "/apis/roost.birb.party/v1beta1/namespaces/team-b/managedroosts/api";
        let list = "/apis/roost.birb.party/v1beta1/managedroosts";
        let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/managedroosts.roost.birb.party";
        assert_eq!(
            asked,
            [
                format!("GET {crd}"),
                format!("GET {list}"),
                format!("GET {list}"),
                format!("GET {web}"),
                format!("PUT {web}"),
                format!("GET {web}"),
                format!("PUT {web}"),
                format!("GET {api}"),
                format!("PUT {api}"),
                format!("PATCH {crd}/status"),
            ]
        );
        assert_eq!(
            progress,
            "[1/2] team-a/web: rewritten\n[2/2] team-b/api: rewritten\n"
        );
        assert!(!summary.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_writes_nothing() {
        let (summary, asked, progress) = run(MigrateOptions {
            dry_run: true,
            ..MigrateOptions::default()
        })
        .await;
        assert_eq!(summary.total, 2);
        assert_eq!(summary.migrated, 0);
        assert_eq!(summary.inline_credentials, ["team-a/web"]);
        assert!(!summary.stored_versions_updated);
        assert!(asked.iter().all(|a| a.starts_with("GET ")), "{asked:?}");
        assert!(progress.contains("team-b/api: would rewrite"), "{progress}");
    }

    #[test]
    fn the_storage_resource_is_the_crds_storage_version() {
        let resource = storage_resource();
        assert_eq!(resource.api_version, "roost.birb.party/v1beta1");
        let crd = crate::api::crd::managed_roost_crd();
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        assert_eq!(stored_version(&crd), Some(resource.version.as_str()));
        assert_eq!(crd.spec.names.plural, resource.plural);
    }
}
