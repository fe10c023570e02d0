import Atomics
import CNGHTTP2
import NIOCore
import NIOHTTP1

/// How a request's result is delivered: straight to the awaiting task, or to a callback.
enum HTTP2ClientCompletion {
    case continuation(UnsafeContinuation<ClientResponse, any Error>)
    case callback((Result<ClientResponse, HTTPClientError>) -> Void)

    func callAsFunction(_ result: Result<ClientResponse, HTTPClientError>) {
        switch self {
        case .continuation(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
        case .callback(let callback): callback(result)
        }
    }
}

/// One request in flight on a client connection. Recycled by the handler once its stream has
/// closed (see `HTTP2ClientHandler.recycle`).
final class HTTP2ClientStream {
    var requestID: UInt64
    var streamID: Int32 = -1
    var status = 0
    /// Response header and trailer fields as nghttp2 delivered them (validated: lower-case ASCII
    /// names), turned into `HTTPHeaders` once the response is complete.
    var headers: [(String, String)] = []
    var trailers: [(String, String)] = []
    var body = ByteBuffer()
    var requestBody: ByteBuffer
    var completion: HTTP2ClientCompletion?
    var deadline: NIODeadline
    /// A streamed response: each DATA chunk goes here as it arrives (on the event loop) instead
    /// of into `body`.
    var onData: ((ByteBuffer) -> Void)?

    init(requestID: UInt64, requestBody: ByteBuffer, deadline: NIODeadline, completion: HTTP2ClientCompletion,
         onData: ((ByteBuffer) -> Void)?) {
        self.requestID = requestID
        self.requestBody = requestBody
        self.deadline = deadline
        self.completion = completion
        self.onData = onData
    }

    /// Makes a closed stream's object ready for another request.
    func reuse(requestID: UInt64, requestBody: ByteBuffer, deadline: NIODeadline, completion: HTTP2ClientCompletion,
               onData: ((ByteBuffer) -> Void)?) {
        self.requestID = requestID
        streamID = -1
        status = 0
        headers = []
        trailers = []
        body = ByteBuffer()
        self.requestBody = requestBody
        self.deadline = deadline
        self.completion = completion
        self.onData = onData
    }

    var isComplete: Bool { completion == nil }

    func complete(_ result: Result<ClientResponse, HTTPClientError>) {
        let completion = self.completion
        self.completion = nil
        completion?.callAsFunction(result)
    }
}

/// The nghttp2 client session of one connection: many concurrent streams, each completed by a
/// callback on the event loop. Submissions that arrive in the same event-loop tick are written
/// with one flush.
final class HTTP2ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: HTTPServerLimits
    private let authority: String
    private let scheme: String
    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var streams: [Int32: HTTP2ClientStream] = [:]
    private var byRequestID: [UInt64: HTTP2ClientStream] = [:]
    /// The stream the last callback looked up: nghttp2 delivers a response's header fields, data
    /// and close one after another for the same stream, so most lookups skip the dictionary.
    /// Cleared whenever a stream leaves `streams`.
    private var lastStream: HTTP2ClientStream?
    /// Objects of closed streams, reused for new requests (at most `maxSpareStreams`).
    private var spareStreams: [HTTP2ClientStream] = []
    static let maxSpareStreams = 128
    private let headerEncoder: RequestHeaderEncoder
    private var fieldCache = HeaderFieldCache()
    /// Reused for every flush (see `HTTP2ServerHandler.output`).
    private var output = ByteBuffer()
    private var flushScheduled = false
    private var failure: HTTPClientError?
    /// One timer per connection, armed for the earliest deadline among the open streams (or
    /// earlier: a stream may have completed since). Scheduling and cancelling a NIO timer per
    /// request costs an allocation and a linear search of the event loop's timer queue.
    private var deadlineTimer: Scheduled<Void>?
    private var armedDeadline: NIODeadline?
    /// Shared with the pool, which reads them from other threads to pick a connection.
    let outstanding: ManagedAtomic<Int>
    let draining: ManagedAtomic<Bool>

    init(limits: HTTPServerLimits, authority: String, scheme: String, outstanding: ManagedAtomic<Int>, draining: ManagedAtomic<Bool>) {
        self.limits = limits
        self.authority = authority
        self.scheme = scheme
        self.headerEncoder = RequestHeaderEncoder(scheme: scheme, authority: authority)
        self.outstanding = outstanding
        self.draining = draining
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let session = NGHTTP2Session(server: false, userData: Unmanaged.passUnretained(self).toOpaque()) { cbs in
            nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, nameLen, value, valueLen, _, user in
                clientHandler(user).onHeader(frame!, name, nameLen, value, valueLen)
            }
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, streamID, data, len, user in
                clientHandler(user).onData(streamID, data, len)
            }
            nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, user in
                clientHandler(user).onFrameReceived(frame!)
            }
            nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, streamID, code, user in
                clientHandler(user).onStreamClose(streamID, code)
            }
        }
        self.session = session
        session.submitSettings([
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(limits.streamWindowBytes)),
            (Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), UInt32(limits.maxFrameBytes)),
        ])
        session.setConnectionWindow(Int32(limits.connectionWindowBytes))
        if context.channel.isActive { flush() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        failAll(.http2(.connectionClosed))
        session?.destroy()
        session = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        flush()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        draining.store(true, ordering: .relaxed)
        failAll(.http2(.connectionClosed))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try session?.receive(unwrapInboundIn(data))
        } catch {
            failAll(.http2(error as? HTTP2Error ?? .connection("\(error)")))
            flush()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(.http2(.connection("\(error)")))
        context.close(promise: nil)
    }

    // MARK: submission (on the event loop)

    func submit(_ request: ClientRequest, requestID: UInt64, deadline: NIODeadline,
                completion: @escaping (Result<ClientResponse, HTTPClientError>) -> Void) {
        submit(request, requestID: requestID, deadline: deadline, completion: .callback(completion))
    }

    func submit(_ request: ClientRequest, requestID: UInt64, deadline: NIODeadline, completion: HTTP2ClientCompletion,
                onData: ((ByteBuffer) -> Void)? = nil) {
        guard let session, let context, failure == nil, !draining.load(ordering: .relaxed) else {
            completion(.failure(failure ?? .http2(.refusedStream)))
            return
        }
        let reader: vs_body_reader? = request.body == nil ? nil : clientBodyReader
        let id = headerEncoder.withHeaderList(for: request) { vs_submit_request(session.raw, $0, $1, reader, nil) }
        guard id > 0 else {
            completion(.failure(.http2(.connection(String(cString: nghttp2_strerror(id))))))
            return
        }
        let stream: HTTP2ClientStream
        if let spare = spareStreams.popLast() {
            spare.reuse(requestID: requestID, requestBody: request.body ?? ByteBuffer(), deadline: deadline, completion: completion,
                        onData: onData)
            stream = spare
        } else {
            stream = HTTP2ClientStream(requestID: requestID, requestBody: request.body ?? ByteBuffer(), deadline: deadline,
                                       completion: completion, onData: onData)
        }
        stream.streamID = id
        streams[id] = stream
        byRequestID[requestID] = stream
        outstanding.wrappingIncrement(ordering: .relaxed)
        // A stream without a deadline (a watch) never arms the timer.
        if deadline != .distantFuture, armedDeadline.map({ deadline < $0 }) ?? true { armDeadlineTimer(for: deadline, context: context) }
        scheduleFlush()
    }

    @inline(__always)
    private func stream(_ id: Int32) -> HTTP2ClientStream? {
        if let lastStream, lastStream.streamID == id { return lastStream }
        let found = streams[id]
        lastStream = found
        return found
    }

    private func armDeadlineTimer(for deadline: NIODeadline, context: ChannelHandlerContext) {
        deadlineTimer?.cancel()
        armedDeadline = deadline
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        deadlineTimer = context.eventLoop.scheduleTask(deadline: deadline) { bound.value.expireDeadlines() }
    }

    /// Fails every open stream whose deadline has passed and re-arms the timer for the earliest
    /// remaining one. Runs about once per deadline span when requests share one timeout.
    private func expireDeadlines() {
        deadlineTimer = nil
        armedDeadline = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        var expired: [UInt64] = []
        for stream in streams.values where !stream.isComplete && stream.deadline != .distantFuture {
            if stream.deadline <= now {
                expired.append(stream.requestID)
            } else if next.map({ stream.deadline < $0 }) ?? true {
                next = stream.deadline
            }
        }
        for requestID in expired { abandon(requestID: requestID, with: .deadlineExceeded) }
        if let next, let context { armDeadlineTimer(for: next, context: context) }
    }

    /// Resets the stream (RST_STREAM CANCEL) and fails its request with `error`.
    func abandon(requestID: UInt64, with error: HTTPClientError) {
        guard let stream = byRequestID[requestID] else { return }
        stream.complete(.failure(error))
        session?.resetStream(stream.streamID, code: NGHTTP2_CANCEL.rawValue)
        scheduleFlush()
    }

    // MARK: nghttp2 callbacks

    fileprivate func onHeader(_ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafePointer<UInt8>?, _ nameLen: Int,
                              _ value: UnsafePointer<UInt8>?, _ valueLen: Int) -> Int32 {
        guard let stream = stream(frame.pointee.hd.stream_id), let name, nameLen > 0 else { return 0 }
        let cat = frame.pointee.headers.cat
        if name[0] == UInt8(ascii: ":") {
            if nameLen == 7, let status = parseStatus(value, valueLen), status >= 200 { stream.status = status }
            return 0
        }
        guard stream.status >= 200 else { return 0 } // fields of an interim (1xx) response
        let field = fieldCache.field(name, nameLen, value, valueLen)
        if cat == NGHTTP2_HCAT_HEADERS {
            stream.trailers.append((field.name, field.value))
        } else {
            if stream.headers.isEmpty { stream.headers.reserveCapacity(8) }
            stream.headers.append((field.name, field.value))
        }
        return 0
    }

    fileprivate func onData(_ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
        guard let stream = stream(streamID) else { return 0 }
        if let onData = stream.onData {
            guard !stream.isComplete, len > 0 else { return 0 }
            var chunk = context?.channel.allocator.buffer(capacity: len) ?? ByteBuffer()
            chunk.writeBytes(UnsafeRawBufferPointer(start: data, count: len))
            onData(chunk)
        } else {
            stream.body.writeBytes(UnsafeRawBufferPointer(start: data, count: len))
        }
        return 0
    }

    fileprivate func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        if frame.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            draining.store(true, ordering: .relaxed) // the pool opens a new connection for new requests
        }
        return 0
    }

    fileprivate func onStreamClose(_ streamID: Int32, _ code: UInt32) -> Int32 {
        guard let stream = streams.removeValue(forKey: streamID) else { return 0 }
        lastStream = nil
        byRequestID.removeValue(forKey: stream.requestID)
        outstanding.wrappingDecrement(ordering: .relaxed)
        if code == NGHTTP2_NO_ERROR.rawValue && stream.status >= 200 {
            stream.complete(.success(ClientResponse(status: stream.status, headers: HTTPHeaders(stream.headers), body: stream.body,
                                                    trailers: HTTPHeaders(stream.trailers))))
        } else if code == NGHTTP2_REFUSED_STREAM.rawValue {
            stream.complete(.failure(.http2(.refusedStream)))
        } else {
            stream.complete(.failure(.http2(.streamReset(code: code))))
        }
        recycle(stream)
        return 0
    }

    /// Keeps a closed stream's object for a later request. Only streams that left `streams` and
    /// `byRequestID` come here, so nothing else refers to them.
    private func recycle(_ stream: HTTP2ClientStream) {
        guard spareStreams.count < Self.maxSpareStreams else { return }
        stream.headers = []
        stream.trailers = []
        stream.body = ByteBuffer()
        stream.requestBody = ByteBuffer()
        stream.onData = nil
        spareStreams.append(stream)
    }

    fileprivate func readBody(_ streamID: Int32, _ buf: UnsafeMutablePointer<UInt8>, _ length: Int,
                              _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = stream(streamID) else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let n = min(length, stream.requestBody.readableBytes)
        if n > 0 {
            stream.requestBody.withUnsafeReadableBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: n) }
            stream.requestBody.moveReaderIndex(forwardBy: n)
        }
        if stream.requestBody.readableBytes == 0 { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return n
    }

    // MARK: output

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            bound.value.flushScheduled = false
            bound.value.flush()
        }
    }

    private func flush() {
        guard let session, let context, context.channel.isActive else { return }
        while true {
            if output.capacity > HTTP2ServerHandler.retainedOutputBytes {
                output = context.channel.allocator.buffer(capacity: HTTP2ServerHandler.initialOutputBytes)
            } else {
                output.clear(minimumCapacity: HTTP2ServerHandler.initialOutputBytes)
            }
            guard session.drainOutput(into: &output, limit: 1 << 20) else {
                failAll(.http2(.connection("session failure")))
                context.close(promise: nil)
                return
            }
            let written = output.readableBytes
            if written == 0 { break }
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
            if written < 1 << 20 || !context.channel.isWritable { break }
        }
    }

    private func failAll(_ error: HTTPClientError) {
        if failure == nil { failure = error }
        let all = streams.values
        streams.removeAll()
        byRequestID.removeAll()
        lastStream = nil
        outstanding.store(0, ordering: .relaxed)
        for stream in all { stream.complete(.failure(error)) }
    }
}

/// A `:status` value: exactly three digits (nghttp2 has validated the field already).
private func parseStatus(_ value: UnsafePointer<UInt8>?, _ count: Int) -> Int? {
    guard let value, count == 3 else { return nil }
    var status = 0
    for i in 0..<3 {
        let digit = value[i] &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        status = status * 10 + Int(digit)
    }
    return status
}

@inline(__always)
private func clientHandler(_ user: UnsafeMutableRawPointer?) -> HTTP2ClientHandler {
    Unmanaged<HTTP2ClientHandler>.fromOpaque(user!).takeUnretainedValue()
}

private let clientBodyReader: vs_body_reader = { _, streamID, buf, length, flags, user in
    clientHandler(user).readBody(streamID, buf!, length, flags!)
}
