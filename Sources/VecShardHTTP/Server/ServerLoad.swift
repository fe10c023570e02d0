import Atomics

/// What every connection of one server shares: the global budgets, as atomics (one relaxed
/// read-modify-write per event, no lock). Counters that only grow are for metrics.
public final class ServerLoad: Sendable {
    /// Connections open now (HTTP/1.1 and HTTP/2).
    let openConnections = ManagedAtomic<Int>(0)
    /// Connections closed at accept because `maxConnections` were open.
    let refusedConnections = ManagedAtomic<Int>(0)
    /// Bytes of request bodies held in memory by every connection (received, not yet handed to a handler).
    let bufferedBodyBytes = ManagedAtomic<Int>(0)
    /// Requests whose handler is running (async handlers; inline and constant answers are not counted).
    let requestsInFlight = ManagedAtomic<Int>(0)
    /// Requests answered 503 `overloaded` because `maxConcurrentRequests` were running.
    let shedRequests = ManagedAtomic<Int>(0)
    /// Connections or streams ended by a timeout (preface, header, body or idle).
    let timeouts = ManagedAtomic<Int>(0)

    public init() {}

    /// A snapshot for metrics and tests.
    public var stats: HTTPServerStats {
        HTTPServerStats(openConnections: openConnections.load(ordering: .relaxed),
                        refusedConnections: refusedConnections.load(ordering: .relaxed),
                        bufferedBodyBytes: bufferedBodyBytes.load(ordering: .relaxed),
                        requestsInFlight: requestsInFlight.load(ordering: .relaxed),
                        shedRequests: shedRequests.load(ordering: .relaxed),
                        timeouts: timeouts.load(ordering: .relaxed))
    }

    /// Takes one of `limit` handler slots; false when all are taken (the request is shed).
    @inline(__always)
    func acquireRequest(limit: Int) -> Bool {
        if requestsInFlight.loadThenWrappingIncrement(ordering: .relaxed) < limit { return true }
        requestsInFlight.wrappingDecrement(ordering: .relaxed)
        shedRequests.wrappingIncrement(ordering: .relaxed)
        return false
    }

    @inline(__always)
    func releaseRequest() {
        requestsInFlight.wrappingDecrement(ordering: .relaxed)
    }

    /// Adds (or with a negative `bytes`, removes) buffered request-body bytes; returns the new total.
    @discardableResult @inline(__always)
    func addBuffered(_ bytes: Int) -> Int {
        bufferedBodyBytes.wrappingIncrementThenLoad(by: bytes, ordering: .relaxed)
    }
}

/// Counters of one server (see `ServerLoad`).
public struct HTTPServerStats: Sendable, Equatable {
    public var openConnections: Int
    public var refusedConnections: Int
    public var bufferedBodyBytes: Int
    public var requestsInFlight: Int
    public var shedRequests: Int
    public var timeouts: Int
}
