import NIOCore
import VecShardHTTP

/// Probe and metrics endpoints.
enum ServiceRoutes {
    /// `notReadyReason`: a reason to answer 503 `catching_up` although the process is up (a shard
    /// replica that is not synchronised yet).
    static func addProbes(to router: inout Router, phase: @escaping @Sendable () -> VecShardService.Phase, metrics: ServiceMetrics,
                          httpStats: @escaping @Sendable () -> HTTPServerStats? = { nil },
                          notReadyReason: @escaping @Sendable () -> String? = { nil }) {
        // Liveness is a constant answer given on the event loop: it answers even when every
        // worker is busy searching, and costs no more than the protocol itself.
        let ready = ServerResponse.json(.ok, #"{"status":"ready"}"#).prepared()
        router.add("GET", "/healthz", .constant(.json(.ok, #"{"status":"ok"}"#)))
        router.add("GET", "/readyz", .inline { _ in
            switch phase() {
            case .ready:
                if let reason = notReadyReason() { return errorResponse(status: .serviceUnavailable, code: "catching_up", message: reason) }
                return ready
            case .starting: return errorResponse(status: .serviceUnavailable, code: "starting", message: "the service is starting")
            case .draining: return errorResponse(status: .serviceUnavailable, code: "draining", message: "the service is shutting down")
            }
        })
        router.get("/metrics") { _ in
            ServerResponse(status: .ok, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"],
                           body: .buffer(ByteBuffer(bytes: metrics.exposition() + exposition(httpStats()))))
        }
    }

    /// The HTTP server's own gauges and counters (connections, held bodies, handlers, shedding).
    static func exposition(_ stats: HTTPServerStats?) -> [UInt8] {
        guard let stats else { return [] }
        var text = ""
        for (name, type, value) in [
            ("vecshard_http_open_connections", "gauge", stats.openConnections),
            ("vecshard_http_refused_connections_total", "counter", stats.refusedConnections),
            ("vecshard_http_buffered_body_bytes", "gauge", stats.bufferedBodyBytes),
            ("vecshard_http_requests_in_flight", "gauge", stats.requestsInFlight),
            ("vecshard_http_shed_requests_total", "counter", stats.shedRequests),
            ("vecshard_http_timeouts_total", "counter", stats.timeouts),
        ] {
            text += "# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        return Array(text.utf8)
    }
}
