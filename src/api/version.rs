//! The served versions of ManagedRoost and how a field is named in each.
//!
//! The rules, defaults and CEL policies work on one model, the v1alpha1
//! shape (the hub: its lenient types hold every value either version can
//! carry). A finding's field is named in that shape and renamed here into the
//! version the user wrote.

use std::borrow::Cow;

/// A served version of ManagedRoost (a flag's value by its name, `v1beta1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum ApiVersion {
    /// The first version: deprecated, still served, converted to and from.
    V1alpha1,
    /// The storage version.
    V1beta1,
}

/// Where the only fields v1beta1 renamed live.
pub const RENAMED_IN: &str = "spec.chart.repository.auth";
/// The inline credentials v1beta1 keeps under deprecated names, below
/// [`RENAMED_IN`]: (v1alpha1 key, v1beta1 key). Conversion, the v1beta1
/// schema, finding paths and `migrate` all read this one table.
pub const RENAMED_CREDENTIALS: [(&str, &str); 2] = [
    ("password", "deprecatedPassword"),
    ("token", "deprecatedToken"),
];

impl ApiVersion {
    /// Every served version, oldest first.
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V1alpha1, ApiVersion::V1beta1];
    /// The version the apiserver stores.
    pub const STORAGE: ApiVersion = ApiVersion::V1beta1;

    /// The version's name (`v1beta1`).
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V1alpha1 => "v1alpha1",
            ApiVersion::V1beta1 => "v1beta1",
        }
    }

    /// `apiVersion` as written in manifests (`roost.birb.party/v1beta1`).
    pub fn api_version(self) -> &'static str {
        match self {
            ApiVersion::V1alpha1 => "roost.birb.party/v1alpha1",
            ApiVersion::V1beta1 => "roost.birb.party/v1beta1",
        }
    }

    /// The version an `apiVersion` names, when it is one of ours.
    pub fn from_api_version(api_version: &str) -> Option<ApiVersion> {
        Self::ALL
            .into_iter()
            .find(|v| v.api_version() == api_version)
    }

    /// The version a bare name (`v1beta1`) names.
    pub fn from_name(name: &str) -> Option<ApiVersion> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Every served `apiVersion`, for messages (`a, b`).
    pub fn served_list() -> String {
        Self::ALL.map(ApiVersion::api_version).join(", ")
    }

    /// `field` (a path in the hub's shape, `spec.chart.repository.auth.password`)
    /// as this version names it.
    pub fn field_from_hub(self, field: &str) -> Cow<'_, str> {
        match self {
            ApiVersion::V1alpha1 => Cow::Borrowed(field),
            ApiVersion::V1beta1 => rename(field, |(hub, beta)| (hub, beta)),
        }
    }

    /// `field` as this version names it, in the hub's shape.
    pub fn field_to_hub(self, field: &str) -> Cow<'_, str> {
        match self {
            ApiVersion::V1alpha1 => Cow::Borrowed(field),
            ApiVersion::V1beta1 => rename(field, |(hub, beta)| (beta, hub)),
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `field` with a renamed key below [`RENAMED_IN`] replaced.
fn rename<'a>(
    field: &'a str,
    direction: fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Cow<'a, str> {
    let Some(below) = field
        .strip_prefix(RENAMED_IN)
        .and_then(|rest| rest.strip_prefix('.'))
    else {
        return Cow::Borrowed(field);
    };
    for (from, to) in RENAMED_CREDENTIALS.into_iter().map(direction) {
        if let Some(rest) = below.strip_prefix(from)
            && (rest.is_empty() || rest.starts_with(['.', '[']))
        {
            return Cow::Owned(format!("{RENAMED_IN}.{to}{rest}"));
        }
    }
    Cow::Borrowed(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_themselves_and_are_found_by_name() {
        for version in ApiVersion::ALL {
            assert_eq!(
                ApiVersion::from_api_version(version.api_version()),
                Some(version)
            );
            assert_eq!(ApiVersion::from_name(version.name()), Some(version));
        }
        assert_eq!(ApiVersion::from_api_version("roost.birb.party/v1"), None);
        assert_eq!(ApiVersion::from_api_version("v1beta1"), None);
        assert_eq!(ApiVersion::STORAGE, ApiVersion::V1beta1);
    }

    #[test]
    fn renamed_fields_are_named_in_the_version_written() {
        let hub = "spec.chart.repository.auth.password";
        let beta = "spec.chart.repository.auth.deprecatedPassword";
        assert_eq!(ApiVersion::V1beta1.field_from_hub(hub), beta);
        assert_eq!(ApiVersion::V1beta1.field_to_hub(beta), hub);
        assert_eq!(ApiVersion::V1alpha1.field_from_hub(hub), hub);
        // A field that only starts like a renamed one is left alone.
        let other = "spec.chart.repository.auth.passwordHint";
        assert_eq!(ApiVersion::V1beta1.field_from_hub(other), other);
        let unchanged = "spec.healthChecks[0].http.url";
        assert_eq!(ApiVersion::V1beta1.field_from_hub(unchanged), unchanged);
    }
}
