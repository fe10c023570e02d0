import CNGHTTP2
import NIOCore

/// The timeouts of an HTTP/2 connection, checked on a tick of one repeating timer per connection
/// (the request path only copies the tick number):
/// - first request: no stream opened within `headerTimeout` of the connection: GOAWAY, close;
/// - header block: a HEADERS frame whose CONTINUATION frames stop (nothing else may be sent on
///   the connection meanwhile, so it is a connection error): GOAWAY, close;
/// - body: a stream whose DATA makes no progress for `bodyTimeout`, or averages less than
///   `minimumBodyBytesPerSecond` after it: 408 on that stream, then RST_STREAM(NO_ERROR); the
///   connection and its other streams go on. The body clock stops while the peer has no
///   connection window left because the budgets withhold it;
/// - budget stall: the peer has had no window for two ticks (the connection budget full of
///   incomplete bodies, several of them), or for 3 x `bodyTimeout` (the server-wide budget full):
///   the newest incomplete body is refused (RST_STREAM REFUSED_STREAM, safe to retry) so that
///   the others can complete;
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
            let now = timeouts.now, ticks = timeouts.ticks
            let throttled = budget.throttled
            for stream in streams.values where stream.receivingBody {
                if throttled { // the server withholds the window: the body clock stops
                    stream.lastProgressTick = now
                    continue
                }
                stream.activeTicks += 1
                if now &- stream.lastProgressTick >= ticks.body
                    || ticks.bodyTooSlow(activeTicks: stream.activeTicks, received: stream.body?.readableBytes ?? 0) {
                    load.timeouts.wrappingIncrement(ordering: .relaxed)
                    stopReceiving(stream)
                    stream.rejection = .requestTimeout(after: limits.bodyTimeout)
                    respondEarly(stream)
                }
            }
            relieveBudgetStall(throttled: throttled)
            flush()
        } else {
            throttledTicks = 0
        }
        if budget.withheld > 0 {
            giveBackWindow(budget.grant(load: load))
            flush()
        }
    }

    /// Incomplete bodies hold the whole budget and the peer has no window left: none of them can
    /// complete. The newest is refused (its bytes released, its window given to the others).
    private func relieveBudgetStall(throttled: Bool) {
        guard throttled else { throttledTicks = 0; return }
        throttledTicks += 1
        let global = budget.throttledByGlobalBudget
        // One body alone within the connection budget always fits: it completes without window.
        guard global ? bodiesInProgress >= 1 : bodiesInProgress >= 2 else { return }
        guard throttledTicks >= (global ? 3 * timeouts.ticks.body : 2) else { return }
        throttledTicks = 0
        var newest: HTTP2ServerStream?
        for stream in streams.values where stream.receivingBody && stream.id > (newest?.id ?? 0) { newest = stream }
        if let newest { refuse(newest) }
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
