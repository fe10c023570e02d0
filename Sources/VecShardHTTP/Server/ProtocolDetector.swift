import NIOCore
import NIOHTTP1

/// Decides per connection between HTTP/2 (the client preface `PRI * HTTP/2.0...`, sent by prior
/// knowledge or after ALPN `h2`) and HTTP/1.1 (anything else), installs that protocol's handlers
/// and replays the bytes it held back. It decides on the first byte that differs from the preface,
/// so HTTP/1.1 requests are not delayed. A connection that has not decided within
/// `headerTimeout` of accept (a TLS handshake or preface never completed) is closed.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let router: Router
    private let limits: HTTPServerLimits
    private let load: ServerLoad
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(router: Router, limits: HTTPServerLimits, load: ServerLoad) {
        self.router = router
        self.limits = limits
        self.load = load
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel, load = self.load
        timer = context.eventLoop.scheduleTask(in: limits.headerTimeout) {
            load.timeouts.wrappingIncrement(ordering: .relaxed)
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let n = min(bytes.count, http2ClientPreface.count)
        let isPrefix = bytes.prefix(n).elementsEqual(http2ClientPreface.prefix(n))
        if isPrefix && n < http2ClientPreface.count { return } // need more bytes to decide
        do {
            if isPrefix {
                try context.pipeline.syncOperations.addHandler(HTTP2ServerHandler(router: router, limits: limits, load: load), position: .after(self))
            } else {
                let h1 = HTTP1ServerHandler(router: router, limits: limits, load: load)
                try context.pipeline.syncOperations.addHandlers([
                    HTTP1ReadObserver(h1),
                    HTTPResponseEncoder(),
                    ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                    HTTPServerPipelineHandler(),
                    h1,
                ], position: .after(self))
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let held = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(held))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
