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
    /// Body bytes every connection has committed: held, plus (HTTP/2) connection window granted
    /// to peers and not yet used. Window is granted only from what `maxBufferedBodyBytes` leaves
    /// of this (`reserve`), so held bytes can never exceed it (beyond each HTTP/2 connection's
    /// protocol-initial 65,535 bytes).
    let committedBodyBytes = ManagedAtomic<Int>(0)
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

extension ServerLoad {
    /// Commits up to `bytes` within `limit` (all connections together); returns what was committed
    /// (less, possibly 0, when the budget is nearly full). One relaxed read-modify-write, plus a
    /// second to give back the excess when over.
    @inline(__always)
    func reserve(_ bytes: Int, limit: Int) -> Int {
        guard bytes > 0 else { return 0 }
        let total = committedBodyBytes.wrappingIncrementThenLoad(by: bytes, ordering: .relaxed)
        let excess = min(bytes, total - limit)
        if excess <= 0 { return bytes }
        committedBodyBytes.wrappingDecrement(by: excess, ordering: .relaxed)
        return bytes - excess
    }

    /// Commits `bytes` unconditionally (or with a negative value, gives them back); returns the new total.
    @discardableResult @inline(__always)
    func commit(_ bytes: Int) -> Int {
        committedBodyBytes.wrappingIncrementThenLoad(by: bytes, ordering: .relaxed)
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
