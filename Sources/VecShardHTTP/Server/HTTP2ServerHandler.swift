import CNGHTTP2
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves one HTTP/2 connection with an nghttp2 server session. Requests are dispatched to the
/// router once complete; async handlers run off the event loop and their responses are submitted
/// back on it. Limits: concurrent streams (SETTINGS, enforced by nghttp2 with RST_STREAM), header
/// list size (431), body size (413 then RST_STREAM(NO_ERROR)), the route and the API key checked
/// on the header block before any body is kept (404/405/401/403), concurrent handlers (503), a
/// stalled or too slow body (408), a body the budget cannot hold beside the others
/// (RST_STREAM REFUSED_STREAM, `HTTP2ServerHandler+Budget.swift`); none of them affects other streams. Buffered bodies are bounded per
/// connection and server-wide by flow control (`HTTP2BodyBudget`); the connection-wide timeouts
/// (first request, header block, idle) end the connection with GOAWAY
/// (`HTTP2ServerHandler+Timeouts.swift`). A handler's task is cancelled when its stream is reset
/// or the connection closes.
final class HTTP2ServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let router: Router
    let limits: HTTPServerLimits
    let load: ServerLoad
    var session: NGHTTP2Session?
    var context: ChannelHandlerContext?
    var streams = HTTP2StreamTable()
    var budget: HTTP2BodyBudget
    /// The connection-wide timeouts (see HTTP2ServerHandler+Timeouts.swift), ticked by `ticker`;
    /// `timeouts.now` is the clock of the streams' body timeouts.
    var timeouts: ConnectionTimeouts
    var ticker: RepeatedTask?
    /// Streams with `receivingBody` set: only while there are any does a tick look at streams.
    var bodiesInProgress = 0
    /// The declared `content-length`s of those streams (what they will hold once complete).
    var declaredInProgress = 0
    /// Consecutive ticks the peer had no connection window left while bodies were incomplete.
    var throttledTicks = 0
    /// The stream whose request header block is being received. A header block arrives in one
    /// piece (HEADERS + CONTINUATION, nothing interleaved: RFC 9113 section 4.3), so its fields
    /// need no look-up in `streams`.
    /// Unretained (the stream table holds the stream while it is open; this is cleared when the
    /// stream closes), so the header-field callback, several per request, neither retains nor
    /// releases it.
    var headerStream: Unmanaged<HTTP2ServerStream>?
    var fieldCache = HeaderFieldCache()
    /// Closed streams kept for the next requests of this connection, linked through
    /// `nextSpare`: a request then allocates no stream object. At most `maxSpareStreams`.
    var spareStreams: HTTP2ServerStream?
    var spareCount = 0
    /// Streams answered early (413, 431, 408, or refused on their header block) whose response is
    /// still being sent: only while there are
    /// any does `onFrameSent` look up the stream of a frame.
    var earlyAnswers = 0
    /// `content-length`, compared with a request header name without making a `String`.
    private static let contentLengthName: [UInt8] = Array("content-length".utf8)
    /// Reused for every flush: after NIO has written it, it is uniquely owned again and clearing
    /// it does not allocate.
    var output = ByteBuffer()
    var flushScheduled = false
    /// A retry of `budget.grant` is scheduled (only while throttled by the server-wide budget).
    var grantRetryScheduled = false
    /// The budget has window for the peer that nghttp2 has not been told of (see `syncWindow`).
    var windowOwed = false
    var quiescing = false
    var closed = false

    /// How far beyond the body limit a declared upload may go and still be absorbed (discarded)
    /// rather than reset; bandwidth only, nothing is buffered.
    static let absorbableExcessBytes = 16 * 1024 * 1024
    /// Output buffer sizes: allocated with `initialOutputBytes`, replaced by a fresh one after a
    /// large response grew it beyond `retainedOutputBytes` (so an idle connection holds little).
    static let initialOutputBytes = 16 * 1024
    static let retainedOutputBytes = 256 * 1024
    /// The longest header field name or value (bytes as HPACK encodes them, literal) that still
    /// reaches the header callback, so that a block over the limit is answered 431 on its stream:
    /// nghttp2's HPACK decoder refuses a longer string itself (NGHTTP2_HD_MAX_NV) with a
    /// connection error, GOAWAY(COMPRESSION_ERROR), before any callback could refuse it.
    static let largestRefusableFieldBytes = 65_536
    /// Spare stream objects kept per connection (a few hundred bytes each).
    static let maxSpareStreams = 128

    init(router: Router, limits: HTTPServerLimits, load: ServerLoad) {
        self.router = router
        self.limits = limits
        self.load = load
        self.timeouts = ConnectionTimeouts(TimeoutTicks(limits))
        let budgetBytes = limits.effectiveConnectionBodyBytes
        let largest = Self.connectionWindow(limits)
        self.budget = HTTP2BodyBudget(connectionLimit: budgetBytes, globalLimit: limits.maxBufferedBodyBytes,
                                      window: min(largest, max(65_535, limits.initialConnectionWindowBytes)),
                                      maxWindow: largest, load: load)
    }

    /// The largest connection receive window advertised: never more than the connection's body budget.
    static func connectionWindow(_ limits: HTTPServerLimits) -> Int {
        max(65_535, min(limits.connectionWindowBytes, limits.effectiveConnectionBodyBytes))
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let session = NGHTTP2Session(server: true, userData: Unmanaged.passUnretained(self).toOpaque(), manualWindowUpdates: true) { cbs in
            nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, user in
                withServerHandler(user) { $0.onBeginHeaders(frame!) }
            }
            nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, nameLen, value, valueLen, _, user in
                withServerHandler(user) { $0.onHeader(frame!, name, nameLen, value, valueLen) }
            }
            nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, user in
                withServerHandler(user) { $0.onFrameReceived(frame!) }
            }
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, streamID, data, len, user in
                withServerHandler(user) { $0.onData(streamID, data, len) }
            }
            nghttp2_session_callbacks_set_on_frame_send_callback(cbs) { _, frame, user in
                withServerHandler(user) { $0.onFrameSent(frame!) }
            }
            nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, streamID, code, user in
                withServerHandler(user) { $0.onStreamClose(streamID, code) }
            }
        }
        self.session = session
        session.submitSettings([
            (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), limits.maxConcurrentStreams),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(limits.streamWindowBytes)),
            (Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), UInt32(limits.maxFrameBytes)),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(limits.maxHeaderListBytes)),
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
        ])
        session.setConnectionWindow(Int32(budget.window))
        startTicker(context)
        if context.channel.isActive { flush() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker?.cancel()
        ticker = nil
        failAllWriters()
        cancelAllHandlers()
        budget.releaseAll(load: load)
        streams.removeAll()
        while let spare = spareStreams { // unlinked one by one: no deep release chain
            spareStreams = spare.nextSpare
            spare.nextSpare = nil
        }
        spareCount = 0
        headerStream = nil
        session?.destroy()
        session = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        let buffer = unwrapInboundIn(data)
        do {
            try session.receive(buffer)
        } catch {
            // nghttp2 has queued a GOAWAY where the protocol allows one; send it, then close.
            flush()
            closeConnection()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failAllWriters()
        cancelAllHandlers()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            session?.submitGoaway()
            flush()
            closeIfDrained()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeConnection()
    }

    // MARK: nghttp2 callbacks

    func onBeginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let f = frame.pointee
        if f.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) && f.headers.cat == NGHTTP2_HCAT_REQUEST {
            let stream: HTTP2ServerStream
            if let spare = spareStreams {
                spareStreams = spare.nextSpare
                spareCount -= 1
                spare.nextSpare = nil
                spare.reuse(id: f.hd.stream_id)
                stream = spare
            } else {
                stream = HTTP2ServerStream(id: f.hd.stream_id)
            }
            streams.insert(stream)
            headerStream = Unmanaged.passUnretained(stream)
            timeouts.headerStarted()
        }
        return 0
    }

    func onHeader(_ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafePointer<UInt8>?, _ nameLen: Int,
                              _ value: UnsafePointer<UInt8>?, _ valueLen: Int) -> Int32 {
        if frame.pointee.headers.cat != NGHTTP2_HCAT_REQUEST {
            return 0 // request trailers: not used by any route; ignored
        }
        let id = frame.pointee.hd.stream_id
        if let current = headerStream, current._withUnsafeGuaranteedRef({ $0.id == id }) {
            return current._withUnsafeGuaranteedRef { addHeader(to: $0, name, nameLen, value, valueLen) }
        }
        guard let stream = streams[id] else { return 0 }
        return addHeader(to: stream, name, nameLen, value, valueLen)
    }

    @inline(__always)
    func addHeader(to stream: HTTP2ServerStream, _ name: UnsafePointer<UInt8>?, _ nameLen: Int,
                           _ value: UnsafePointer<UInt8>?, _ valueLen: Int) -> Int32 {
        stream.headerBytes += nameLen + valueLen + 32 // RFC 9113 section 6.5.2 accounting
        if stream.headerBytes > limits.maxHeaderListBytes {
            if stream.rejection == nil { stream.rejection = .headersTooLarge(limit: limits.maxHeaderListBytes) }
            return 0
        }
        guard let name, nameLen > 0 else { return 0 }
        if name[0] == UInt8(ascii: ":") {
            // :scheme and :authority are not used by any route; nghttp2 has checked them.
            switch nameLen {
            case 7 where name[1] == UInt8(ascii: "m"): stream.rawHeaders.setMethod(value, valueLen)
            case 5 where name[1] == UInt8(ascii: "p"): stream.rawHeaders.setPath(value, valueLen)
            default: break
            }
        } else {
            if stream.contentLength == nil, nameLen == 14, memcmp(name, Self.contentLengthName, 14) == 0 {
                stream.contentLength = Int(makeString(value, valueLen))
            }
            stream.rawHeaders.append(name: name, nameLen, value: value, valueLen)
        }
        return 0
    }

    func onData(_ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ len: Int) -> Int32 {
        guard let session else { return 0 }
        // Stream windows are given back at once; the connection window is what the budget meters.
        _ = nghttp2_session_consume_stream(session.raw, streamID, len)
        guard let stream = streams[streamID], stream.receivingBody else {
            giveBackWindow(budget.received(len, kept: false, load: load)) // answered early or gone: discarded
            return 0
        }
        stream.lastProgressTick = timeouts.now
        let received = (stream.body?.readableBytes ?? 0) + len
        if received > limits.maxBodyBytes {
            giveBackWindow(budget.received(len, kept: false, load: load))
            stopReceiving(stream)
            stream.rejection = .payloadTooLarge(limit: limits.maxBodyBytes)
            respondEarly(stream)
            return 0
        }
        if stream.body == nil {
            // Sized from content-length when the client sent one, up to 1 MiB: it grows from there.
            stream.body = context!.channel.allocator.buffer(capacity: limits.initialBodyCapacity(declared: stream.contentLength, received: len))
        }
        stream.body!.writeBytes(UnsafeRawBufferPointer(start: data, count: len))
        _ = budget.received(len, kept: true, load: load)
        windowOwed = true // given back, or the window grew
        if budget.throttledByGlobalBudget { scheduleGrantRetry() }
        return 0
    }

    func onFrameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let f = frame.pointee
        let type = f.hd.type
        guard type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue) else { return 0 }
        let id = f.hd.stream_id
        let current = headerStream?.takeUnretainedValue()
        if type == UInt8(NGHTTP2_HEADERS.rawValue) { // the block is complete
            headerStream = nil
            timeouts.headerEnded()
        }
        guard let stream = current?.id == id ? current : streams[id] else { return 0 }
        let endStream = f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        if type == UInt8(NGHTTP2_HEADERS.rawValue), f.headers.cat == NGHTTP2_HCAT_REQUEST {
            if stream.rejection != nil {
                respondEarly(stream)
                return 0
            }
            if let length = stream.contentLength, length > limits.maxBodyBytes {
                stream.rejection = .payloadTooLarge(limit: limits.maxBodyBytes)
                respondEarly(stream)
                return 0
            }
            if !endStream && !admit(stream) { return 0 }
        }
        if endStream {
            stream.requestComplete = true
            endReceiving(stream)
            if !stream.responseSubmitted { dispatch(stream) }
        }
        return 0
    }

    /// A header block with a body to follow: the route, the method and the key are checked now,
    /// so a refused request is answered before its body is sent and none of it is kept.
    func admit(_ stream: HTTP2ServerStream) -> Bool {
        let request = makeRequest(stream, body: ByteBuffer())
        if let refusal = router.admit(request) {
            respondEarly(stream, with: refusal)
            return false
        }
        if let length = stream.contentLength, declaredInProgress + length > budget.connectionLimit {
            // With the bodies already under way it could not be held whole: refused before any
            // of it is read (the client may retry it), so that those can complete.
            refuse(stream)
            return false
        }
        stream.request = request
        stream.receivingBody = true
        stream.lastProgressTick = timeouts.now
        bodiesInProgress += 1
        declaredInProgress += stream.contentLength ?? 0
        giveBackWindow(budget.grant(load: load)) // window withheld while the connection was idle
        if budget.throttledByGlobalBudget { scheduleGrantRetry() }
        return true
    }

    func onFrameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        guard earlyAnswers > 0 else { return 0 } // no stream can match below
        let f = frame.pointee
        // After a complete early answer (413/431) to a request still uploading, ask the client
        // to stop sending without error (RFC 9113 section 8.1).
        if f.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
           let stream = streams[f.hd.stream_id], stream.rejection != nil, !stream.requestComplete, !stream.absorbRemainingUpload {
            session?.resetStream(stream.id, code: NGHTTP2_NO_ERROR.rawValue)
        }
        return 0
    }

    func onStreamClose(_ streamID: Int32, _ code: UInt32) -> Int32 {
        if headerStream?._withUnsafeGuaranteedRef({ $0.id == streamID }) == true {
            headerStream = nil
            timeouts.headerEnded()
        }
        if let stream = streams.remove(streamID) {
            if let task = stream.handlerTask {
                // Reset by the client, or closed before its answer completed: stop the handler.
                stream.handlerTask = nil
                task.cancel()
            }
            if stream.receivingBody || stream.body != nil { stopReceiving(stream) }
            if let waiter = stream.writerWaiting {
                stream.writerWaiting = nil
                waiter.continuation.resume(throwing: HTTP2Error.streamReset(code: code))
            }
            if stream.answeredEarly { earlyAnswers -= 1 }
            if spareCount < Self.maxSpareStreams {
                stream.recycle()
                stream.nextSpare = spareStreams
                spareStreams = stream
                spareCount += 1
            }
        }
        if streams.isEmpty { timeouts.requestsFinished() }
        if quiescing { scheduleCloseCheck() }
        return 0
    }

    func readBody(_ streamID: Int32, _ buf: UnsafeMutablePointer<UInt8>, _ length: Int,
                              _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let n = min(length, stream.pending.readableBytes)
        if n > 0 {
            stream.pending.withUnsafeReadableBytes { src in
                UnsafeMutableRawPointer(buf).copyMemory(from: src.baseAddress!, byteCount: n)
            }
            stream.pending.moveReaderIndex(forwardBy: n)
        }
        if stream.pending.readableBytes == 0 {
            if stream.producerFinished {
                // Drop the bytes (a constant answer's body is shared: clearing would copy it).
                stream.pending = HTTP2ServerStream.noBytes
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                if let trailers = stream.trailers, !trailers.isEmpty {
                    flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                    var block = HeaderBlock(capacity: trailers.count)
                    block.add(headers: trailers)
                    _ = block.withNV { nghttp2_submit_trailer(session!.raw, streamID, $0, $1) }
                }
            } else {
                stream.pending.clear() // keeps its capacity for the producer's next chunks
            }
            if !stream.producerFinished && n == 0 {
                stream.dataDeferred = true
                resumeWriter(stream)
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        if stream.pending.readableBytes < limits.streamingHighWatermark { resumeWriter(stream) }
        return n
    }

    // MARK: output

    /// Coalesces the output of responses that complete in the same event-loop tick into one write.
    func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            bound.value.flushScheduled = false
            bound.value.flush()
        }
    }

    func flush() {
        guard let session, let context, context.channel.isActive else { return }
        syncWindow()
        while context.channel.isWritable || !session.wantsWrite {
            if output.capacity > Self.retainedOutputBytes {
                output = context.channel.allocator.buffer(capacity: Self.initialOutputBytes)
            } else {
                output.clear(minimumCapacity: Self.initialOutputBytes)
            }
            guard session.drainOutput(into: &output, limit: 1 << 20) else {
                closeConnection()
                return
            }
            let written = output.readableBytes
            if written == 0 { break }
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
            if written < 1 << 20 { break }
        }
        if !session.wantsIO {
            closeConnection()
        } else if quiescing {
            closeIfDrained()
        }
    }

    func scheduleCloseCheck() {
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.closeIfDrained() }
    }

    func closeIfDrained() {
        guard quiescing, streams.isEmpty, let session, !session.wantsWrite else { return }
        closeConnection()
    }

    func closeConnection() {
        guard !closed, let context else { return }
        closed = true
        context.close(promise: nil)
    }
}

/// Calls `body` with the handler behind nghttp2's `user_data` without retaining it: the handler
/// owns the session, so it outlives every callback.
@inline(__always)
private func withServerHandler<R>(_ user: UnsafeMutableRawPointer?, _ body: (HTTP2ServerHandler) -> R) -> R {
    Unmanaged<HTTP2ServerHandler>.fromOpaque(user!)._withUnsafeGuaranteedRef(body)
}

let serverBodyReader: vs_body_reader = { _, streamID, buf, length, flags, user in
    withServerHandler(user) { $0.readBody(streamID, buf!, length, flags!) }
}
