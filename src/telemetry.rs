//! Logs and traces: `tracing` with text or JSON logs, and OTLP trace export
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use crate::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Keeps the trace exporter alive; flushes it on drop.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("roost-keeper: trace exporter shutdown: {err}");
        }
    }
}

/// Name of the span around the handling of an object that asked for debug
/// logs (`spec.observability.logging.level: debug`): inside it, roost-keeper's
/// own debug events pass whatever `RUST_LOG` says.
pub const DEBUG_SPAN: &str = "roost_debug";

/// Objects being handled now that asked for debug logs: while there are
/// none, the per-object filter costs one atomic load per event.
static DEBUG_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Counts one object's handling in [`DEBUG_OBJECTS`] while it lives; hold it
/// for as long as its [`DEBUG_SPAN`] may be entered.
pub struct DebugObject(());

impl DebugObject {
    pub fn begin() -> DebugObject {
        DEBUG_OBJECTS.fetch_add(1, Ordering::Relaxed);
        DebugObject(())
    }
}

impl Drop for DebugObject {
    fn drop(&mut self) {
        DEBUG_OBJECTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `RUST_LOG` (default `info`), or roost-keeper's events inside a [`DEBUG_SPAN`].
fn log_filter<S>() -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::filter::{DynFilterFn, FilterExt};
    let global = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let per_object = DynFilterFn::new(
        |meta: &tracing::Metadata<'_>, cx: &tracing_subscriber::layer::Context<'_, S>| {
            meta.target().starts_with("roost_keeper")
                && (meta.name() == DEBUG_SPAN
                    || (DEBUG_OBJECTS.load(Ordering::Relaxed) > 0
                        && cx
                            .lookup_current()
                            .is_some_and(|span| span.scope().any(|s| s.name() == DEBUG_SPAN))))
        },
    )
    // Decided once per call site: other crates' events (hyper, h2, rustls
    // trace the hot path) are then never checked per call.
    .with_callsite_filter(|meta| {
        if meta.target().starts_with("roost_keeper") {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    });
    global.or(per_object)
}

/// Installs the global subscriber: text or JSON lines on stderr, OTLP spans when configured.
pub fn init(format: LogFormat) -> Result<TelemetryGuard> {
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_filter(log_filter())
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(log_filter())
            .boxed(),
    };
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(otlp_provider()?),
        _ => None,
    };
    let subscriber = tracing_subscriber::registry().with(fmt);
    // No `Option` layer: a `None` one claims interest in every call site, so
    // other crates' disabled events and spans would be checked (and h2's
    // spans created) on every call.
    let installed = match &provider {
        Some(provider) => {
            use opentelemetry::trace::TracerProvider;
            let otel = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("roost-keeper"))
                .with_filter(log_filter());
            subscriber.with(otel).try_init()
        }
        None => subscriber.try_init(),
    };
    installed.map_err(|e| Error::Telemetry {
        context: "cannot install the log subscriber",
        source: e.into(),
    })?;
    Ok(TelemetryGuard { provider })
}

/// OTLP over HTTP/protobuf; endpoint and headers come from the standard
/// `OTEL_EXPORTER_OTLP_*` environment variables.
fn otlp_provider() -> Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| Error::Telemetry {
            context: "cannot build the OTLP exporter",
            source: e.into(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("roost-keeper")
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
