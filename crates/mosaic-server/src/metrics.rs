//! [`Metrics`]: what the server counts and measures, exposed at `/metrics`
//! in the Prometheus (OpenMetrics) text format.
//!
//! Names follow `mosaic_<what>_<unit>` with Prometheus's suffixes
//! (`_total`, `_seconds`, `_bytes`). Labels only take bounded values (a
//! message type, a result code, a transport, a reason), never a key or an
//! address. Each event has one method; they cost an atomic add or a lock-free
//! histogram update, so they may be called on every message.

use std::fmt::Write as _;
use std::time::Duration;

use mosaic_core::{Message, MessageType, ResultCode};
use mosaic_net::Received;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// `limits.max_connections` was reached.
    MaxConnections,
    /// `limits.max_connections_per_ip` was reached for the client's address.
    MaxConnectionsPerIp,
    /// The client's address or key is banned.
    Banned,
    /// TLS, the PROXY header, the HTTP request or the HELLO failed or timed
    /// out.
    Handshake,
    /// Hello Auth failed or was refused.
    Authentication,
}

impl RefusalReason {
    fn label(self) -> &'static str {
        match self {
            RefusalReason::MaxConnections => "max_connections",
            RefusalReason::MaxConnectionsPerIp => "max_connections_per_ip",
            RefusalReason::Banned => "banned",
            RefusalReason::Handshake => "handshake",
            RefusalReason::Authentication => "authentication",
        }
    }
}

/// Why a subscription was ended by the server for a client that fell behind
/// (D-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlowReader {
    /// The client read too slowly past the grace time: Query Closed
    /// TEMPORARY_ERROR.
    SlowReader,
    /// The client read nothing at all: Closing.
    NotReading,
}

impl SlowReader {
    fn label(self) -> &'static str {
        match self {
            SlowReader::SlowReader => "slow_reader",
            SlowReader::NotReading => "not_reading",
        }
    }
}

/// How a DHT Lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LookupOutcome {
    /// A value was found (in the cache or the DHT).
    Hit,
    /// Nothing was found.
    Miss,
    /// Refused (TOO_FAST, no DHT node).
    Refused,
}

impl LookupOutcome {
    fn label(self) -> &'static str {
        match self {
            LookupOutcome::Hit => "hit",
            LookupOutcome::Miss => "miss",
            LookupOutcome::Refused => "refused",
        }
    }
}

/// Whose token bucket ran dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateScope {
    /// The connection's.
    Connection,
    /// The client address's.
    Ip,
    /// The authenticated key's.
    Key,
}

impl RateScope {
    fn label(self) -> &'static str {
        match self {
            RateScope::Connection => "connection",
            RateScope::Ip => "ip",
            RateScope::Key => "key",
        }
    }
}

/// Which kind of request a token bucket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateClass {
    /// Get, Query, Subscribe, BLOB Get, DHT Lookup.
    Read,
    /// Submission, BLOB Submission.
    Write,
}

impl RateClass {
    fn label(self) -> &'static str {
        match self {
            RateClass::Read => "read",
            RateClass::Write => "write",
        }
    }
}

/// What a plain HTTP request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpEndpoint {
    /// `GET /`, the status JSON.
    Status,
    /// `GET /metrics`.
    Metrics,
    /// Anything else.
    Other,
}

impl HttpEndpoint {
    fn label(self) -> &'static str {
        match self {
            HttpEndpoint::Status => "status",
            HttpEndpoint::Metrics => "metrics",
            HttpEndpoint::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabel {
    message: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    message: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLabels {
    scope: &'static str,
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    endpoint: &'static str,
    status: u16,
}

/// The server's metrics. One per server, shared by every session; see the
/// module documentation for the conventions.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections_accepted: Family<TransportLabel, Counter>,
    connections_refused: Family<ReasonLabel, Counter>,
    messages_received: Family<MessageLabel, Counter>,
    results_sent: Family<ResultLabels, Counter>,
    records_accepted: Counter,
    commit_duration: Histogram,
    commit_batch: Histogram,
    fanout_deliveries: Counter,
    fanout_latency: Histogram,
    subscriptions_ended: Family<ReasonLabel, Counter>,
    signature_failures: Counter,
    dht_lookups: Family<OutcomeLabel, Counter>,
    rate_limited: Family<RateLabels, Counter>,
    committer_queue: Gauge,
    fanout_queue: Gauge,
    outbound_bytes: Gauge,
    http_requests: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let connections_open = Gauge::default();
        registry.register(
            "mosaic_connections_open",
            "Client connections open now (upgraded and admitted).",
            connections_open.clone(),
        );
        let connections_accepted = Family::default();
        registry.register(
            "mosaic_connections_accepted",
            "Client connections admitted, by transport (ws or wss).",
            connections_accepted.clone(),
        );
        let connections_refused = Family::default();
        registry.register(
            "mosaic_connections_refused",
            "Client connections refused, by reason.",
            connections_refused.clone(),
        );
        let messages_received = Family::default();
        registry.register(
            "mosaic_messages_received",
            "Messages received from clients, by message type (\"malformed\" for undecodable ones of no known type).",
            messages_received.clone(),
        );
        let results_sent = Family::default();
        registry.register(
            "mosaic_results_sent",
            "Result codes sent (Submission Result, Query Closed, BLOB results, Closing), by message type and code.",
            results_sent.clone(),
        );
        let records_accepted = Counter::default();
        registry.register(
            "mosaic_records_accepted",
            "Records made durable (or delivered, when ephemeral) and acknowledged ACCEPTED.",
            records_accepted.clone(),
        );
        let commit_duration = Histogram::new(exponential_buckets(0.000_5, 2.0, 15));
        registry.register_with_unit(
            "mosaic_commit_duration",
            "Time of one group commit, from its start to durable.",
            Unit::Seconds,
            commit_duration.clone(),
        );
        let commit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register_with_unit(
            "mosaic_commit_batch",
            "Submissions committed in one durable transaction.",
            Unit::Other("records".into()),
            commit_batch.clone(),
        );
        let fanout_deliveries = Counter::default();
        registry.register(
            "mosaic_fanout_deliveries",
            "Live records queued for subscribers (one per record and subscription).",
            fanout_deliveries.clone(),
        );
        let fanout_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register_with_unit(
            "mosaic_fanout_latency",
            "Time from a record's commit to its being queued for a subscriber.",
            Unit::Seconds,
            fanout_latency.clone(),
        );
        let subscriptions_ended = Family::default();
        registry.register(
            "mosaic_subscriptions_ended",
            "Subscriptions ended by the server for a client that fell behind, by reason (slow_reader, not_reading).",
            subscriptions_ended.clone(),
        );
        let signature_failures = Counter::default();
        registry.register(
            "mosaic_signature_failures",
            "Submitted records whose signature did not verify.",
            signature_failures.clone(),
        );
        let dht_lookups = Family::default();
        registry.register(
            "mosaic_dht_lookups",
            "DHT Lookups answered, by outcome (hit, miss, refused).",
            dht_lookups.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "mosaic_rate_limited",
            "Requests refused TOO_FAST, by bucket scope (connection, ip, key) and class (read, write).",
            rate_limited.clone(),
        );
        let committer_queue = Gauge::default();
        registry.register_with_unit(
            "mosaic_committer_queue",
            "Submissions waiting for the committer.",
            Unit::Other("submissions".into()),
            committer_queue.clone(),
        );
        let fanout_queue = Gauge::default();
        registry.register_with_unit(
            "mosaic_fanout_queue",
            "Committed records waiting for fan-out to subscribers.",
            Unit::Other("records".into()),
            fanout_queue.clone(),
        );
        let outbound_bytes = Gauge::default();
        registry.register_with_unit(
            "mosaic_outbound_queued",
            "Bytes queued for clients, all connections together.",
            Unit::Bytes,
            outbound_bytes.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "mosaic_http_requests",
            "Plain HTTP requests answered, by endpoint (status, metrics, other) and HTTP status.",
            http_requests.clone(),
        );
        Metrics {
            registry,
            connections_open,
            connections_accepted,
            connections_refused,
            messages_received,
            results_sent,
            records_accepted,
            commit_duration,
            commit_batch,
            fanout_deliveries,
            fanout_latency,
            subscriptions_ended,
            signature_failures,
            dht_lookups,
            rate_limited,
            committer_queue,
            fanout_queue,
            outbound_bytes,
            http_requests,
        }
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]), which
    /// Prometheus reads.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Writing to a String cannot fail; say so rather than panic.
            text.clear();
            let _ = writeln!(text, "# metrics could not be encoded\n# EOF");
        }
        text
    }

    /// A client connection was admitted over `tls` (wss) or not (ws); it
    /// counts as open until [`Metrics::connection_closed`].
    pub fn connection_opened(&self, tls: bool) {
        let transport = if tls { "wss" } else { "ws" };
        self.connections_accepted
            .get_or_create(&TransportLabel { transport })
            .inc();
        self.connections_open.inc();
    }

    /// An admitted connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was refused, for `reason`.
    pub fn connection_refused(&self, reason: RefusalReason) {
        self.connections_refused
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// A message arrived from a client (call once per [`Received`], decoded
    /// or not).
    pub fn message_received(&self, received: &Received) {
        let message = match &received.message {
            Ok(message) => message.message_type().name(),
            Err(_) => received
                .bytes
                .first()
                .and_then(|b| MessageType::from_u8(*b))
                .map_or("malformed", MessageType::name),
        };
        self.messages_received
            .get_or_create(&MessageLabel { message })
            .inc();
    }

    /// A Submission arrived and went to the verification stage undecoded
    /// (counted like a decoded one).
    pub fn submission_received(&self) {
        self.messages_received
            .get_or_create(&MessageLabel {
                message: MessageType::SUBMISSION.name(),
            })
            .inc();
    }

    /// A result code was sent in a message of type `message` (Submission
    /// Result, Query Closed, BLOB Submission Result, BLOB Result, Closing).
    pub fn result_sent(&self, message: MessageType, code: ResultCode) {
        self.results_sent
            .get_or_create(&ResultLabels {
                message: message.name(),
                code: code.name().unwrap_or("unknown"),
            })
            .inc();
    }

    /// `message` is about to be sent: counts its result code when it is one
    /// of the messages [`Metrics::result_sent`] counts, and nothing else.
    pub fn message_sent(&self, message: &Message) {
        let code = match message {
            Message::SubmissionResult { code, .. }
            | Message::QueryClosed { code, .. }
            | Message::BlobSubmissionResult { code, .. }
            | Message::BlobResult { code, .. }
            | Message::Closing { code } => *code,
            _ => return,
        };
        self.result_sent(message.message_type(), code);
    }

    /// `records` records were acknowledged ACCEPTED.
    pub fn records_accepted(&self, records: u64) {
        self.records_accepted.inc_by(records);
    }

    /// A group commit of `batch` submissions became durable after `took`.
    pub fn commit_finished(&self, batch: usize, took: Duration) {
        self.commit_batch.observe(batch as f64);
        self.commit_duration.observe(took.as_secs_f64());
    }

    /// A live record was queued for one subscriber, `since_commit` after
    /// its commit.
    pub fn fanout_delivered(&self, since_commit: Duration) {
        self.fanout_deliveries.inc();
        self.fanout_latency.observe(since_commit.as_secs_f64());
    }

    /// A subscription was ended because its client fell behind (D-21).
    pub fn subscription_ended(&self, reason: SlowReader) {
        self.subscriptions_ended
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// A submitted record's signature did not verify.
    pub fn signature_failed(&self) {
        self.signature_failures.inc();
    }

    /// A DHT Lookup was answered with `outcome`.
    pub fn dht_lookup(&self, outcome: LookupOutcome) {
        self.dht_lookups
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// A request was refused TOO_FAST by the `scope` bucket of `class`.
    pub fn rate_limited(&self, scope: RateScope, class: RateClass) {
        self.rate_limited
            .get_or_create(&RateLabels {
                scope: scope.label(),
                class: class.label(),
            })
            .inc();
    }

    /// The committer's queue now holds `depth` submissions.
    pub fn set_committer_queue(&self, depth: usize) {
        self.committer_queue.set(saturating_i64(depth));
    }

    /// The fan-out queue now holds `depth` records.
    pub fn set_fanout_queue(&self, depth: usize) {
        self.fanout_queue.set(saturating_i64(depth));
    }

    /// `bytes` are queued for clients now, all connections together.
    pub fn set_outbound_bytes(&self, bytes: usize) {
        self.outbound_bytes.set(saturating_i64(bytes));
    }

    /// A plain HTTP request for `endpoint` was answered with `status`.
    pub fn http_request(&self, endpoint: HttpEndpoint, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                endpoint: endpoint.label(),
                status,
            })
            .inc();
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name{labels}` (labels as printed), if any.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    #[test]
    fn every_event_shows_in_the_text() {
        let m = Metrics::new();
        m.connection_opened(false);
        m.connection_opened(true);
        m.connection_opened(true);
        m.connection_closed();
        m.connection_refused(RefusalReason::MaxConnectionsPerIp);
        m.result_sent(MessageType::SUBMISSION_RESULT, ResultCode::ACCEPTED);
        m.message_sent(&Message::Closing {
            code: ResultCode::SHUTTING_DOWN,
        });
        m.message_sent(&Message::Unrecognized);
        m.records_accepted(3);
        m.records_accepted(4);
        m.commit_finished(7, Duration::from_millis(3));
        m.commit_finished(1, Duration::from_secs(100));
        m.fanout_delivered(Duration::from_micros(50));
        m.subscription_ended(SlowReader::NotReading);
        m.signature_failed();
        m.dht_lookup(LookupOutcome::Miss);
        m.rate_limited(RateScope::Ip, RateClass::Read);
        m.set_committer_queue(12);
        m.set_fanout_queue(5);
        m.set_outbound_bytes(600);
        m.http_request(HttpEndpoint::Metrics, 200);
        let text = m.encode();
        let expect = [
            ("mosaic_connections_open", 2.0),
            ("mosaic_connections_accepted_total{transport=\"ws\"}", 1.0),
            ("mosaic_connections_accepted_total{transport=\"wss\"}", 2.0),
            (
                "mosaic_connections_refused_total{reason=\"max_connections_per_ip\"}",
                1.0,
            ),
            (
                "mosaic_results_sent_total{message=\"Submission Result\",code=\"ACCEPTED\"}",
                1.0,
            ),
            (
                "mosaic_results_sent_total{message=\"Closing\",code=\"SHUTTING_DOWN\"}",
                1.0,
            ),
            ("mosaic_records_accepted_total", 7.0),
            ("mosaic_commit_batch_records_count", 2.0),
            ("mosaic_commit_batch_records_sum", 8.0),
            ("mosaic_commit_batch_records_bucket{le=\"4.0\"}", 1.0),
            ("mosaic_commit_batch_records_bucket{le=\"8.0\"}", 2.0),
            ("mosaic_commit_duration_seconds_count", 2.0),
            ("mosaic_commit_duration_seconds_bucket{le=\"0.004\"}", 1.0),
            ("mosaic_commit_duration_seconds_bucket{le=\"+Inf\"}", 2.0),
            ("mosaic_fanout_deliveries_total", 1.0),
            ("mosaic_fanout_latency_seconds_count", 1.0),
            (
                "mosaic_subscriptions_ended_total{reason=\"not_reading\"}",
                1.0,
            ),
            ("mosaic_signature_failures_total", 1.0),
            ("mosaic_dht_lookups_total{outcome=\"miss\"}", 1.0),
            (
                "mosaic_rate_limited_total{scope=\"ip\",class=\"read\"}",
                1.0,
            ),
            ("mosaic_committer_queue_submissions", 12.0),
            ("mosaic_fanout_queue_records", 5.0),
            ("mosaic_outbound_queued_bytes", 600.0),
            (
                "mosaic_http_requests_total{endpoint=\"metrics\",status=\"200\"}",
                1.0,
            ),
        ];
        for (series, value) in expect {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
        // Only result messages count as results.
        assert_eq!(
            text.matches("mosaic_results_sent_total{").count(),
            2,
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE mosaic_commit_duration_seconds histogram"));
        assert!(text.contains("# UNIT mosaic_commit_duration_seconds seconds"));
    }
}
