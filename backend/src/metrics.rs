//! Prometheus metrics of one instance, served as text at `/metrics`: request counts and latency
//! histograms by method, route template (the matched path such as
//! `/api/v1/projects/{project_id}`, never the raw path, so ids do not explode the series) and
//! status; open event streams; events published; and queue depths reported by whoever knows
//! them ([`Metrics::set_queue_depth`]). Kept by hand rather than through a metrics crate: a few
//! counters under one lock, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Per bucket (not cumulative); rendered cumulatively.
    buckets: [u64; BUCKETS.len()],
}

/// The label for requests no route matched (keeps unknown paths out of the labels).
pub const UNMATCHED: &str = "unmatched";

/// Series by route template, then method, then status: nested so that recording a request
/// looks its series up by `&str` without allocating.
type Requests = BTreeMap<String, BTreeMap<String, BTreeMap<u16, Series>>>;

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    queues: Mutex<BTreeMap<String, i64>>,
    streams: AtomicI64,
    published: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay usable even if a holder panicked.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut map = lock(&self.requests);
        let methods = match map.get_mut(route) {
            Some(m) => m,
            None => map.entry(route.to_string()).or_default(),
        };
        let statuses = match methods.get_mut(method) {
            Some(s) => s,
            None => methods.entry(method.to_string()).or_default(),
        };
        let s = statuses.entry(status).or_default();
        s.count += 1;
        s.sum += seconds;
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            s.buckets[i] += 1;
        }
    }

    /// Reports the depth of a queue (jobs waiting), when its owner knows it.
    pub fn set_queue_depth(&self, queue: &str, depth: i64) {
        lock(&self.queues).insert(queue.to_string(), depth);
    }

    pub fn stream_opened(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn event_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = lock(&self.requests);
        let series = || {
            requests.iter().flat_map(|(route, methods)| {
                methods.iter().flat_map(move |(method, statuses)| {
                    statuses
                        .iter()
                        .map(move |(status, s)| (method, route, status, s))
                })
            })
        };
        out.push_str("# HELP hivesync_http_requests_total HTTP requests by method, route template and status.\n# TYPE hivesync_http_requests_total counter\n");
        for (method, route, status, s) in series() {
            let _ = writeln!(
                out,
                "hivesync_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {}",
                label(method),
                label(route),
                s.count
            );
        }
        out.push_str("# HELP hivesync_http_request_duration_seconds Time until the response started, by method, route template and status.\n# TYPE hivesync_http_request_duration_seconds histogram\n");
        for (method, route, status, s) in series() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                label(method),
                label(route)
            );
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "hivesync_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "hivesync_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nhivesync_http_request_duration_seconds_sum{{{labels}}} {}\nhivesync_http_request_duration_seconds_count{{{labels}}} {}",
                s.count, s.sum, s.count
            );
        }
        drop(requests);
        out.push_str("# HELP hivesync_event_streams Open Server-Sent Event streams.\n# TYPE hivesync_event_streams gauge\n");
        let _ = writeln!(
            out,
            "hivesync_event_streams {}",
            self.streams.load(Ordering::Relaxed)
        );
        out.push_str("# HELP hivesync_events_published_total Events appended and published by this instance.\n# TYPE hivesync_events_published_total counter\n");
        let _ = writeln!(
            out,
            "hivesync_events_published_total {}",
            self.published.load(Ordering::Relaxed)
        );
        let queues = lock(&self.queues);
        if !queues.is_empty() {
            out.push_str("# HELP hivesync_queue_depth Messages waiting in a queue, as last reported.\n# TYPE hivesync_queue_depth gauge\n");
            for (q, depth) in queues.iter() {
                let _ = writeln!(
                    out,
                    "hivesync_queue_depth{{queue=\"{}\"}} {depth}",
                    label(q)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_histograms_and_escapes_labels() {
        let m = Metrics::new();
        m.observe("GET", "/a/{id}", 200, 0.003);
        m.observe("GET", "/a/{id}", 200, 0.2);
        m.observe("GET", "x\"y", 404, 50.0);
        m.set_queue_depth("jobs", 7);
        let text = m.render();
        assert!(text.contains(
            "hivesync_http_requests_total{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"0.0025\"} 0"));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/a/{id}\",status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("route=\"x\\\"y\",status=\"404\",le=\"10\"} 0"));
        assert!(text.contains("route=\"x\\\"y\",status=\"404\",le=\"+Inf\"} 1"));
        assert!(text.contains("hivesync_queue_depth{queue=\"jobs\"} 7"));
    }
}
