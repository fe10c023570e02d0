import NIOCore
import VecShardHTTP

/// Probe and metrics endpoints.
enum ServiceRoutes {
    /// `notReadyReason`: a reason to answer 503 `catching_up` although the process is up (a shard
    /// replica that is not synchronised yet).
    static func addProbes(to router: inout Router, phase: @escaping @Sendable () -> VecShardService.Phase, metrics: ServiceMetrics,
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
                           body: .buffer(ByteBuffer(bytes: metrics.exposition())))
        }
    }
}
