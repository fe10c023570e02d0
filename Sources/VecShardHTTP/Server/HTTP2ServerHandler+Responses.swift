import CNGHTTP2
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Requests and responses of an HTTP/2 connection: a complete request is dispatched to the router
/// (its handler's task recorded on the stream, within the server's concurrent-request limit),
/// early refusals are answered before the body, and response bodies are fed to nghttp2 (complete,
/// or streamed by a producer that waits for the peer).
extension HTTP2ServerHandler {
    // MARK: requests and responses

    func dispatch(_ stream: HTTP2ServerStream) {
        let router = self.router
        if let answer = stream.rawHeaders.withMethodAndPath({ router.constantAnswer(method: $0, path: $1, version: .http2) }) {
            if let body = stream.body { // a body sent to a constant route: dropped, and released
                stream.body = nil
                release(body)
            }
            submit(answer, on: stream)
            return
        }
        var request: ServerRequest
        if var admitted = stream.request {
            stream.request = nil
            admitted.body = stream.body ?? ByteBuffer()
            request = admitted
        } else {
            request = makeRequest(stream, body: stream.body ?? ByteBuffer())
        }
        if let body = stream.body {
            // Handed to the handler: no longer held by the connection.
            stream.body = nil
            release(body)
        }
        switch router.dispatch(request) {
        case .now(let response):
            submit(response, on: stream)
        case .later(let work):
            guard load.acquireRequest(limit: limits.maxConcurrentRequests) else {
                submit(router.rejection(HTTPError.overloaded(limit: limits.maxConcurrentRequests),
                                        contentType: request.headers.first(name: "content-type")), on: stream)
                return
            }
            stream.responseSubmitted = true // reserved: no second response may be started
            let bound = NIOLoopBound(self, eventLoop: context!.eventLoop)
            let id = stream.id
            let load = self.load
            stream.handlerTask = Task {
                let response = await work()
                load.releaseRequest()
                bound.eventLoop.execute {
                    let handler = bound.value
                    guard let stream = handler.streams[id] else { return } // reset meanwhile
                    stream.handlerTask = nil
                    handler.submit(response, on: stream)
                    handler.scheduleFlush()
                }
            }
        }
    }

    func makeRequest(_ stream: HTTP2ServerStream, body: ByteBuffer) -> ServerRequest {
        let (method, path) = stream.rawHeaders.withMethodAndPath { method, path in
            (pseudoHeaderValue(Self.methodName, method), pseudoHeaderValue(Self.pathName, path))
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(stream.rawHeaders.count)
        stream.rawHeaders.forEach { name, nameLength, value, valueLength in
            fields.append(fieldCache.field(name, nameLength, value, valueLength))
        }
        return ServerRequest(method: method, target: path, headers: HTTPHeaders(fields), body: body, version: .http2)
    }

    /// The request's `content-type`, read from its header bytes (for shaping an early answer).
    func contentType(of stream: HTTP2ServerStream) -> String? {
        if let request = stream.request { return request.headers.first(name: "content-type") }
        var found: String?
        stream.rawHeaders.forEach { name, nameLength, value, valueLength in
            if found == nil, nameLength == 12, memcmp(name, Self.contentTypeName, 12) == 0 { found = makeString(value, valueLength) }
        }
        return found
    }

    static let contentTypeName: [UInt8] = Array("content-type".utf8)

    /// A pseudo-header field's value as a string, through the field cache (long paths repeat).
    func pseudoHeaderValue(_ name: [UInt8], _ value: UnsafeRawBufferPointer) -> String {
        name.withUnsafeBufferPointer { name in
            fieldCache.field(name.baseAddress, name.count, value.baseAddress?.assumingMemoryBound(to: UInt8.self), value.count).value
        }
    }

    static let methodName: [UInt8] = Array(":method".utf8)
    static let pathName: [UInt8] = Array(":path".utf8)

    /// Answers `stream.rejection` (413, 431, 408) before the request is complete.
    func respondEarly(_ stream: HTTP2ServerStream) {
        guard !stream.responseSubmitted, let rejection = stream.rejection else { return }
        if let declared = stream.contentLength, rejection.status == .payloadTooLarge {
            stream.absorbRemainingUpload = declared <= limits.maxBodyBytes + Self.absorbableExcessBytes
        }
        respondEarly(stream, with: router.rejection(rejection, contentType: contentType(of: stream)))
    }

    /// Answers before the body is read; once the answer is sent, the stream is reset with
    /// NO_ERROR unless the rest of a declared upload is absorbed (see `onFrameSent`).
    func respondEarly(_ stream: HTTP2ServerStream, with response: ServerResponse) {
        guard !stream.responseSubmitted else { return }
        stopReceiving(stream)
        if stream.rejection == nil { stream.rejection = HTTPError(response.status, code: "refused", message: "") }
        stream.answeredEarly = true
        earlyAnswers += 1
        submit(response, on: stream)
    }

    func submit(_ response: ServerResponse, on stream: HTTP2ServerStream) {
        guard let session else { return }
        stream.responseSubmitted = true
        let reader: vs_body_reader?
        var contentLength: Int?
        switch response.body {
        case .buffer(let body):
            let hasTrailers = !(response.trailers?.isEmpty ?? true)
            if !hasTrailers { contentLength = body.readableBytes }
            stream.pending = body
            stream.producerFinished = true
            stream.trailers = response.trailers
            reader = body.readableBytes == 0 && !hasTrailers ? nil : serverBodyReader
        case .stream(let producer):
            stream.producerFinished = false
            reader = serverBodyReader
            startProducer(producer, on: stream)
        }
        let rv: Int32
        if let prepared = response.preparedHTTP2Headers {
            rv = prepared.withNV { vs_submit_response(session.raw, stream.id, $0, $1, reader) }
        } else {
            rv = HeaderBlock.response(status: response.status, headers: response.headers, contentLength: contentLength)
                .withNV { vs_submit_response(session.raw, stream.id, $0, $1, reader) }
        }
        if rv != 0 { session.resetStream(stream.id, code: NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    /// `submit(answer.response, on:)` without copying the response or looking at its parts.
    func submit(_ answer: ConstantAnswer, on stream: HTTP2ServerStream) {
        guard let session else { return }
        stream.responseSubmitted = true
        stream.producerFinished = true
        let reader: vs_body_reader?
        if answer.body.readableBytes > 0 {
            stream.pending = answer.body
            reader = serverBodyReader
        } else {
            reader = nil
        }
        let rv = answer.http2Headers.withNV { vs_submit_response(session.raw, stream.id, $0, $1, reader) }
        if rv != 0 { session.resetStream(stream.id, code: NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    func startProducer(_ producer: @escaping @Sendable (any ResponseBodyWriter) async throws -> HTTPHeaders?,
                               on stream: HTTP2ServerStream) {
        let bound = NIOLoopBound(self, eventLoop: context!.eventLoop)
        let writer = HTTP2StreamWriter(handler: bound, streamID: stream.id)
        let id = stream.id
        stream.handlerTask = Task {
            do {
                let trailers = try await producer(writer)
                bound.eventLoop.execute { bound.value.finishProducer(id, trailers: trailers, failed: false) }
            } catch {
                bound.eventLoop.execute { bound.value.finishProducer(id, trailers: nil, failed: true) }
            }
        }
    }

    func append(_ chunk: ByteBuffer, to streamID: Int32, continuation: CheckedContinuation<Void, any Error>) {
        guard let stream = streams[streamID], !closed else {
            continuation.resume(throwing: HTTP2Error.connectionClosed)
            return
        }
        stream.pending.writeImmutableBuffer(chunk)
        resumeData(stream)
        if stream.pending.readableBytes < limits.streamingHighWatermark {
            continuation.resume()
        } else {
            stream.writerWaiting = WaitingWriter(continuation)
        }
        scheduleFlush()
    }

    func finishProducer(_ streamID: Int32, trailers: HTTPHeaders?, failed: Bool) {
        guard let stream = streams[streamID] else { return }
        if failed {
            session?.resetStream(streamID, code: NGHTTP2_INTERNAL_ERROR.rawValue)
        } else {
            stream.handlerTask = nil
            stream.producerFinished = true
            stream.trailers = trailers
            resumeData(stream)
        }
        scheduleFlush()
    }

    func resumeData(_ stream: HTTP2ServerStream) {
        if stream.dataDeferred, let session {
            stream.dataDeferred = false
            _ = nghttp2_session_resume_data(session.raw, stream.id)
        }
    }

    func resumeWriter(_ stream: HTTP2ServerStream) {
        if let waiter = stream.writerWaiting {
            stream.writerWaiting = nil
            waiter.continuation.resume()
        }
    }

    /// The connection is closing: every running handler and producer is cancelled.
    func cancelAllHandlers() {
        guard !streams.isEmpty else { return }
        for stream in streams.values {
            stream.handlerTask?.cancel()
            stream.handlerTask = nil
        }
    }

    func failAllWriters() {
        for stream in streams.values {
            if let waiter = stream.writerWaiting {
                stream.writerWaiting = nil
                waiter.continuation.resume(throwing: HTTP2Error.connectionClosed)
            }
        }
    }
}
