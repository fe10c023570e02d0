import NIOCore
import NIOHTTP1

/// Decides per connection between HTTP/2 (the client preface `PRI * HTTP/2.0...`, sent by prior
/// knowledge or after ALPN `h2`) and HTTP/1.1 (anything else), installs that protocol's handlers
/// and replays the bytes it held back. It decides on the first byte that differs from the preface,
/// so HTTP/1.1 requests are not delayed.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let router: Router
    private let limits: HTTPServerLimits
    private var buffered: ByteBuffer?

    init(router: Router, limits: HTTPServerLimits) {
        self.router = router
        self.limits = limits
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
                try context.pipeline.syncOperations.addHandler(HTTP2ServerHandler(router: router, limits: limits), position: .after(self))
            } else {
                let h1 = HTTP1ServerHandler(router: router, limits: limits)
                try context.pipeline.syncOperations.addHandlers([
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
