import NIOCore
import NIOHTTP1

/// Serves HTTP/1.1 (keep-alive, pipelining through NIO's `HTTPServerPipelineHandler`) with the
/// same router and limits as HTTP/2. Limit violations and malformed requests are answered with a
/// JSON error and the connection is closed (the rest of the request cannot be trusted or skipped).
/// The route and the API key are checked on the request head, before the body is read. While
/// the server-wide body budget is full the connection is not read from (TCP backpressure).
/// Timeouts (ticks of one repeating timer): the first request's head within `headerTimeout` of
/// the connection, any head within `headerTimeout` of its first byte, body progress within
/// `bodyTimeout` and at least `minimumBodyBytesPerSecond` on average after it (else 408; the
/// body clock stops while reading is paused for the budget), the next request within
/// `idleTimeout`; the connection is closed
/// when one passes. A closed connection cancels the handler's task.
final class HTTP1ServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case discarding       // answered early; drop the rest and close
        case responding
    }

    private let router: Router
    private let limits: HTTPServerLimits
    private let load: ServerLoad
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// The connection-wide timeouts, ticked by `ticker`; `timeouts.now` is the body timeout's clock.
    private var timeouts: ConnectionTimeouts
    private var ticker: RepeatedTask?
    /// The tick of the last body byte of the request being received.
    private var since = 0
    /// Ticks the body being received has been read from (not paused), for the minimum body rate.
    private var activeTicks = 0
    /// Bytes of the next request head have arrived (its header timeout runs).
    private var headStarted = false
    /// Body bytes held for the request being received (counted in the server-wide budget).
    private var held = 0
    private var readPaused = false
    /// Ticks reading has been paused for (see `tick`).
    private var pausedTicks = 0
    /// The running handler or streamed-body producer, cancelled when the connection closes.
    private var handlerTask: Task<Void, Never>?

    init(router: Router, limits: HTTPServerLimits, load: ServerLoad) {
        self.router = router
        self.limits = limits
        self.load = load
        self.timeouts = ConnectionTimeouts(TimeoutTicks(limits))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let interval = timeouts.ticks.interval
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.tick() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker?.cancel()
        ticker = nil
        handlerTask?.cancel()
        handlerTask = nil
        release()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        handlerTask?.cancel()
        handlerTask = nil
        release()
        context.fireChannelInactive()
    }

    /// Raw bytes arrived (from `HTTP1ReadObserver`, before they are parsed).
    func bytesArrived() {
        if case .idle = state, !headStarted {
            headStarted = true
            timeouts.headerStarted()
        }
    }

    private func tick() {
        guard let context, context.channel.isActive else { return }
        if timeouts.tick() != nil {
            load.timeouts.wrappingIncrement(ordering: .relaxed)
            context.close(promise: nil)
            return
        }
        switch state {
        case .receiving(let head, _):
            if readPaused { // the server does not read: the body clock stops
                since = timeouts.now
                pausedTicks += 1
                if pausedTicks >= 3 * timeouts.ticks.body {
                    // Connections may pause each other (each holds part of a body): read again,
                    // within at most one body more each, rather than stall for ever.
                    readPaused = false
                    context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                }
                break
            }
            activeTicks += 1
            let ticks = timeouts.ticks
            if timeouts.now &- since >= ticks.body || ticks.bodyTooSlow(activeTicks: activeTicks, received: held) {
                load.timeouts.wrappingIncrement(ordering: .relaxed)
                reject(HTTPError.requestTimeout(after: limits.bodyTimeout), head: head)
            }
        case .idle, .discarding, .responding:
            break
        }
        resumeReadingIfRoom(context)
    }

    /// Reads again once the server-wide budget has room (or only this connection's bytes fill it).
    private func resumeReadingIfRoom(_ context: ChannelHandlerContext) {
        if readPaused, load.committedBodyBytes.load(ordering: .relaxed) < limits.maxBufferedBodyBytes
            || load.bufferedBodyBytes.load(ordering: .relaxed) <= held {
            readPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    /// While paused, checks every 50 ms (other connections free the budget without telling this one).
    private func scheduleResumeCheck(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(50)) {
            let handler = bound.value
            guard let context = handler.context, handler.readPaused else { return }
            handler.resumeReadingIfRoom(context)
            if handler.readPaused { handler.scheduleResumeCheck(context) }
        }
    }

    /// The held body leaves the server-wide budget (handed to the handler, refused, or dropped).
    private func release() {
        if held > 0 {
            load.addBuffered(-held)
            load.commit(-held)
            held = 0
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            headStarted = false
            timeouts.headerEnded()
            timeouts.requestOpened()
            var headerBytes = head.uri.utf8.count
            for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count + 4 }
            if headerBytes > limits.maxHeaderListBytes {
                reject(HTTPError.headersTooLarge(limit: limits.maxHeaderListBytes), head: head)
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes {
                reject(HTTPError.payloadTooLarge(limit: limits.maxBodyBytes), head: head)
                return
            }
            let expected = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
            if expected > 0 || head.headers.contains(name: "transfer-encoding") {
                // A body follows: check the route and the key before reading it.
                let request = ServerRequest(method: head.method.rawValue, target: head.uri, headers: head.headers,
                                            body: ByteBuffer(), version: .http1)
                if let refusal = router.admit(request) {
                    state = .discarding
                    write(refusal, keepAlive: false, version: head.version)
                    return
                }
            }
            since = timeouts.now
            activeTicks = 0
            state = .receiving(head, context.channel.allocator.buffer(capacity: limits.initialBodyCapacity(declared: expected, received: 0)))
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if body.readableBytes + chunk.readableBytes > limits.maxBodyBytes {
                reject(HTTPError.payloadTooLarge(limit: limits.maxBodyBytes), head: head)
                return
            }
            state = .responding // avoid a copy-on-write of `body` while it is mutated
            let n = chunk.readableBytes
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
            since = timeouts.now
            held += n
            load.addBuffered(n)
            let total = load.commit(n)
            if total > limits.maxBufferedBodyBytes && !readPaused && load.bufferedBodyBytes.load(ordering: .relaxed) > held {
                // Every connection together (held bytes and HTTP/2 windows) commits the budget:
                // stop reading until other connections hand bodies over (never waiting for this
                // connection's own bytes, nor for windows of connections that hold nothing).
                readPaused = true
                pausedTicks = 0
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
                scheduleResumeCheck(context)
            }
        case .end:
            guard case .receiving(let head, let body) = state else { return }
            state = .responding
            dispatch(head: head, body: body, context: context)
        }
    }

    private func dispatch(head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        release()
        let request = ServerRequest(method: head.method.rawValue, target: head.uri, headers: head.headers, body: body, version: .http1)
        let keepAlive = head.isKeepAlive
        switch router.dispatch(request) {
        case .now(let response):
            write(response, keepAlive: keepAlive, version: head.version)
        case .later(let work):
            guard load.acquireRequest(limit: limits.maxConcurrentRequests) else {
                write(router.rejection(HTTPError.overloaded(limit: limits.maxConcurrentRequests), contentType: head.headers.first(name: "content-type")),
                      keepAlive: keepAlive, version: head.version)
                return
            }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let load = self.load
            handlerTask = Task {
                let response = await work()
                load.releaseRequest()
                bound.eventLoop.execute {
                    bound.value.handlerTask = nil
                    bound.value.write(response, keepAlive: keepAlive, version: head.version)
                }
            }
        }
    }

    private func reject(_ error: HTTPError, head: HTTPRequestHead) {
        state = .discarding
        release()
        write(router.rejection(error, contentType: head.headers.first(name: "content-type")), keepAlive: false, version: head.version)
    }

    private func write(_ response: ServerResponse, keepAlive: Bool, version: HTTPVersion) {
        guard let context, context.channel.isActive else { return }
        var headers = response.headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        switch response.body {
        case .buffer(let body):
            headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            finish(context: context, trailers: nil, keepAlive: keepAlive)
        case .stream(let producer):
            headers.remove(name: "content-length")
            headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let writer = HTTP1ChunkWriter(handler: bound)
            handlerTask = Task {
                do {
                    let trailers = try await producer(writer)
                    bound.eventLoop.execute {
                        bound.value.handlerTask = nil
                        guard let context = bound.value.context else { return }
                        bound.value.finish(context: context, trailers: trailers, keepAlive: keepAlive)
                    }
                } catch {
                    bound.eventLoop.execute { bound.value.context?.close(promise: nil) }
                }
            }
        }
    }

    private func finish(context: ChannelHandlerContext, trailers: HTTPHeaders?, keepAlive: Bool) {
        let discarding: Bool
        if case .discarding = state { discarding = true } else { discarding = false }
        state = discarding ? .discarding : .idle
        timeouts.requestsFinished()
        let promise: EventLoopPromise<Void>? = keepAlive && !discarding ? nil : context.eventLoop.makePromise()
        context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: promise)
        promise?.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    fileprivate func writeChunk(_ chunk: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let context, context.channel.isActive else {
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Malformed HTTP/1.x (or bytes that are neither HTTP/1.1 nor the HTTP/2 preface).
        var idle = false
        switch state {
        case .idle, .receiving: idle = true
        case .discarding, .responding: idle = false
        }
        if let parserError = error as? HTTPParserError, parserError == .headerOverflow, idle, context.channel.isActive {
            // NIO's parser refuses a head over 80 KiB before it reaches the limit check above.
            state = .discarding
            write(HTTPError.headersTooLarge(limit: limits.maxHeaderListBytes).response(), keepAlive: false, version: .http1_1)
            return
        }
        if error is HTTPParserError, idle, context.channel.isActive {
            state = .discarding
            let response = HTTPError.badRequest("malformed HTTP request: \(error); this port speaks HTTP/1.1 and HTTP/2").response()
            write(response, keepAlive: false, version: .http1_1)
            return
        }
        context.close(promise: nil)
    }
}

struct HTTP1ChunkWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<HTTP1ServerHandler>

    func write(_ chunk: ByteBuffer) async throws {
        try await handler.eventLoop.flatSubmit { handler.value.writeChunk(chunk, on: handler.eventLoop) }.get()
    }
}

/// Tells the HTTP/1.1 handler that bytes arrived before the decoder parses them, so the header
/// timeout runs from a request head's first byte.
final class HTTP1ReadObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let handler: HTTP1ServerHandler

    init(_ handler: HTTP1ServerHandler) { self.handler = handler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handler.bytesArrived()
        context.fireChannelRead(data)
    }
}
