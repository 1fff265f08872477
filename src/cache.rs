//! Verdict caches: identical specs share one verdict (and one patch).
//!
//! The key is a 128-bit hash of the spec, the rule-set version, the silence
//! annotation and, on UPDATE, the old spec (with policies in force: their
//! fingerprint and the whole objects). Never the name or generation: generation is not set at
//! admission time, and identical specs must share a result. The quick path
//! hashes the request's own bytes ([`CacheKey::of_bytes`]); a request only
//! the full decoder reads is keyed by its decoded values ([`CacheKey::new`]).

use crate::api::version::ApiVersion;
use crate::validation::ValidationResult;
use moka::sync::Cache;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a verdict is reused.
pub const VALIDATION_TTL: Duration = Duration::from_secs(5 * 60);
/// Memory the cached verdicts may take, in bytes (each weighed by its size):
/// about 35,000 clean verdicts.
pub const VALIDATION_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Cache key: what the verdict depends on, hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(u128);

impl CacheKey {
    /// The key of `spec` (and `old` on UPDATE) with the silence annotation
    /// `silence`, judged by the rules `rules` identifies
    /// ([`crate::validation::Registry::fingerprint`]), for an object written
    /// in `version` (the findings name its fields).
    pub fn new(
        rules: u64,
        version: ApiVersion,
        spec: Option<&Value>,
        old: Option<&Value>,
        silence: Option<&str>,
    ) -> Self {
        let mut bytes = Vec::with_capacity(1024);
        bytes.extend_from_slice(&rules.to_le_bytes());
        bytes.push(version as u8);
        write_json(&mut bytes, spec);
        // A marker separates CREATE from UPDATE, so `old` can never collide with the spec bytes.
        match old {
            None => bytes.push(0),
            Some(old) => {
                bytes.push(1);
                write_json(&mut bytes, Some(old));
            }
        }
        // JSON text never holds a raw 0xff byte: the silence cannot pass for JSON.
        if let Some(silence) = silence {
            bytes.push(0xff);
            bytes.extend_from_slice(silence.as_bytes());
        }
        CacheKey(xxhash_rust::xxh3::xxh3_128(&bytes))
    }
}

impl CacheKey {
    /// The key of a verdict that policies took part in: their fingerprint and
    /// the whole object (and old object), since rules may read any of it,
    /// written in `version` (which its `apiVersion` may not say).
    pub fn with_policies(
        rules: u64,
        version: ApiVersion,
        object: &Value,
        old: Option<&Value>,
        policies: u64,
    ) -> Self {
        let mut bytes = Vec::with_capacity(2048);
        bytes.extend_from_slice(&rules.to_le_bytes());
        bytes.push(2);
        bytes.push(version as u8);
        bytes.extend_from_slice(&policies.to_le_bytes());
        write_json(&mut bytes, Some(object));
        write_json(&mut bytes, old);
        CacheKey(xxhash_rust::xxh3::xxh3_128(&bytes))
    }
}

/// What a key made of request bytes is for: the same bytes judged by a
/// different question must not share an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyPurpose {
    /// Parts: the spec (CREATE).
    Validate = 0x10,
    /// Parts: the spec, the old spec.
    ValidateUpdate,
    /// Parts: the object, the old object (UPDATE).
    ValidateWithPolicies,
    /// Parts: the spec, the labels; the object has metadata.
    Defaults,
    /// Parts: the spec; the object has no metadata.
    DefaultsWithoutMetadata,
    /// Parts: the object.
    DefaultsWithPolicies,
}

impl CacheKey {
    /// The key of raw JSON `parts` (`None`: absent) for `purpose`, judged by
    /// the rules `rules` and the policies `policies` identify. Nothing is copied.
    pub fn of_bytes(
        purpose: KeyPurpose,
        rules: u64,
        policies: u64,
        parts: &[Option<&str>],
    ) -> Self {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&[purpose as u8]);
        hasher.update(&rules.to_le_bytes());
        hasher.update(&policies.to_le_bytes());
        for part in parts {
            match part {
                None => hasher.update(&[0]),
                Some(text) => {
                    // The length keeps one part's end from passing for the next part's start.
                    hasher.update(&[1]);
                    hasher.update(&(text.len() as u64).to_le_bytes());
                    hasher.update(text.as_bytes());
                }
            }
        }
        CacheKey(hasher.digest128())
    }
}

fn write_json(bytes: &mut Vec<u8>, value: Option<&Value>) {
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *bytes, &value.unwrap_or(&Value::Null));
    bytes.push(0xff);
}

/// A bounded, expiring map from key to answer, with hit and miss counters.
pub struct VerdictCache<V> {
    entries: Cache<CacheKey, V>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Verdicts of the validating webhook.
pub type ValidationCache = VerdictCache<Arc<ValidationResult>>;

/// What the mutating webhook answers for one object: the JSON Patch (text)
/// of its defaults, when there are any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defaults {
    pub patch: Option<Arc<str>>,
    pub operations: usize,
}

/// Answers of the mutating webhook.
pub type DefaultsCache = VerdictCache<Defaults>;

/// Memory the cached patches may take, in bytes.
pub const DEFAULTS_CACHE_BYTES: u64 = 4 * 1024 * 1024;

impl Default for ValidationCache {
    fn default() -> Self {
        Self::new(VALIDATION_CACHE_BYTES, VALIDATION_TTL)
    }
}

/// Bytes an entry without findings or patch holds resident in moka.
const ENTRY_BYTES: usize = 480;

/// Bytes a cached verdict holds in memory, so that verdicts with many long
/// findings count for what they take. A clean verdict measured 430–490 B
/// resident in moka (BENCHMARKS.md, "Heap per cached verdict"); each finding
/// adds its slot, its three strings and their allocator headers.
pub fn weight(result: &ValidationResult) -> u32 {
    const ALLOCATOR_HEADERS: usize = 3 * 16;
    let findings: usize = result
        .all()
        .map(|f| {
            std::mem::size_of_val(f)
                + ALLOCATOR_HEADERS
                + f.code.len()
                + f.field.len()
                + f.message.len()
        })
        .sum();
    u32::try_from(ENTRY_BYTES + findings).unwrap_or(u32::MAX)
}

/// Bytes a cached patch holds: an entry as a clean verdict's, plus its text.
pub fn defaults_weight(defaults: &Defaults) -> u32 {
    let text = defaults.patch.as_ref().map_or(0, |p| p.len() + 16);
    u32::try_from(ENTRY_BYTES + text).unwrap_or(u32::MAX)
}

impl ValidationCache {
    /// A cache holding verdicts of at most `budget_bytes` in all, each for `ttl`.
    pub fn new(budget_bytes: u64, ttl: Duration) -> Self {
        VerdictCache::weighed(budget_bytes, ttl, |result: &Arc<ValidationResult>| {
            weight(result)
        })
    }

    /// The cached verdict for `key` (and `true`), or the one `validate`
    /// computes, then cached (and `false`).
    pub fn get_or_validate(
        &self,
        key: CacheKey,
        validate: impl FnOnce() -> ValidationResult,
    ) -> (Arc<ValidationResult>, bool) {
        match self.hit(key) {
            Some(hit) => (hit, true),
            None => (self.insert_missed(key, Arc::new(validate())), false),
        }
    }
}

impl DefaultsCache {
    /// A cache holding patches of at most `budget_bytes` in all, each for `ttl`.
    pub fn new(budget_bytes: u64, ttl: Duration) -> Self {
        VerdictCache::weighed(budget_bytes, ttl, defaults_weight)
    }
}

impl<V: Clone + Send + Sync + 'static> VerdictCache<V> {
    fn weighed(budget_bytes: u64, ttl: Duration, weigh: fn(&V) -> u32) -> Self {
        VerdictCache {
            entries: Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(move |_key, value: &V| weigh(value))
                .time_to_live(ttl)
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached answer for `key` (and `true`), or the one `compute` gives,
    /// then cached (and `false`). When `compute` gives nothing, nothing is
    /// cached or counted.
    pub fn get_or_compute(
        &self,
        key: CacheKey,
        compute: impl FnOnce() -> Option<V>,
    ) -> Option<(V, bool)> {
        match self.hit(key) {
            Some(hit) => Some((hit, true)),
            None => Some((self.insert_missed(key, compute()?), false)),
        }
    }

    /// The answer held for `key`, counted as a hit.
    fn hit(&self, key: CacheKey) -> Option<V> {
        let hit = self.entries.get(&key)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Holds `value`, computed after a miss (counted), and gives it back.
    fn insert_missed(&self, key: CacheKey, value: V) -> V {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.entries.insert(key, value.clone());
        value
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Entries currently held (approximate until pending maintenance runs).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Bytes the held answers weigh.
    pub fn weighed_bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Any rule-set fingerprint: these tests are about the spec part of the key.
    const RULES: u64 = 1;
    use serde_json::json;

    #[test]
    fn identical_specs_share_a_verdict() {
        let cache = ValidationCache::default();
        let spec = json!({"chart": {"name": "a"}});
        let mut calls = 0;
        for _ in 0..3 {
            cache.get_or_compute(
                CacheKey::new(RULES, ApiVersion::V1alpha1, Some(&spec), None, None),
                || {
                    calls += 1;
                    Some(Arc::new(ValidationResult::default()))
                },
            );
        }
        assert_eq!(
            (calls, cache.hits(), cache.misses(), cache.len()),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn key_depends_on_version_spec_old_spec_and_silence_only() {
        let a = json!({"chart": {"name": "a"}});
        let b = json!({"chart": {"name": "b"}});
        fn key(spec: &Value, old: Option<&Value>, silence: Option<&str>) -> CacheKey {
            CacheKey::new(RULES, ApiVersion::V1alpha1, Some(spec), old, silence)
        }
        assert_eq!(key(&a, None, None), key(&a.clone(), None, None));
        assert_ne!(key(&a, None, None), key(&b, None, None));
        assert_ne!(key(&a, None, None), key(&a, Some(&a), None));
        assert_ne!(key(&a, Some(&a), None), key(&a, Some(&b), None));
        assert_ne!(
            key(&a, None, None),
            key(&a, None, Some("CHART_VERSION_UNPINNED"))
        );
        assert_ne!(key(&a, Some(&a), Some("X")), key(&a, Some(&a), Some("Y")));
        // The same spec in another version names its fields otherwise.
        assert_ne!(
            key(&a, None, None),
            CacheKey::new(RULES, ApiVersion::V1beta1, Some(&a), None, None)
        );
        let whole = |version| CacheKey::with_policies(RULES, version, &a, None, 1);
        assert_ne!(whole(ApiVersion::V1alpha1), whole(ApiVersion::V1beta1));
    }

    #[test]
    fn the_budget_bounds_bytes_not_entries() {
        let big = || {
            let mut findings = crate::validation::Findings::default();
            for i in 0..100 {
                let code = crate::validation::codes::CHART_NAME_INVALID;
                findings.report(code, format!("spec.f[{i}]"), "m".repeat(200));
            }
            ValidationResult::from_findings(findings.into_vec())
        };
        let one = u64::from(weight(&big()));
        assert!(
            one > 20_000,
            "a verdict with 100 findings weighs {one} bytes"
        );
        let cache = ValidationCache::new(10 * one, VALIDATION_TTL);
        for i in 0..100 {
            let spec = json!({"n": i});
            cache.get_or_compute(
                CacheKey::new(RULES, ApiVersion::V1alpha1, Some(&spec), None, None),
                || Some(Arc::new(big())),
            );
        }
        assert!(
            cache.weighed_bytes() <= 10 * one && cache.len() <= 10,
            "{} bytes in {} entries",
            cache.weighed_bytes(),
            cache.len()
        );
        let small = ValidationCache::new(10 * one, VALIDATION_TTL);
        for i in 0..100 {
            let spec = json!({"n": i});
            small.get_or_compute(
                CacheKey::new(RULES, ApiVersion::V1alpha1, Some(&spec), None, None),
                || Some(Arc::default()),
            );
        }
        assert_eq!(small.len(), 100, "small verdicts all fit");
    }

    #[test]
    fn entries_expire() {
        let cache = ValidationCache::new(1 << 20, Duration::from_millis(50));
        let key = CacheKey::new(RULES, ApiVersion::V1alpha1, None, None, None);
        cache.get_or_compute(key, || Some(Arc::default()));
        std::thread::sleep(Duration::from_millis(120));
        cache.get_or_compute(key, || Some(Arc::default()));
        assert_eq!((cache.hits(), cache.misses()), (0, 2));
    }
}
