import CNGHTTP2
import NIOCore

/// The timeouts of an HTTP/2 connection, checked on a tick of one repeating timer per connection
/// (the request path only copies the tick number):
/// - first request: no stream opened within `headerTimeout` of the connection: GOAWAY, close;
/// - header block: a HEADERS frame whose CONTINUATION frames stop (nothing else may be sent on
///   the connection meanwhile, so it is a connection error): GOAWAY, close;
/// - body: a stream whose DATA makes no progress for `bodyTimeout`: 408 on that stream, then
///   RST_STREAM(NO_ERROR); the connection and its other streams go on;
/// - idle: no stream open for `idleTimeout` since the last one closed: GOAWAY(NO_ERROR), close.
/// The tick also retries giving window back while the server-wide body budget was full.
extension HTTP2ServerHandler {
    func startTicker(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let interval = timeouts.ticks.interval
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.tick()
        }
    }

    func tick() {
        guard !closed else { return }
        if timeouts.tick() != nil {
            timeOut()
            return
        }
        if bodiesInProgress > 0 {
            let now = timeouts.now, limit = timeouts.ticks.body
            for stream in streams.values where stream.receivingBody && now &- stream.lastProgressTick >= limit {
                load.timeouts.wrappingIncrement(ordering: .relaxed)
                stopReceiving(stream)
                stream.rejection = .requestTimeout(after: limits.bodyTimeout)
                respondEarly(stream)
            }
            flush()
        }
        if budget.withheld > 0 {
            giveBackWindow(budget.grant(load: load))
            flush()
        }
    }

    /// While only the server-wide budget withholds window, retry every `grantRetryInterval`
    /// rather than waiting for a tick (other connections free the budget without telling this one).
    func scheduleGrantRetry() {
        guard !grantRetryScheduled, let context else { return }
        grantRetryScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.grantRetryInterval) {
            let handler = bound.value
            handler.grantRetryScheduled = false
            guard !handler.closed else { return }
            handler.giveBackWindow(handler.budget.grant(load: handler.load))
            handler.flush()
            if handler.budget.throttledByGlobalBudget { handler.scheduleGrantRetry() }
        }
    }

    static let grantRetryInterval: TimeAmount = .milliseconds(50)

    /// GOAWAY (NO_ERROR: the streams it covers were all answered or never opened), then close.
    private func timeOut() {
        load.timeouts.wrappingIncrement(ordering: .relaxed)
        session?.submitGoaway()
        flush()
        closeConnection()
    }
}
