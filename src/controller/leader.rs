//! Leader election over a `coordination.k8s.io/v1` Lease, the way client-go's
//! `leaderelection` package does it: replicas race to write themselves into
//! `spec.holderIdentity` with optimistic concurrency (`resourceVersion`); the
//! holder renews every `retry_period`; the others take over a lease they have
//! seen unchanged for its duration, measured on their own clock (never the
//! holder's). A leader that cannot renew for `renew_deadline` steps down
//! before anyone else may take over (`renew_deadline < lease_duration`).
//!
//! The decision and the records written are pure functions ([`decide`],
//! [`next_spec`], [`released_spec`]); [`run`] is the I/O loop around them.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// client-go's default `LeaseDuration`.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's default `RenewDeadline`.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's default `RetryPeriod`.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// Acquire attempts wait `retry_period` plus up to this fraction of it, so
/// replicas started together do not hit the apiserver in lockstep.
pub const JITTER: f64 = 0.2;

/// Leader election settings (client-go defaults).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, e.g. `roost-keeper-controller`.
    pub name: String,
    /// This replica (the pod name); must be unique among the replicas.
    pub identity: String,
    /// How long a lease that is not renewed stays with its holder (written to
    /// `leaseDurationSeconds`, rounded up to whole seconds).
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long steps down.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Settings with client-go's defaults: 15s lease, 10s renew deadline, 2s retry.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaseConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// client-go's checks: names set, `lease_duration > renew_deadline >
    /// retry_period * (1 + JITTER)`, and nothing zero.
    pub fn validate(&self) -> Result<(), InvalidLeaseConfig> {
        let invalid = |message: &str| Err(InvalidLeaseConfig(message.to_owned()));
        if self.namespace.is_empty() || self.name.is_empty() {
            return invalid("the lease namespace and name must not be empty");
        }
        if self.identity.is_empty() {
            return invalid("the identity must not be empty");
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be greater than zero");
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid("the lease duration must be greater than the renew deadline");
        }
        if self.renew_deadline <= self.retry_period.mul_f64(1.0 + JITTER) {
            return invalid("the renew deadline must be greater than the retry period plus jitter");
        }
        Ok(())
    }
}

/// Settings [`run`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("leader election: {0}")]
pub struct InvalidLeaseConfig(String);

impl From<InvalidLeaseConfig> for crate::Error {
    fn from(err: InvalidLeaseConfig) -> Self {
        crate::Error::Config(err.to_string())
    }
}

/// Resolves when the leader-only work must stop: leadership was lost, or
/// shutdown began. Cheap to clone; `Send + Sync + Unpin + 'static`, so it can
/// be handed to [`crate::controller::run`] as its shutdown signal.
#[derive(Clone)]
pub struct Stop(Shared<BoxFuture<'static, ()>>);

impl Stop {
    /// A stop signal and the sender that fires it (when sent or dropped).
    fn pair() -> (oneshot::Sender<()>, Stop) {
        let (tx, rx) = oneshot::channel::<()>();
        let stop = async move {
            // A dropped sender stops the work too.
            let _ = rx.await;
        };
        (tx, Stop(stop.boxed().shared()))
    }
}

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("stopped", &self.0.peek().is_some())
            .finish()
    }
}

/// Runs `lead` while this replica holds the lease, until `shutdown` resolves.
///
/// `lead(stop)` is called each time leadership is gained and its future is
/// spawned; it must finish soon after `stop` resolves (leadership lost or
/// shutdown begun). After a loss it gets `lease_duration - renew_deadline`
/// to finish; on shutdown it gets `lease_duration` while the lease is still
/// renewed; then it is aborted. On shutdown while leading, the lease is
/// released (holder cleared, `leaseDurationSeconds: 1`) once the work has
/// finished, so another replica takes over at once. If the work ends on its
/// own (or panics) while leading, the lease is released too and this replica
/// competes again after `retry_period`.
///
/// `leading` mirrors whether this replica leads: true only after a successful
/// write that made it the holder, false once the work has stopped.
///
/// API errors are logged and retried every `retry_period`; the only error
/// returned is an invalid `config`, before any request.
pub async fn run<F, Fut>(
    client: Client,
    config: LeaseConfig,
    leading: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut lead: F,
) -> Result<(), InvalidLeaseConfig>
where
    F: FnMut(Stop) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    config.validate()?;
    let mut elector = Elector::new(client, config);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut pause_first = false;
    loop {
        let acquired = async {
            if pause_first {
                tokio::time::sleep(jittered(elector.config.retry_period)).await;
            }
            elector.acquire().await;
        };
        tokio::select! {
            biased;
            () = &mut shutdown => {
                leading.store(false, Ordering::SeqCst);
                return Ok(());
            }
            () = acquired => {}
        }
        leading.store(true, Ordering::SeqCst);
        tracing::info!(
            identity = %elector.config.identity,
            lease = %elector.config.name,
            namespace = %elector.config.namespace,
            "became leader"
        );
        let (stop_tx, stop) = Stop::pair();
        let mut task = tokio::spawn(lead(stop));
        let end = tokio::select! {
            biased;
            () = &mut shutdown => End::Shutdown,
            lost = elector.keep_renewing() => End::Lost(lost),
            result = &mut task => End::Finished(result),
        };
        // Dropping the sender tells the work to stop.
        drop(stop_tx);
        match elector.end_term(end, task, &leading).await {
            Next::Return => return Ok(()),
            Next::Compete { pause_first: pause } => pause_first = pause,
        }
    }
}

/// What the leader loop does once a term has ended.
enum Next {
    Return,
    /// Compete for the lease again, after `retry_period` if `pause_first`.
    Compete {
        pause_first: bool,
    },
}

impl Elector {
    /// Ends a term whose work has been told to stop: waits for the work
    /// (within the grace the cause allows), then, unless the lease was lost,
    /// releases it.
    async fn end_term(&mut self, end: End, mut task: JoinHandle<()>, leading: &AtomicBool) -> Next {
        match end {
            End::Shutdown => {
                self.log_step("shutting down: stopping the leader work");
                let holding = self.drain(&mut task).await;
                leading.store(false, Ordering::SeqCst);
                if holding {
                    self.release().await;
                }
                Next::Return
            }
            End::Lost(lost) => {
                tracing::info!(
                    identity = %self.config.identity,
                    lease = %self.config.name,
                    namespace = %self.config.namespace,
                    reason = %lost,
                    "stepping down"
                );
                let grace = self
                    .config
                    .lease_duration
                    .saturating_sub(self.config.renew_deadline);
                finish(task, grace).await;
                leading.store(false, Ordering::SeqCst);
                Next::Compete { pause_first: false }
            }
            End::Finished(result) => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "the leader work failed");
                } else {
                    tracing::warn!("the leader work ended while leading");
                }
                leading.store(false, Ordering::SeqCst);
                self.release().await;
                Next::Compete { pause_first: true }
            }
        }
    }
}

enum End {
    Shutdown,
    Lost(Lost),
    Finished(Result<(), tokio::task::JoinError>),
}

/// Why a leader stepped down.
#[derive(Debug, PartialEq)]
enum Lost {
    /// No renewal succeeded for `renew_deadline`.
    Deadline,
    /// Another replica holds the lease.
    Taken(String),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Deadline => f.write_str("could not renew the lease within the renew deadline"),
            Lost::Taken(holder) => write!(f, "the lease is held by {holder}"),
        }
    }
}

/// Awaits the stopped work for at most `grace`, then aborts it.
async fn finish(task: JoinHandle<()>, grace: Duration) {
    let abort = task.abort_handle();
    match tokio::time::timeout(grace, task).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "the leader work failed"),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis(),
                "the leader work did not stop in time; aborting it"
            );
            abort.abort();
        }
    }
}

/// The last lease record seen, and the local time it last changed.
#[derive(Clone, Debug)]
struct Observation {
    spec: LeaseSpec,
    resource_version: Option<String>,
    since: Instant,
}

/// What to do with the lease as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// There is no lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or its holder let it expire: take it.
    Acquire,
    /// Another replica holds it: keep observing.
    Wait,
}

/// The holder, `None` when unset or empty (released).
fn holder_of(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// Records `lease` as observed at `now`, keeping the time of the previous
/// observation when nothing changed (spec and resourceVersion).
fn observe(
    previous: Option<Observation>,
    lease: Option<&Lease>,
    now: Instant,
) -> Option<Observation> {
    let lease = lease?;
    let spec = lease.spec.clone().unwrap_or_default();
    let resource_version = lease.metadata.resource_version.clone();
    match previous {
        Some(previous)
            if previous.spec == spec && previous.resource_version == resource_version =>
        {
            Some(previous)
        }
        _ => Some(Observation {
            spec,
            resource_version,
            since: now,
        }),
    }
}

/// How long the observed record stays with its holder: its own
/// `leaseDurationSeconds` (as client-go), else `default`.
fn record_duration(spec: &LeaseSpec, default: Duration) -> Duration {
    spec.lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .map_or(default, Duration::from_secs)
}

/// client-go's rule. The lease is expired when the record has not changed for
/// its duration on *our* clock since we saw it change.
fn decide(
    observed: Option<&Observation>,
    me: &str,
    now: Instant,
    lease_duration: Duration,
) -> Decision {
    let Some(observed) = observed else {
        return Decision::Create;
    };
    match holder_of(&observed.spec) {
        Some(holder) if holder == me => Decision::Renew,
        None => Decision::Acquire,
        Some(_) => {
            let unchanged = now.saturating_duration_since(observed.since);
            if unchanged >= record_duration(&observed.spec, lease_duration) {
                Decision::Acquire
            } else {
                Decision::Wait
            }
        }
    }
}

/// `leaseDurationSeconds` for `duration`: whole seconds rounded up, at least 1.
fn duration_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

/// The record to write to create, take or renew the lease as `me` at `now`.
/// Taking it from another (or from nobody) sets `acquireTime` and counts a
/// transition; renewing keeps both. Other fields are kept.
fn next_spec(
    previous: Option<&LeaseSpec>,
    me: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let mut spec = previous.cloned().unwrap_or_default();
    let ours = previous.and_then(holder_of) == Some(me);
    if !ours {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(match previous {
            None => 0,
            Some(previous) => previous.lease_transitions.unwrap_or(0).saturating_add(1),
        });
    } else if spec.acquire_time.is_none() {
        spec.acquire_time = Some(MicroTime(now));
    }
    spec.holder_identity = Some(me.to_owned());
    spec.lease_duration_seconds = Some(duration_seconds(lease_duration));
    spec.renew_time = Some(MicroTime(now));
    spec
}

/// The record that gives the lease up (client-go's release): no holder,
/// one-second duration, transitions kept.
fn released_spec(previous: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        ..previous.clone()
    }
}

/// `period` plus up to `JITTER` of it, from std's randomly keyed hasher (no
/// extra dependency).
fn jittered(period: Duration) -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    // 53 random bits as a fraction in [0, 1).
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    period + period.mul_f64(JITTER * fraction)
}

/// The outcome of one acquire-or-renew attempt.
#[derive(Debug, PartialEq)]
enum Attempt {
    /// We wrote ourselves as the holder.
    Holding,
    /// Another replica holds an unexpired lease (acquiring).
    Wait(Option<String>),
    /// Another replica holds the lease (leading): step down.
    Taken(String),
    /// Someone else wrote first (409 Conflict / AlreadyExists).
    LostRace,
}

struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observation>,
    /// The lease last read or written (its resourceVersion conditions the release).
    lease: Option<Lease>,
    /// When the last write that made or kept us the holder was sent.
    renewed_at: Option<Instant>,
}

impl Elector {
    fn new(client: Client, config: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            lease: None,
            renewed_at: None,
        }
    }

    fn log_step(&self, message: &'static str) {
        tracing::info!(
            identity = %self.config.identity,
            lease = %self.config.name,
            namespace = %self.config.namespace,
            "{message}"
        );
    }

    /// One GET, then the write `decide` calls for. While `leading`, a lease
    /// held by another is reported as `Taken` without writing.
    async fn attempt(&mut self, leading: bool) -> Result<Attempt, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let now = Instant::now();
        self.observed = observe(self.observed.take(), current.as_ref(), now);
        self.lease.clone_from(&current);
        let holder = self
            .observed
            .as_ref()
            .and_then(|o| holder_of(&o.spec))
            .map(str::to_owned);
        if let Some(holder) = holder.as_ref().filter(|h| **h != self.config.identity)
            && leading
        {
            return Ok(Attempt::Taken(holder.clone()));
        }
        let decision = decide(
            self.observed.as_ref(),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        let spec = |previous: Option<&LeaseSpec>| {
            next_spec(
                previous,
                &self.config.identity,
                self.config.lease_duration,
                Timestamp::now(),
            )
        };
        let params = PostParams::default();
        let sent = Instant::now();
        let written = match (decision, current) {
            (Decision::Wait, _) => return Ok(Attempt::Wait(holder)),
            (Decision::Create, _) | (_, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(None)),
                };
                self.api.create(&params, &lease).await
            }
            (Decision::Renew | Decision::Acquire, Some(mut lease)) => {
                // Conditioned on the resourceVersion read above.
                lease.spec = Some(spec(Some(&lease.spec.take().unwrap_or_default())));
                self.api.replace(&self.config.name, &params, &lease).await
            }
        };
        match written {
            Ok(lease) => {
                self.observed = observe(self.observed.take(), Some(&lease), Instant::now());
                self.lease = Some(lease);
                self.renewed_at = Some(sent);
                Ok(Attempt::Holding)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(Attempt::LostRace)
            }
            Err(err) => Err(err),
        }
    }

    /// Tries every `retry_period` (jittered) until we hold the lease.
    async fn acquire(&mut self) {
        loop {
            let timeout = self.config.renew_deadline;
            match tokio::time::timeout(timeout, self.attempt(false)).await {
                Ok(Ok(Attempt::Holding)) => return,
                Ok(Ok(Attempt::Wait(holder))) => {
                    tracing::debug!(lease = %self.config.name, ?holder, "the lease is held by another replica");
                }
                Ok(Ok(Attempt::Taken(holder))) => {
                    tracing::debug!(lease = %self.config.name, %holder, "the lease is held by another replica");
                }
                Ok(Ok(Attempt::LostRace)) => {
                    tracing::debug!(lease = %self.config.name, "another replica wrote the lease first");
                }
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.config.name, error = %err, "cannot acquire the lease; retrying");
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.name, "acquiring the lease timed out; retrying");
                }
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews every `retry_period` until leadership is lost.
    async fn keep_renewing(&mut self) -> Lost {
        loop {
            let Some(renewed_at) = self.renewed_at else {
                return Lost::Deadline;
            };
            let deadline = renewed_at + self.config.renew_deadline;
            tokio::time::sleep(self.config.retry_period).await;
            if Instant::now() >= deadline {
                return Lost::Deadline;
            }
            match tokio::time::timeout_at(deadline, self.attempt(true)).await {
                Err(_) => return Lost::Deadline,
                Ok(Ok(Attempt::Holding)) => {}
                Ok(Ok(Attempt::Taken(holder))) => return Lost::Taken(holder),
                Ok(Ok(attempt)) => {
                    tracing::debug!(lease = %self.config.name, ?attempt, "renewal did not go through; retrying");
                }
                Ok(Err(err)) => {
                    tracing::warn!(lease = %self.config.name, error = %err, "cannot renew the lease; retrying");
                }
            }
        }
    }

    /// After shutdown was signalled: awaits the work (at most `lease_duration`)
    /// while still renewing, so the lease cannot pass to another replica under
    /// running work. Returns whether we still hold the lease.
    async fn drain(&mut self, task: &mut JoinHandle<()>) -> bool {
        let grace = self.config.lease_duration;
        let outcome = tokio::select! {
            result = &mut *task => Ok(result),
            lost = self.keep_renewing() => Err(lost),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_ms = grace.as_millis(), "the leader work did not stop in time; aborting it");
                task.abort();
                return true;
            }
        };
        match outcome {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "the leader work failed");
                true
            }
            Err(lost) => {
                tracing::info!(lease = %self.config.name, reason = %lost, "lost the lease while stopping");
                let grace = self
                    .config
                    .lease_duration
                    .saturating_sub(self.config.renew_deadline);
                let abort = task.abort_handle();
                if tokio::time::timeout(grace, task).await.is_err() {
                    abort.abort();
                }
                false
            }
        }
    }

    /// Gives the lease up if we still hold it, conditioned on its
    /// resourceVersion; on a conflict, re-reads it once. Bounded by
    /// `renew_deadline`; failures are logged (the lease then just expires).
    async fn release(&mut self) {
        let deadline = self.config.renew_deadline;
        match tokio::time::timeout(deadline, self.try_release()).await {
            Ok(Ok(true)) => self.log_step("released the lease"),
            Ok(Ok(false)) => {
                tracing::debug!(lease = %self.config.name, "the lease is no longer ours; nothing to release");
            }
            Ok(Err(err)) => {
                tracing::warn!(lease = %self.config.name, error = %err, "cannot release the lease; it will expire");
            }
            Err(_) => {
                tracing::warn!(lease = %self.config.name, "releasing the lease timed out; it will expire");
            }
        }
        self.renewed_at = None;
    }

    async fn try_release(&mut self) -> Result<bool, kube::Error> {
        let mut reread = false;
        loop {
            let Some(mut lease) = self.lease.take() else {
                return Ok(false);
            };
            let spec = lease.spec.take().unwrap_or_default();
            if holder_of(&spec) != Some(self.config.identity.as_str()) {
                return Ok(false);
            }
            lease.spec = Some(released_spec(&spec, Timestamp::now()));
            match self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(lease) => {
                    self.observed = observe(self.observed.take(), Some(&lease), Instant::now());
                    self.lease = Some(lease);
                    return Ok(true);
                }
                Err(kube::Error::Api(status)) if status.is_conflict() && !reread => {
                    reread = true;
                    self.lease = self.api.get_opt(&self.config.name).await?;
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => return Ok(false),
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::Body;
    use std::sync::Mutex;

    const ME: &str = "pod-a";
    const OTHER: &str = "pod-b";

    fn spec(holder: Option<&str>, transitions: i32) -> LeaseSpec {
        let then = Timestamp::from_second(1_700_000_000).unwrap();
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(transitions),
            acquire_time: Some(MicroTime(then)),
            renew_time: Some(MicroTime(then)),
            ..LeaseSpec::default()
        }
    }

    fn lease(spec: LeaseSpec, resource_version: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("roost-keeper-controller".into()),
                namespace: Some("ns".into()),
                resource_version: Some(resource_version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        }
    }

    // ---- pure decision -------------------------------------------------

    #[test]
    fn decide_follows_client_go() {
        let t0 = Instant::now();
        let duration = Duration::from_secs(15);
        let seen = |spec: LeaseSpec, since: Instant| Observation {
            spec,
            resource_version: Some("1".into()),
            since,
        };
        let cases: Vec<(&str, Option<Observation>, Instant, Decision)> = vec![
            ("no lease", None, t0, Decision::Create),
            (
                "held by me",
                Some(seen(spec(Some(ME), 0), t0)),
                t0,
                Decision::Renew,
            ),
            (
                "held by me, long unchanged",
                Some(seen(spec(Some(ME), 0), t0)),
                t0 + Duration::from_secs(60),
                Decision::Renew,
            ),
            (
                "held by other, fresh",
                Some(seen(spec(Some(OTHER), 0), t0)),
                t0 + Duration::from_secs(14),
                Decision::Wait,
            ),
            (
                "held by other, unchanged for the lease duration",
                Some(seen(spec(Some(OTHER), 0), t0)),
                t0 + duration,
                Decision::Acquire,
            ),
            (
                "no holder",
                Some(seen(spec(None, 0), t0)),
                t0,
                Decision::Acquire,
            ),
            (
                "empty holder (released)",
                Some(seen(spec(Some(""), 0), t0)),
                t0,
                Decision::Acquire,
            ),
            (
                "no spec at all",
                Some(seen(LeaseSpec::default(), t0)),
                t0,
                Decision::Acquire,
            ),
            (
                "the record's own duration counts (3s), not ours",
                Some(seen(
                    LeaseSpec {
                        lease_duration_seconds: Some(3),
                        ..spec(Some(OTHER), 0)
                    },
                    t0,
                )),
                t0 + Duration::from_secs(3),
                Decision::Acquire,
            ),
            (
                "without a record duration, ours counts",
                Some(seen(
                    LeaseSpec {
                        lease_duration_seconds: None,
                        ..spec(Some(OTHER), 0)
                    },
                    t0,
                )),
                t0 + Duration::from_secs(14),
                Decision::Wait,
            ),
        ];
        for (name, observed, now, expected) in cases {
            assert_eq!(
                decide(observed.as_ref(), ME, now, duration),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn the_expiry_clock_is_local_and_reset_by_any_change_of_the_record() {
        let duration = Duration::from_secs(15);
        let t0 = Instant::now();
        let first = lease(spec(Some(OTHER), 2), "10");
        let observed = observe(None, Some(&first), t0);
        assert_eq!(observed.as_ref().unwrap().since, t0);

        // The same record later: the clock keeps running from t0, so it expires.
        let t1 = t0 + Duration::from_secs(10);
        let observed = observe(observed, Some(&first), t1);
        assert_eq!(observed.as_ref().unwrap().since, t0);
        assert_eq!(
            decide(observed.as_ref(), ME, t0 + duration, duration),
            Decision::Acquire
        );

        // The holder renewed (new renewTime and resourceVersion): the clock restarts at t1.
        let mut renewed = spec(Some(OTHER), 2);
        renewed.renew_time = Some(MicroTime(Timestamp::from_second(1_700_000_010).unwrap()));
        let observed = observe(observed, Some(&lease(renewed.clone(), "11")), t1);
        assert_eq!(observed.as_ref().unwrap().since, t1);
        assert_eq!(
            decide(observed.as_ref(), ME, t0 + duration, duration),
            Decision::Wait,
            "a renewed lease is not expired"
        );
        assert_eq!(
            decide(observed.as_ref(), ME, t1 + duration, duration),
            Decision::Acquire
        );

        // Only the resourceVersion changed: still a change.
        let t2 = t1 + Duration::from_secs(1);
        let observed = observe(observed, Some(&lease(renewed, "12")), t2);
        assert_eq!(observed.as_ref().unwrap().since, t2);

        // The lease disappeared: nothing observed, create it.
        let observed = observe(observed, None, t2);
        assert!(observed.is_none());
        assert_eq!(decide(None, ME, t2, duration), Decision::Create);
    }

    #[test]
    fn records_written_to_create_take_renew_and_release() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let duration = Duration::from_millis(14_200);

        let created = next_spec(None, ME, duration, now);
        assert_eq!(created.holder_identity.as_deref(), Some(ME));
        assert_eq!(created.lease_duration_seconds, Some(15), "rounded up");
        assert_eq!(created.lease_transitions, Some(0));
        assert_eq!(created.acquire_time, Some(MicroTime(now)));
        assert_eq!(created.renew_time, Some(MicroTime(now)));

        let mut theirs = spec(Some(OTHER), 4);
        theirs.strategy = Some("OldestEmulationVersion".into());
        let taken = next_spec(Some(&theirs), ME, duration, now);
        assert_eq!(taken.holder_identity.as_deref(), Some(ME));
        assert_eq!(
            taken.lease_transitions,
            Some(5),
            "a new holder is a transition"
        );
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.renew_time, Some(MicroTime(now)));
        assert_eq!(taken.strategy, theirs.strategy, "other fields are kept");

        let from_nobody = next_spec(Some(&spec(Some(""), 4)), ME, duration, now);
        assert_eq!(from_nobody.lease_transitions, Some(5));

        let mine = spec(Some(ME), 4);
        let renewed = next_spec(Some(&mine), ME, duration, now);
        assert_eq!(
            renewed.lease_transitions,
            Some(4),
            "renewing is no transition"
        );
        assert_eq!(
            renewed.acquire_time, mine.acquire_time,
            "acquireTime is kept"
        );
        assert_eq!(renewed.renew_time, Some(MicroTime(now)));

        let released = released_spec(&renewed, now);
        assert_eq!(released.holder_identity, None);
        assert_eq!(released.lease_duration_seconds, Some(1));
        assert_eq!(released.lease_transitions, Some(4));
        assert_eq!(released.renew_time, Some(MicroTime(now)));
        // Whoever reads the released record may take it at once.
        let seen = observe(None, Some(&lease(released, "9")), Instant::now());
        assert_eq!(
            decide(seen.as_ref(), OTHER, Instant::now(), DEFAULT_LEASE_DURATION),
            Decision::Acquire
        );
    }

    #[test]
    fn lease_duration_seconds_round_up_to_at_least_one() {
        assert_eq!(duration_seconds(Duration::from_secs(15)), 15);
        assert_eq!(duration_seconds(Duration::from_millis(15_001)), 16);
        assert_eq!(duration_seconds(Duration::from_millis(10)), 1);
        assert_eq!(duration_seconds(Duration::ZERO), 1);
        assert_eq!(duration_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn retries_are_jittered_up_to_a_fifth_extra() {
        let period = Duration::from_secs(2);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(period)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= period && *w <= period.mul_f64(1.0 + JITTER)),
            "{waits:?}"
        );
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "jitter varies: {}", distinct.len());
    }

    #[test]
    fn defaults_are_client_go_s_and_bad_settings_are_refused() {
        let config = LeaseConfig::new("ns", "roost-keeper-controller", ME);
        assert_eq!(config.lease_duration, Duration::from_secs(15));
        assert_eq!(config.renew_deadline, Duration::from_secs(10));
        assert_eq!(config.retry_period, Duration::from_secs(2));
        config.validate().unwrap();
        let refused = [
            LeaseConfig {
                identity: String::new(),
                ..config.clone()
            },
            LeaseConfig {
                name: String::new(),
                ..config.clone()
            },
            LeaseConfig {
                renew_deadline: Duration::from_secs(15),
                ..config.clone()
            },
            LeaseConfig {
                retry_period: Duration::from_secs(9),
                ..config.clone()
            },
            LeaseConfig {
                retry_period: Duration::ZERO,
                ..config.clone()
            },
        ];
        for bad in refused {
            let err = bad.validate().unwrap_err();
            assert!(
                matches!(crate::Error::from(err), crate::Error::Config(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stop_fits_the_controller_s_shutdown_bound() {
        fn shutdown_signal(_: impl Future<Output = ()> + Send + Sync + Unpin + Clone + 'static) {}
        let (_tx, stop) = Stop::pair();
        shutdown_signal(stop);
    }

    // ---- I/O against a mocked apiserver ------------------------------------

    /// What the fake apiserver and the leader work saw, in order.
    #[derive(Clone, Debug, PartialEq)]
    enum Seen {
        Get,
        Post(LeaseSpec),
        Put(LeaseSpec),
        Started,
        Stopped,
        Finished,
        /// The test changed the stored lease here.
        Mark,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    /// Answers a request instead of the fake apiserver when it returns a status code.
    type Hook = Box<dyn FnMut(&Method, &mut State) -> Option<u16> + Send>;
    /// Leader work.
    type Lead = Box<dyn FnMut(Stop) -> BoxFuture<'static, ()> + Send>;

    /// The apiserver's stored Lease, and a way to make it misbehave.
    #[derive(Default)]
    struct State {
        lease: Option<Lease>,
        rv: u64,
        /// Answers a request instead of the fake when it returns a status.
        hook: Option<Hook>,
    }

    impl State {
        fn store(&mut self, mut lease: Lease) -> Lease {
            self.rv += 1;
            lease.metadata.resource_version = Some(self.rv.to_string());
            self.lease = Some(lease.clone());
            lease
        }
    }

    fn status(code: u16) -> serde_json::Value {
        let reason = match code {
            404 => "NotFound",
            409 => "Conflict",
            _ => "InternalError",
        };
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason})
    }

    fn respond(code: u16, body: &impl serde::Serialize) -> Response<Body> {
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap()
    }

    /// A client whose apiserver stores one Lease with resourceVersion checks.
    fn apiserver(state: Arc<Mutex<State>>, log: Log) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                assert!(
                    path.starts_with("/apis/coordination.k8s.io/v1/namespaces/ns/leases"),
                    "{path}"
                );
                let body = request.into_body().collect_bytes().await.unwrap();
                let sent: Option<Lease> = serde_json::from_slice(&body).ok();
                let mut state = state.lock().unwrap();
                log.lock().unwrap().push(match method {
                    Method::POST => Seen::Post(sent.clone().unwrap().spec.unwrap()),
                    Method::PUT => Seen::Put(sent.clone().unwrap().spec.unwrap()),
                    _ => Seen::Get,
                });
                let mut hook = state.hook.take();
                let injected = hook.as_mut().and_then(|hook| hook(&method, &mut state));
                state.hook = hook;
                let response = match (injected, method, sent) {
                    (Some(code), _, _) => respond(code, &status(code)),
                    (None, Method::GET, _) => match &state.lease {
                        Some(lease) => respond(200, lease),
                        None => respond(404, &status(404)),
                    },
                    (None, Method::POST, Some(lease)) => {
                        if state.lease.is_some() {
                            respond(409, &status(409))
                        } else {
                            respond(201, &state.store(lease))
                        }
                    }
                    (None, Method::PUT, Some(lease)) => {
                        let current = state
                            .lease
                            .as_ref()
                            .and_then(|l| l.metadata.resource_version.clone());
                        if current.is_none() || lease.metadata.resource_version != current {
                            respond(409, &status(409))
                        } else {
                            respond(200, &state.store(lease))
                        }
                    }
                    (None, method, _) => panic!("unexpected {method}"),
                };
                drop(state);
                send.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    fn config() -> LeaseConfig {
        LeaseConfig {
            lease_duration: Duration::from_secs(1),
            renew_deadline: Duration::from_millis(150),
            retry_period: Duration::from_millis(20),
            ..LeaseConfig::new("ns", "roost-keeper-controller", ME)
        }
    }

    /// Leader work that logs its start, its stop signal, and its end 50ms later.
    fn work(log: &Log) -> impl FnMut(Stop) -> BoxFuture<'static, ()> + Send + use<> {
        let log = Arc::clone(log);
        move |stop| {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push(Seen::Started);
                stop.await;
                log.lock().unwrap().push(Seen::Stopped);
                tokio::time::sleep(Duration::from_millis(50)).await;
                log.lock().unwrap().push(Seen::Finished);
            }
            .boxed()
        }
    }

    struct Running {
        leading: Arc<AtomicBool>,
        log: Log,
        state: Arc<Mutex<State>>,
        shutdown: oneshot::Sender<()>,
        done: JoinHandle<Result<(), InvalidLeaseConfig>>,
    }

    fn start(state: State, lead: Option<Lead>) -> Running {
        start_logged(state, Arc::default(), lead)
    }

    /// `start`, the requests seen going to `log` (which a custom `lead` may share).
    fn start_logged(state: State, log: Log, lead: Option<Lead>) -> Running {
        let state = Arc::new(Mutex::new(state));
        let client = apiserver(Arc::clone(&state), Arc::clone(&log));
        let leading = Arc::new(AtomicBool::new(false));
        let (shutdown, signal) = oneshot::channel::<()>();
        let lead = lead.unwrap_or_else(|| Box::new(work(&log)));
        let done = tokio::spawn(run(
            client,
            config(),
            Arc::clone(&leading),
            async move {
                let _ = signal.await;
            },
            lead,
        ));
        Running {
            leading,
            log,
            state,
            shutdown,
            done,
        }
    }

    impl Running {
        fn seen(&self) -> Vec<Seen> {
            self.log.lock().unwrap().clone()
        }

        fn count(&self, what: impl Fn(&Seen) -> bool) -> usize {
            self.seen().iter().filter(|s| what(s)).count()
        }

        async fn until(&self, what: &str, condition: impl Fn(&Running) -> bool) {
            let started = std::time::Instant::now();
            while !condition(self) {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "timed out waiting until {what}: {:?}",
                    self.seen()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        fn is_leading(&self) -> bool {
            self.leading.load(Ordering::SeqCst)
        }

        async fn shut_down(self) -> Vec<Seen> {
            self.shutdown.send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.done)
                .await
                .expect("run returns after shutdown")
                .unwrap()
                .unwrap();
            assert!(!self.leading.load(Ordering::SeqCst));
            self.log.lock().unwrap().clone()
        }
    }

    fn is_release(seen: &Seen) -> bool {
        matches!(seen, Seen::Put(spec) if holder_of(spec).is_none() && spec.lease_duration_seconds == Some(1))
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_with_our_identity_then_the_work_starts() {
        let running = start(State::default(), None);
        running
            .until("the work starts", |r| r.count(|s| *s == Seen::Started) == 1)
            .await;
        assert!(running.is_leading());
        let seen = running.seen();
        assert_eq!(seen[0], Seen::Get);
        let Seen::Post(created) = &seen[1] else {
            panic!("a create after the 404: {seen:?}")
        };
        assert_eq!(created.holder_identity.as_deref(), Some(ME));
        assert_eq!(created.lease_duration_seconds, Some(1));
        assert_eq!(created.lease_transitions, Some(0));
        assert!(created.acquire_time.is_some() && created.renew_time == created.acquire_time);
        assert_eq!(seen[2], Seen::Started, "started only after the create");
        let stored = running.state.lock().unwrap().lease.clone().unwrap();
        assert_eq!(stored.spec.unwrap().holder_identity.as_deref(), Some(ME));
        // It keeps renewing while leading.
        running
            .until("renewals", |r| {
                r.count(|s| matches!(s, Seen::Put(spec) if holder_of(spec) == Some(ME))) >= 2
            })
            .await;
        assert!(running.is_leading());
        running.shut_down().await;
    }

    #[tokio::test]
    async fn a_conflict_while_taking_over_means_not_leading() {
        // A released lease; another replica writes first, so our replace gets a 409.
        let mut state = State::default();
        state.store(lease(spec(None, 3), "0"));
        state.hook = Some(Box::new(|method, state| {
            (*method == Method::PUT).then(|| {
                state.hook = None;
                let mut theirs = spec(Some(OTHER), 4);
                theirs.renew_time = Some(MicroTime(Timestamp::now()));
                theirs.lease_duration_seconds = Some(15);
                state.store(lease(theirs, "0"));
                409
            })
        }));
        let running = start(state, None);
        running
            .until("the takeover is tried", |r| {
                r.count(|s| matches!(s, Seen::Put(_))) == 1
            })
            .await;
        let Some(Seen::Put(tried)) = running
            .seen()
            .into_iter()
            .find(|s| matches!(s, Seen::Put(_)))
        else {
            unreachable!()
        };
        assert_eq!(tried.holder_identity.as_deref(), Some(ME));
        assert_eq!(tried.lease_transitions, Some(4));
        // It keeps observing (GETs) without writing or leading.
        running
            .until("more observations", |r| r.count(|s| *s == Seen::Get) >= 5)
            .await;
        assert!(!running.is_leading());
        let seen = running.shut_down().await;
        assert!(!seen.contains(&Seen::Started), "{seen:?}");
        assert_eq!(
            seen.iter().filter(|s| matches!(s, Seen::Put(_))).count(),
            1,
            "{seen:?}"
        );
        assert!(!seen.iter().any(is_release), "nothing to release: {seen:?}");
    }

    #[tokio::test]
    async fn shutdown_while_leading_stops_the_work_then_releases_the_lease() {
        let running = start(State::default(), None);
        running.until("leading", Running::is_leading).await;
        let state = Arc::clone(&running.state);
        let seen = running.shut_down().await;
        let position = |what: &dyn Fn(&Seen) -> bool| seen.iter().position(what).unwrap();
        let stopped = position(&|s| *s == Seen::Stopped);
        let finished = position(&|s| *s == Seen::Finished);
        let released = position(&is_release);
        assert!(
            stopped < finished && finished < released,
            "stop, await the work, then release: {seen:?}"
        );
        assert_eq!(
            released,
            seen.len() - 1,
            "the release is the last request: {seen:?}"
        );
        let stored = state.lock().unwrap().lease.clone().unwrap().spec.unwrap();
        assert_eq!(holder_of(&stored), None);
        assert_eq!(stored.lease_duration_seconds, Some(1));
        assert_eq!(stored.lease_transitions, Some(0), "transitions are kept");
    }

    #[tokio::test]
    async fn a_lease_taken_by_another_replica_stops_the_work() {
        let running = start(State::default(), None);
        running.until("leading", Running::is_leading).await;
        {
            let mut state = running.state.lock().unwrap();
            let mut theirs = state.lease.clone().unwrap();
            theirs.spec = Some(spec(Some(OTHER), 1));
            state.store(theirs);
            running.log.lock().unwrap().push(Seen::Mark);
        }
        running
            .until("the work stops", |r| r.count(|s| *s == Seen::Finished) == 1)
            .await;
        running.until("not leading", |r| !r.is_leading()).await;
        let state = Arc::clone(&running.state);
        let seen = running.shut_down().await;
        let mark = seen.iter().position(|s| *s == Seen::Mark).unwrap();
        let stopped = seen.iter().position(|s| *s == Seen::Stopped).unwrap();
        let reads = seen[mark..stopped]
            .iter()
            .filter(|s| **s == Seen::Get)
            .count();
        assert!(
            reads <= 2,
            "stepped down on seeing the new holder, not at the renew deadline: {seen:?}"
        );
        let stored = state.lock().unwrap().lease.clone().unwrap().spec.unwrap();
        assert_eq!(
            holder_of(&stored),
            Some(OTHER),
            "never overwrites another holder: {seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|s| **s == Seen::Started).count(),
            1,
            "{seen:?}"
        );
        assert!(
            !seen.iter().any(is_release),
            "not ours to release: {seen:?}"
        );
    }

    #[tokio::test]
    async fn a_leader_that_cannot_renew_for_the_deadline_steps_down() {
        let running = start(State::default(), None);
        running.until("leading", Running::is_leading).await;
        let failing = std::time::Instant::now();
        running.state.lock().unwrap().hook = Some(Box::new(|_, _| Some(500)));
        running
            .until("the work stops", |r| r.count(|s| *s == Seen::Stopped) == 1)
            .await;
        let after = failing.elapsed();
        // The last renewal was at most one retry period before the failures
        // began, so the renew deadline ends no sooner than this after them;
        // and the work stops before the lease could pass to another replica.
        let config = config();
        let earliest = config.renew_deadline - config.retry_period;
        assert!(
            after >= earliest && after < config.lease_duration,
            "stepped down after {after:?}, expected between {earliest:?} and {:?}",
            config.lease_duration
        );
        running.until("not leading", |r| !r.is_leading()).await;
        running.state.lock().unwrap().hook = None;
        // The lease still names us, so it is renewed (taken back) once the apiserver recovers.
        running
            .until("leading again", |r| r.count(|s| *s == Seen::Started) == 2)
            .await;
        assert!(running.is_leading());
        running.shut_down().await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_with_one_more_transition() {
        // Held by a replica that never renews; 1s lease.
        let mut state = State::default();
        state.store(lease(
            LeaseSpec {
                lease_duration_seconds: Some(1),
                ..spec(Some(OTHER), 3)
            },
            "0",
        ));
        let started = std::time::Instant::now();
        let running = start(state, None);
        running.until("leading", Running::is_leading).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(950),
            "taken after {waited:?}"
        );
        let seen = running.seen();
        let puts: Vec<&LeaseSpec> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Put(spec) => Some(spec),
                _ => None,
            })
            .collect();
        assert_eq!(puts[0].holder_identity.as_deref(), Some(ME), "{seen:?}");
        assert_eq!(puts[0].lease_transitions, Some(4));
        assert!(
            seen.iter().filter(|s| **s == Seen::Get).count() >= 10,
            "it waited observing: {seen:?}"
        );
        running.shut_down().await;
    }

    #[tokio::test]
    async fn work_that_ends_on_its_own_gives_the_lease_up_then_competes_again() {
        // The work logs into the same log as the requests, so their order shows.
        let log: Log = Arc::default();
        let mut first = true;
        let lead: Lead = Box::new({
            let log = Arc::clone(&log);
            move |stop| {
                let quit = std::mem::take(&mut first);
                let log = Arc::clone(&log);
                async move {
                    log.lock().unwrap().push(Seen::Started);
                    if !quit {
                        stop.await;
                    }
                    log.lock().unwrap().push(Seen::Finished);
                }
                .boxed()
            }
        });
        let running = start_logged(State::default(), log, Some(lead));
        running
            .until("the work starts again", |r| {
                r.count(|s| *s == Seen::Started) == 2
            })
            .await;
        assert!(running.is_leading());
        let seen = running.seen();
        let position = |from: usize, what: &dyn Fn(&Seen) -> bool| {
            seen[from..]
                .iter()
                .position(what)
                .map(|p| p + from)
                .unwrap_or_else(|| panic!("not found after {from}: {seen:?}"))
        };
        let started = position(0, &|s| *s == Seen::Started);
        let ended = position(started, &|s| *s == Seen::Finished);
        let released = position(ended, &is_release);
        let retaken = position(
            released,
            &|s| matches!(s, Seen::Put(spec) if holder_of(spec) == Some(ME) && spec.lease_transitions == Some(1)),
        );
        // Started again only once the lease is ours again.
        position(retaken, &|s| *s == Seen::Started);
        assert!(
            !seen[..ended].iter().any(is_release),
            "released only after the work ended: {seen:?}"
        );
        running.shut_down().await;
    }

    #[tokio::test]
    async fn an_invalid_config_is_refused_before_any_request() {
        let log: Log = Arc::default();
        let client = apiserver(Arc::default(), Arc::clone(&log));
        let bad = LeaseConfig {
            renew_deadline: Duration::from_secs(20),
            ..config()
        };
        let leading = Arc::new(AtomicBool::new(false));
        let result = tokio::time::timeout(
            Duration::from_secs(2),
            run(client, bad, leading, std::future::pending(), work(&log)),
        )
        .await
        .expect("refused at once");
        assert!(result.is_err());
        assert!(log.lock().unwrap().is_empty());
    }
}
