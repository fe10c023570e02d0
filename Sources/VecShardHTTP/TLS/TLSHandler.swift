import COpenSSL
import NIOCore

/// Fired inbound once the TLS handshake completes, with the ALPN protocol the peers agreed on.
public struct TLSHandshakeCompleted: Sendable {
    public let alpnProtocol: String?
}

/// TLS on OpenSSL for one connection. Ciphertext moves through two memory BIOs: bytes read from
/// the socket go into `rbio`, OpenSSL's output is taken from `wbio` and written by NIO, so the
/// event loop never blocks in OpenSSL. Plaintext writes made before the handshake completes are
/// held and sent after it.
final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case handshaking, active, closing, closed }

    private let tls: TLSContext
    private let serverName: String?
    private var ssl: OpaquePointer?
    private var rbio: OpaquePointer?
    private var wbio: OpaquePointer?
    private var state = State.handshaking
    private var heldWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushPromises: [EventLoopPromise<Void>] = []

    init(context tls: TLSContext, serverName: String? = nil) {
        self.tls = tls
        self.serverName = serverName
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let ssl = SSL_new(tls.raw) else {
            context.fireErrorCaught(TLSError("SSL_new"))
            context.close(promise: nil)
            return
        }
        self.ssl = ssl
        rbio = BIO_new(BIO_s_mem())
        wbio = BIO_new(BIO_s_mem())
        SSL_set_bio(ssl, rbio, wbio) // ssl owns both BIOs now
        if tls.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName, !serverName.isEmpty, serverName.first!.isLetter { _ = vs_ssl_set_host_name(ssl, serverName) }
            if context.channel.isActive { handshake(context: context) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let ssl { SSL_free(ssl) }
        ssl = nil
        for (_, promise) in heldWrites { promise?.fail(ChannelError.ioOnClosedChannel) }
        heldWrites.removeAll()
    }

    func channelActive(context: ChannelHandlerContext) {
        if !tls.isServer { handshake(context: context) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let rbio else { return }
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = BIO_write(rbio, bytes.baseAddress! + offset, Int32(bytes.count - offset))
                if n <= 0 { break }
                offset += Int(n)
            }
        }
        switch state {
        case .handshaking: handshake(context: context)
        case .active, .closing: readPlaintext(context: context)
        case .closed: break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    private func handshake(context: ChannelHandlerContext) {
        guard let ssl, state == .handshaking else { return }
        let rv = SSL_do_handshake(ssl)
        writeCiphertext(context: context, flush: true)
        if rv == 1 {
            state = .active
            var data: UnsafePointer<UInt8>?
            var length: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &data, &length)
            let alpn = length > 0 ? makeString(data, Int(length)) : nil
            context.fireUserInboundEventTriggered(TLSHandshakeCompleted(alpnProtocol: alpn))
            let held = heldWrites
            heldWrites.removeAll()
            for (buffer, promise) in held { encrypt(buffer, promise: promise, context: context) }
            if !held.isEmpty { writeCiphertext(context: context, flush: true) }
            readPlaintext(context: context)
            return
        }
        let error = SSL_get_error(ssl, rv)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return }
        fail(context: context, TLSError("TLS handshake failed"))
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        guard let ssl else { return }
        while true {
            var buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
            var result: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { ptr in
                result = SSL_read(ssl, ptr.baseAddress, Int32(ptr.count))
                return max(Int(result), 0)
            }
            if result > 0 {
                context.fireChannelRead(wrapInboundOut(buffer))
                continue
            }
            let error = SSL_get_error(ssl, result)
            if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { break }
            if error == SSL_ERROR_ZERO_RETURN { // peer sent close_notify
                writeCiphertext(context: context, flush: true)
                context.close(promise: nil)
                return
            }
            fail(context: context, TLSError("TLS read failed"))
            return
        }
        writeCiphertext(context: context, flush: true) // post-handshake messages, key updates
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .handshaking: heldWrites.append((buffer, promise))
        case .active: encrypt(buffer, promise: promise, context: context)
        case .closing, .closed: promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if state == .active { writeCiphertext(context: context, flush: true) }
    }

    private func encrypt(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        guard let ssl else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let ok = buffer.withUnsafeReadableBytes { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let n = SSL_write(ssl, bytes.baseAddress! + offset, Int32(bytes.count - offset))
                if n <= 0 { return false }
                offset += Int(n)
            }
            return true
        }
        if !ok {
            promise?.fail(TLSError("TLS write failed"))
            fail(context: context, TLSError("TLS write failed"))
            return
        }
        if let promise { flushPromises.append(promise) }
    }

    /// Moves everything OpenSSL produced into the channel, completing the write promises of the
    /// plaintext it came from when the ciphertext is written.
    private func writeCiphertext(context: ChannelHandlerContext, flush: Bool) {
        guard let wbio else { return }
        let pending = Int(vs_bio_pending(wbio))
        let promises = flushPromises
        flushPromises.removeAll()
        guard pending > 0 else {
            promises.forEach { $0.succeed() }
            return
        }
        var out = context.channel.allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { ptr in
            max(Int(BIO_read(wbio, ptr.baseAddress, Int32(pending))), 0)
        }
        let promise: EventLoopPromise<Void>? = promises.isEmpty ? nil : context.eventLoop.makePromise()
        if let promise { for p in promises { promise.futureResult.cascade(to: p) } }
        if flush {
            context.writeAndFlush(wrapOutboundOut(out), promise: promise)
        } else {
            context.write(wrapOutboundOut(out), promise: promise)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .active, let ssl, mode == .all {
            state = .closing
            _ = SSL_shutdown(ssl) // queue close_notify
            writeCiphertext(context: context, flush: true)
        }
        state = .closed
        context.close(mode: mode, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, _ error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        for (_, promise) in heldWrites { promise?.fail(error) }
        heldWrites.removeAll()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
