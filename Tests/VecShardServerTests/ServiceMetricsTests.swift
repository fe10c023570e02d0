import Foundation
import Prometheus
import Testing
@testable import VecShardHTTP
@testable import VecShardServer

@Suite struct ServiceMetricsTests {
    /// The request metrics are counted per thread and rendered by `ServiceMetrics` itself; the
    /// text must be exactly what the Prometheus registry renders for the same observations made
    /// through its own counter and duration histogram (as the service recorded them before).
    @Test func requestMetricsReadExactlyAsThePrometheusRegistryRendersThem() throws {
        let metrics = ServiceMetrics()
        let seconds: [Double] = [0, 0.00005, 0.0001, 0.0001000001, 0.00025, 0.003, 0.7, 2.5, 10, 11, 42.123456789]
        var outcomes: [RequestOutcome] = []
        for (i, s) in seconds.enumerated() {
            outcomes.append(RequestOutcome(method: "GET", route: "/healthz", routeID: 9_000_001, status: 200, seconds: s, version: .http2))
            outcomes.append(RequestOutcome(method: "POST", route: "/v1/x/{name}", routeID: 9_000_002, status: i % 2 == 0 ? 200 : 400,
                                           seconds: s, version: .http1))
            outcomes.append(RequestOutcome(method: "BREW", route: "unmatched", routeID: nil, status: 404, seconds: s, version: .http2))
        }
        outcomes.append(RequestOutcome(method: "GET", route: "we\"ird\\route\n", routeID: nil, status: 405, seconds: 0.001, version: .http1))

        // Several threads, each counting into a shard of its own.
        let threads = 4
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            let all = outcomes
            Thread {
                for outcome in all { metrics.record(outcome) }
                done.signal()
            }.start()
        }
        for _ in 0..<threads { done.wait() }

        let reference = PrometheusCollectorRegistry()
        let requests = MetricNameDescriptor(namespace: "vecshard", subsystem: "http", metricName: "requests", unitName: "total", helpText: "")
        let duration = MetricNameDescriptor(namespace: "vecshard", subsystem: "http", metricName: "request_duration", unitName: "seconds", helpText: "")
        for _ in 0..<threads {
            for outcome in outcomes {
                let labels = [("method", outcome.method), ("route", outcome.route), ("status", String(outcome.status))]
                reference.makeCounter(descriptor: requests, labels: labels).increment()
                reference.makeDurationHistogram(descriptor: duration, labels: labels, buckets: metrics.factory.defaultDurationHistogramBuckets)
                    .record(.nanoseconds(Int64(outcome.seconds * 1e9)))
            }
        }

        let lines = String(decoding: metrics.exposition(), as: UTF8.self).split(separator: "\n")
        let expected = reference.emitToString().split(separator: "\n")
        #expect(lines.count == expected.count)
        #expect(Set(lines) == Set(expected))
        #expect(lines.contains(#"vecshard_http_requests_total{method="GET",route="/healthz",status="200"} 44"#))
    }

    @Test func nothingIsRenderedBeforeTheFirstRequest() {
        #expect(ServiceMetrics().exposition().isEmpty)
    }
}
