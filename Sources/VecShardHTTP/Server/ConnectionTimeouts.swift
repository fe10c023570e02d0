import NIOCore

/// The timeouts of one connection counted in ticks of a per-connection repeating timer, so that
/// the request path only copies a tick number (no clock read, no timer per request). A timeout
/// fires between `n` and `n + 1` ticks after its start; a tick is a quarter of the shortest
/// timeout, at most one second.
struct TimeoutTicks {
    let interval: TimeAmount
    let header: Int
    let body: Int
    let idle: Int
    /// `minimumBodyBytesPerSecond` per tick.
    let minimumBodyBytes: Int

    init(_ limits: HTTPServerLimits) {
        let shortest = min(limits.headerTimeout.nanoseconds, limits.bodyTimeout.nanoseconds, limits.idleTimeout.nanoseconds)
        let tick = max(min(shortest / 4, 1_000_000_000), 5_000_000)
        interval = .nanoseconds(tick)
        func ticks(_ t: TimeAmount) -> Int { Int(max(1, (t.nanoseconds + tick - 1) / tick)) }
        header = ticks(limits.headerTimeout)
        body = ticks(limits.bodyTimeout)
        idle = ticks(limits.idleTimeout)
        minimumBodyBytes = Int(Int64(limits.minimumBodyBytesPerSecond) * tick / 1_000_000_000)
    }

    /// A body that has had `activeTicks` ticks to be sent (not throttled by the server) and
    /// `received` bytes so far: past `body` ticks, it must average `minimumBodyBytes` per tick.
    func bodyTooSlow(activeTicks: Int, received: Int) -> Bool {
        activeTicks > body && received < activeTicks * minimumBodyBytes
    }
}

/// The connection-wide timeouts of one connection (HTTP/1.1 or HTTP/2) as a state machine over
/// ticks: the handler reports events and each `tick()` says which timeout, if any, has passed.
/// - first request: no header byte (HTTP/1.1) or header block (HTTP/2) within `header` ticks of
///   the start;
/// - header: a request head or header block begun `header` ticks ago and not complete;
/// - idle: no request open for `idle` ticks since the last one finished.
/// Per-request body timeouts are kept by the handlers, against `now`.
struct ConnectionTimeouts {
    enum Expiry: Equatable {
        case firstRequest
        case header
        case idle
    }

    let ticks: TimeoutTicks
    /// Ticks since the connection started.
    private(set) var now = 0
    private var awaitingFirstRequest = true
    private var headerStart: Int?
    /// When the last open request finished; nil while one is open (or before the first).
    private var idleSince: Int?

    init(_ ticks: TimeoutTicks) { self.ticks = ticks }

    /// A request head (its first byte) or header block begins.
    mutating func headerStarted() {
        awaitingFirstRequest = false
        idleSince = nil
        headerStart = now
    }

    /// The request head or header block is complete.
    mutating func headerEnded() { headerStart = nil }

    /// A request is open again (HTTP/2: a stream opened while others close).
    mutating func requestOpened() { idleSince = nil }

    /// No request is open any more: the idle timeout runs from now.
    mutating func requestsFinished() {
        awaitingFirstRequest = false
        idleSince = now
    }

    mutating func tick() -> Expiry? {
        now &+= 1
        if let start = headerStart, now &- start >= ticks.header { return .header }
        if awaitingFirstRequest && now >= ticks.header { return .firstRequest }
        if let since = idleSince, now &- since >= ticks.idle { return .idle }
        return nil
    }
}
