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

    private struct RouteMetrics {
        var requests: CoreMetrics.Counter
        var duration: CoreMetrics.Timer
    }

    private let routes = NIOLockedValueBox<[RouteKey: RouteMetrics]>([:])

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
        let key = RouteKey(method: outcome.method, route: outcome.route, status: outcome.status)
        let metrics = routes.withLockedValue { routes -> RouteMetrics in
            if let existing = routes[key] { return existing }
            let dimensions = [("method", key.method), ("route", key.route), ("status", String(key.status))]
            let created = RouteMetrics(
                requests: CoreMetrics.Counter(label: "vecshard_http_requests_total", dimensions: dimensions, factory: factory),
                duration: CoreMetrics.Timer(label: "vecshard_http_request_duration_seconds", dimensions: dimensions, factory: factory))
            routes[key] = created
            return created
        }
        metrics.requests.increment()
        metrics.duration.recordSeconds(outcome.seconds)
    }

    /// Prometheus text exposition format.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}
