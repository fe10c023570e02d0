import NIOCore
import NIOHTTP1

/// One request/response exchange on an HTTP/2 connection, owned by the connection handler and
/// touched only on its event loop. The handler recycles these objects (`recycle()` then
/// `reuse(id:)`), so every field must be returned to its initial state there.
final class HTTP2ServerStream {
    private(set) var id: Int32
    /// `:method`, `:path` and the regular request header fields as nghttp2 delivered them
    /// (already validated by it: lower-case ASCII names, no connection-specific fields), as bytes
    /// until a handler needs a `ServerRequest`; then `HTTPHeaders` need not check them again.
    var rawHeaders = RawHeaderFields()
    /// The first `content-length` the client sent, if it parsed as a number.
    var contentLength: Int?
    var headerBytes = 0
    var body: ByteBuffer?
    /// Set when the request broke a limit; it is answered early with this error.
    var rejection: HTTPError?
    /// After an early answer, let the client finish a declared, bounded upload (discarding it)
    /// instead of resetting the stream: curl 7.88 reports an error when RST_STREAM(NO_ERROR)
    /// arrives mid-upload, though RFC 9113 section 8.1 allows it.
    var absorbRemainingUpload = false
    /// The rejection has been submitted as the response (counted in the handler's `earlyAnswers`).
    var answeredEarly = false
    var requestComplete = false
    var responseSubmitted = false
    /// The request as far as its header block, built when a body follows (the route and the key
    /// are checked before the body is read); the body is added when it is complete.
    var request: ServerRequest?
    /// Body DATA is expected and kept (headers admitted, no END_STREAM yet, not answered).
    var receivingBody = false
    /// The connection tick of the last body byte (or of the header block), for the body timeout.
    var lastProgressTick = 0
    /// Ticks the body has been received while the peer had window (for the minimum body rate).
    var activeTicks = 0
    /// The task running the handler: cancelled when the client resets the stream or the
    /// connection closes before the response is complete.
    var handlerTask: Task<Void, Never>?
    // Response body state (read by the nghttp2 data provider).
    var pending = HTTP2ServerStream.noBytes
    var producerFinished = true
    var trailers: HTTPHeaders?
    var dataDeferred = false
    /// A producer waiting for `pending` to drain below the high watermark. Boxed: an optional
    /// `CheckedContinuation` (a resilient type of the standard library) costs value-witness calls
    /// on every access, and this field is checked for every response.
    var writerWaiting: WaitingWriter?
    /// The next spare stream while this one waits for reuse.
    var nextSpare: HTTP2ServerStream?

    /// One empty buffer shared by every idle stream, so neither a new nor a recycled stream
    /// allocates one.
    static let noBytes = ByteBuffer()

    init(id: Int32) { self.id = id }

    /// Drops what the finished exchange held (request body, response bytes, header storage
    /// beyond a small capacity), so a spare stream keeps no memory of it.
    func recycle() {
        rawHeaders.removeAll()
        contentLength = nil
        headerBytes = 0
        body = nil
        rejection = nil
        absorbRemainingUpload = false
        answeredEarly = false
        requestComplete = false
        responseSubmitted = false
        request = nil
        receivingBody = false
        lastProgressTick = 0
        activeTicks = 0
        handlerTask = nil
        pending = Self.noBytes
        producerFinished = true
        trailers = nil
        dataDeferred = false
        writerWaiting = nil
    }

    /// Starts a new exchange on a recycled object.
    func reuse(id: Int32) { self.id = id }
}

/// A streamed-response producer suspended until its stream's queued bytes drain.
final class WaitingWriter {
    let continuation: CheckedContinuation<Void, any Error>
    init(_ continuation: CheckedContinuation<Void, any Error>) { self.continuation = continuation }
}

/// The producer side of a streamed HTTP/2 response body.
struct HTTP2StreamWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<HTTP2ServerHandler>
    let streamID: Int32

    func write(_ chunk: ByteBuffer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            handler.eventLoop.execute {
                handler.value.append(chunk, to: streamID, continuation: continuation)
            }
        }
    }
}

