//! CloudWatch Embedded Metric Format through the `metrics` facade, with
//! `metrics_cloudwatch_embedded` as its recorder: a maintained crate that
//! writes one EMF document per dimension set on each flush, and needs
//! nothing of Lambda (its `lambda` feature is off: the functions flush
//! themselves, after each invocation, in `web`'s middleware and in the
//! `publish` and `warmup` handlers).
//!
//! The recorder is global to the process, so [`install`] is called once, by
//! a function's `main` (and by the one test binary that reads the
//! documents). Until then every metric is a no-op that costs a load.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ::metrics::{Label, Unit};
use metrics_cloudwatch_embedded::Collector;

use super::{record, Metric};

/// The format keeps at most this many values of one metric per document; a
/// latency recorded beyond it before the next flush is left out (a sample
/// is enough for a latency statistic, and the counts stay exact).
const MAX_SAMPLES: usize = 100;

/// Where the documents go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Standard output, one document a line: in Lambda, where CloudWatch
    /// Logs reads them as metrics.
    Stdout,
    /// The log at debug level (local runs and tests).
    Log,
}

struct Emitter {
    collector: &'static Collector,
    sink: Sink,
    /// The `function` dimension of every metric.
    function: Mutex<&'static str>,
    /// Latency samples taken per metric since the last flush.
    samples: Mutex<HashMap<String, usize>>,
}

static EMITTER: OnceLock<Emitter> = OnceLock::new();

/// Starts recording metrics for this process under `namespace`, with
/// `function` as a dimension of each, and counts the cold start. `false`
/// when metrics were already installed (the first installation stays).
pub fn install(namespace: &str, function: &'static str, sink: Sink) -> bool {
    if EMITTER.get().is_some() {
        return false;
    }
    let built = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.to_string())
        .init();
    let collector = match built {
        Ok(collector) => collector,
        Err(error) => {
            // Another recorder owns the facade: the counters stay local.
            tracing::warn!(%error, "metrics: cannot install the CloudWatch recorder");
            return false;
        }
    };
    for name in ["web_latency", "orchestrator_latency"] {
        ::metrics::describe_histogram!(name, Unit::Milliseconds, "");
    }
    let emitter = Emitter {
        collector,
        sink,
        function: Mutex::new(function),
        samples: Mutex::default(),
    };
    if EMITTER.set(emitter).is_err() {
        return false;
    }
    record(Metric::ColdStart);
    true
}

/// Records the metrics that follow for `function` (a process is one
/// function; the test that reads the documents plays all three in turn).
pub fn set_function(function: &'static str) {
    if let Some(emitter) = EMITTER.get() {
        *emitter.function.lock().unwrap_or_else(|e| e.into_inner()) = function;
    }
}

/// Writes the metrics recorded since the last flush, one document per
/// dimension set, tagged with `request_id` (a property, not a dimension).
pub fn flush(request_id: &str) {
    let Some(emitter) = EMITTER.get() else {
        return;
    };
    let mut documents = Vec::new();
    emitter
        .collector
        .set_property("request_id", request_id.to_string());
    if let Err(error) = emitter.collector.flush(&mut documents) {
        tracing::warn!(%error, "metrics: flush failed");
        return;
    }
    emitter
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    match emitter.sink {
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            if let Err(error) = out.write_all(&documents).and_then(|()| out.flush()) {
                tracing::warn!(%error, "metrics: cannot write to stdout");
            }
        }
        Sink::Log => {
            for document in String::from_utf8_lossy(&documents).lines() {
                tracing::debug!(target: "publisher::metrics", "{document}");
            }
        }
    }
}

/// Adds `by` to a counter.
pub(super) fn count(name: &'static str, labels: &[(&'static str, &str)], by: u64) {
    let Some(emitter) = EMITTER.get() else {
        return;
    };
    ::metrics::counter!(name, emitter.labels(labels)).increment(by);
}

/// Records a latency in milliseconds, while the document has room for it.
pub(super) fn latency(name: &'static str, labels: &[(&'static str, &str)], took: Duration) {
    let Some(emitter) = EMITTER.get() else {
        return;
    };
    let key = format!("{name}{labels:?}");
    {
        let mut samples = emitter.samples.lock().unwrap_or_else(|e| e.into_inner());
        let taken = samples.entry(key).or_default();
        if *taken >= MAX_SAMPLES {
            return;
        }
        *taken += 1;
    }
    ::metrics::histogram!(name, emitter.labels(labels)).record(took.as_secs_f64() * 1000.0);
}

impl Emitter {
    /// The function, then `labels`: the metric's dimensions.
    fn labels(&self, labels: &[(&'static str, &str)]) -> Vec<Label> {
        let function = *self.function.lock().unwrap_or_else(|e| e.into_inner());
        std::iter::once(Label::new("function", function))
            .chain(
                labels
                    .iter()
                    .map(|(key, value)| Label::new(*key, value.to_string())),
            )
            .collect()
    }
}
