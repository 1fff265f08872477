//! Validation cache: identical specs share one verdict.
//!
//! The key is a 128-bit hash of the (defaulted) spec, the rule-set version
//! and, on UPDATE, the old spec. Never the name or generation: generation is
//! not set at admission time, and identical specs must share a result.

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
    /// The key of `spec` (and `old` on UPDATE) judged by the rules `rules`
    /// identifies ([`crate::validation::Registry::fingerprint`]).
    pub fn new(rules: u64, spec: Option<&Value>, old: Option<&Value>) -> Self {
        let mut bytes = Vec::with_capacity(1024);
        bytes.extend_from_slice(&rules.to_le_bytes());
        write_json(&mut bytes, spec);
        // A marker separates CREATE from UPDATE, so `old` can never collide with the spec bytes.
        match old {
            None => bytes.push(0),
            Some(old) => {
                bytes.push(1);
                write_json(&mut bytes, Some(old));
            }
        }
        CacheKey(xxhash_rust::xxh3::xxh3_128(&bytes))
    }
}

impl CacheKey {
    /// The key of a verdict that policies took part in: their fingerprint and
    /// the whole object (and old object), since rules may read any of it.
    pub fn with_policies(rules: u64, object: &Value, old: Option<&Value>, policies: u64) -> Self {
        let mut bytes = Vec::with_capacity(2048);
        bytes.extend_from_slice(&rules.to_le_bytes());
        bytes.push(2);
        bytes.extend_from_slice(&policies.to_le_bytes());
        write_json(&mut bytes, Some(object));
        write_json(&mut bytes, old);
        CacheKey(xxhash_rust::xxh3::xxh3_128(&bytes))
    }
}

fn write_json(bytes: &mut Vec<u8>, value: Option<&Value>) {
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *bytes, &value.unwrap_or(&Value::Null));
    bytes.push(0xff);
}

/// A bounded, expiring map from spec to verdict, with hit and miss counters.
pub struct ValidationCache {
    entries: Cache<CacheKey, Arc<ValidationResult>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for ValidationCache {
    fn default() -> Self {
        Self::new(VALIDATION_CACHE_BYTES, VALIDATION_TTL)
    }
}

/// Bytes a cached verdict holds in memory, so that verdicts with many long
/// findings count for what they take. A clean verdict measured 430–490 B
/// resident in moka (BENCHMARKS.md, "Heap per cached verdict"); each finding
/// adds its slot, its three strings and their allocator headers.
pub fn weight(result: &ValidationResult) -> u32 {
    const ENTRY: usize = 480;
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
    u32::try_from(ENTRY + findings).unwrap_or(u32::MAX)
}

impl ValidationCache {
    /// A cache holding verdicts of at most `budget_bytes` in all, each for `ttl`.
    pub fn new(budget_bytes: u64, ttl: Duration) -> Self {
        ValidationCache {
            entries: Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_key, result: &Arc<ValidationResult>| weight(result))
                .time_to_live(ttl)
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached verdict for `key` (and `true`), or the one `validate`
    /// computes, then cached (and `false`).
    pub fn get_or_validate(
        &self,
        key: CacheKey,
        validate: impl FnOnce() -> ValidationResult,
    ) -> (Arc<ValidationResult>, bool) {
        if let Some(hit) = self.entries.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return (hit, true);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let result = Arc::new(validate());
        self.entries.insert(key, Arc::clone(&result));
        (result, false)
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

    /// Bytes the held verdicts weigh.
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
            cache.get_or_validate(CacheKey::new(RULES, Some(&spec), None), || {
                calls += 1;
                ValidationResult::default()
            });
        }
        assert_eq!(
            (calls, cache.hits(), cache.misses(), cache.len()),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn key_depends_on_spec_and_old_spec_only() {
        let a = json!({"chart": {"name": "a"}});
        let b = json!({"chart": {"name": "b"}});
        assert_eq!(
            CacheKey::new(RULES, Some(&a), None),
            CacheKey::new(RULES, Some(&a.clone()), None)
        );
        assert_ne!(
            CacheKey::new(RULES, Some(&a), None),
            CacheKey::new(RULES, Some(&b), None)
        );
        assert_ne!(
            CacheKey::new(RULES, Some(&a), None),
            CacheKey::new(RULES, Some(&a), Some(&a))
        );
        assert_ne!(
            CacheKey::new(RULES, Some(&a), Some(&a)),
            CacheKey::new(RULES, Some(&a), Some(&b))
        );
    }

    #[test]
    fn the_budget_bounds_bytes_not_entries() {
        let big = || {
            let mut findings = crate::validation::Findings::default();
            for i in 0..100 {
                findings.error("X", format!("spec.f[{i}]"), "m".repeat(200));
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
            cache.get_or_validate(CacheKey::new(RULES, Some(&spec), None), big);
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
            small.get_or_validate(
                CacheKey::new(RULES, Some(&spec), None),
                ValidationResult::default,
            );
        }
        assert_eq!(small.len(), 100, "small verdicts all fit");
    }

    #[test]
    fn entries_expire() {
        let cache = ValidationCache::new(1 << 20, Duration::from_millis(50));
        let key = CacheKey::new(RULES, None, None);
        cache.get_or_validate(key, ValidationResult::default);
        std::thread::sleep(Duration::from_millis(120));
        cache.get_or_validate(key, ValidationResult::default);
        assert_eq!((cache.hits(), cache.misses()), (0, 2));
    }
}
