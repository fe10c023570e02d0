import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import VecShardHTTP

/// The service's metrics, through swift-metrics into a Prometheus registry owned by this
/// instance (so several services in one process, as in tests, do not share counters).
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    private struct RouteKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    /// The registry's own collectors, not swift-metrics wrappers: recording then skips an
    /// existential call and a seconds → nanoseconds → `Duration` round trip per request.
    /// The factory would create the very same collectors (same names, labels and buckets).
    private struct RouteMetrics {
        var requests: Prometheus.Counter
        var duration: DurationHistogram
    }

    private struct Table {
        var byKey: [RouteKey: RouteMetrics] = [:]
        /// The same metrics keyed by `routeID << 16 | status` for matched routes: one integer
        /// hash per request instead of hashing the method and pattern strings.
        var byRouteID: [Int: RouteMetrics] = [:]
    }

    private let routes = NIOLockedValueBox(Table())

    // Without help text, as swift-metrics' factory creates them: no `# HELP` lines.
    private static var requestsTotal: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vecshard", subsystem: "http", metricName: "requests", unitName: "total", helpText: "")
    }
    private static var requestDuration: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vecshard", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "")
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latencies of a vector service sit between 100 µs and a few seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        self.factory = factory
    }

    /// Counts a finished request and records its latency, by method, route pattern and status.
    public func record(_ outcome: RequestOutcome) {
        let fastKey = outcome.routeID.flatMap { id in (0..<(1 << 16)).contains(outcome.status) ? id << 16 | outcome.status : nil }
        let metrics = routes.withLockedValue { table -> RouteMetrics in
            if let fastKey, let existing = table.byRouteID[fastKey] { return existing }
            let key = RouteKey(method: outcome.method, route: outcome.route, status: outcome.status)
            let metrics: RouteMetrics
            if let existing = table.byKey[key] {
                metrics = existing
            } else {
                let labels = [("method", key.method), ("route", key.route), ("status", String(key.status))]
                metrics = RouteMetrics(
                    requests: registry.makeCounter(descriptor: Self.requestsTotal, labels: labels),
                    duration: registry.makeDurationHistogram(descriptor: Self.requestDuration, labels: labels,
                                                             buckets: factory.defaultDurationHistogramBuckets))
                table.byKey[key] = metrics
            }
            if let fastKey { table.byRouteID[fastKey] = metrics }
            return metrics
        }
        metrics.requests.increment()
        let nanoseconds = outcome.seconds * 1e9
        metrics.duration.record(.nanoseconds(nanoseconds < Double(Int64.max) ? Int64(nanoseconds) : Int64.max))
    }

    /// Prometheus text exposition format.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}
