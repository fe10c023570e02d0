import NIOCore
import NIOHTTP1

/// Serves HTTP/1.1 (keep-alive, pipelining through NIO's `HTTPServerPipelineHandler`) with the
/// same router and limits as HTTP/2. Limit violations and malformed requests are answered with a
/// JSON error and the connection is closed (the rest of the request cannot be trusted or skipped).
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
    private var state = State.idle
    private var context: ChannelHandlerContext?

    init(router: Router, limits: HTTPServerLimits) {
        self.router = router
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
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
            state = .receiving(head, context.channel.allocator.buffer(capacity: expected))
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if body.readableBytes + chunk.readableBytes > limits.maxBodyBytes {
                reject(HTTPError.payloadTooLarge(limit: limits.maxBodyBytes), head: head)
                return
            }
            state = .responding // avoid a copy-on-write of `body` while it is mutated
            body.writeBuffer(&chunk)
            state = .receiving(head, body)
        case .end:
            guard case .receiving(let head, let body) = state else { return }
            state = .responding
            dispatch(head: head, body: body, context: context)
        }
    }

    private func dispatch(head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let request = ServerRequest(method: head.method.rawValue, target: head.uri, headers: head.headers, body: body, version: .http1)
        let keepAlive = head.isKeepAlive
        switch router.dispatch(request) {
        case .now(let response):
            write(response, keepAlive: keepAlive, version: head.version)
        case .later(let work):
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            Task {
                let response = await work()
                bound.eventLoop.execute { bound.value.write(response, keepAlive: keepAlive, version: head.version) }
            }
        }
    }

    private func reject(_ error: HTTPError, head: HTTPRequestHead) {
        state = .discarding
        write(error.response(), keepAlive: false, version: head.version)
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
            Task {
                do {
                    let trailers = try await producer(writer)
                    bound.eventLoop.execute {
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
