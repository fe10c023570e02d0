import NIOCore
import NIOHTTP1
import VecShardHTTP
import VecShardProto

/// Calls gRPC methods over the project's HTTP/2 client: framing, `grpc-timeout` from the
/// deadline, status from trailers (or a trailers-only response), HTTP and transport failures
/// mapped to gRPC codes as the gRPC spec says.
public struct GRPCClient: Sendable {
    public let http: HTTP2Client
    public var maxMessageBytes: Int
    /// Sent as `authorization: Bearer <key>` on every call (the shard role checks it on gRPC too).
    public var apiKey: String?
    /// Sent as `vecshard-router-id` on every call when set (a router's identity: shards report
    /// the routers they hear from, so a rebalance can refuse to run beside another router).
    public var routerID: String?

    public init(http: HTTP2Client, maxMessageBytes: Int = 64 * 1024 * 1024, apiKey: String? = nil) {
        self.http = http
        self.maxMessageBytes = maxMessageBytes
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `path` is `/package.Service/Method`.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, _ request: Request, to peer: Peer, timeout: TimeAmount, as: Response.Type = Response.self
    ) async throws -> Response {
        let messages = try await call(path, request, to: peer, timeout: timeout)
        guard messages.count == 1 else { throw GRPCError(.internal, "\(path) answered \(messages.count) messages, expected 1") }
        return try decode(messages[0])
    }

    /// A server-streaming call; returns every message once the stream has ended.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, _ request: Request, to peer: Peer, timeout: TimeAmount, as: Response.Type = Response.self
    ) async throws -> [Response] {
        try await call(path, request, to: peer, timeout: timeout).map { try decode($0) }
    }

    /// A long-lived server-streaming call (etcd's Watch): each response message as it arrives.
    /// The sequence ends when the server ends the call (OK) or throws its status; ending the
    /// iteration (or cancelling the iterating task) resets the stream. No deadline.
    public func openServerStream<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, _ request: Request, to peer: Peer, as: Response.Type = Response.self
    ) -> AsyncThrowingStream<Response, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Response.self)
        var headers: HTTPHeaders = ["content-type": "application/grpc", "te": "trailers"]
        if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        if let routerID { headers.add(name: "vecshard-router-id", value: routerID) }
        let http = self.http
        let deframer = GRPCDeframer(maxMessageBytes: maxMessageBytes)
        let task = Task {
            do {
                let response = try await http.stream(ClientRequest(method: "POST", path: path, headers: headers, body: GRPCFraming.frame(request)),
                                                     to: peer) { chunk in
                    // On the event loop, one chunk after another for this stream.
                    do {
                        for message in try deframer.append(chunk) {
                            continuation.yield(try message.withUnsafeReadableBytes { try Response(serializedBytes: $0) })
                        }
                    } catch let error as ProtoError {
                        continuation.finish(throwing: GRPCError(.internal, "cannot decode \(Response.self) from the server: \(error.message)"))
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                guard response.status == 200 else { throw Self.grpcError(httpStatus: response.status) }
                let statusSource = response.trailers.first(name: "grpc-status") != nil ? response.trailers : response.headers
                guard let statusText = statusSource.first(name: "grpc-status"), let raw = Int(statusText) else {
                    throw GRPCError(.internal, "response to \(path) has no grpc-status")
                }
                let code = GRPCStatusCode(rawValue: raw) ?? .unknown
                guard code == .ok else { throw GRPCError(code, GRPCMessageEncoding.decode(statusSource.first(name: "grpc-message") ?? "")) }
                guard deframer.isEmpty else { throw GRPCError(.internal, "the stream of \(path) ended inside a message") }
                continuation.finish()
            } catch let error as HTTPClientError {
                continuation.finish(throwing: Self.grpcError(error))
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func decode<M: ProtoMessage>(_ message: ByteBuffer) throws -> M {
        do {
            return try message.withUnsafeReadableBytes { try M(serializedBytes: $0) }
        } catch let error as ProtoError {
            throw GRPCError(.internal, "cannot decode \(M.self) from the server: \(error.message)")
        }
    }

    private func call<Request: ProtoMessage>(_ path: String, _ request: Request, to peer: Peer, timeout: TimeAmount) async throws -> [ByteBuffer] {
        var headers: HTTPHeaders = [
            "content-type": "application/grpc",
            "te": "trailers",
            "grpc-timeout": GRPCTimeout.encode(nanoseconds: timeout.nanoseconds),
        ]
        if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        if let routerID { headers.add(name: "vecshard-router-id", value: routerID) }
        let response: ClientResponse
        do {
            // A little slack so the server's DEADLINE_EXCEEDED, which says more, usually wins.
            response = try await http.execute(ClientRequest(method: "POST", path: path, headers: headers, body: GRPCFraming.frame(request)),
                                              to: peer, timeout: timeout + .milliseconds(50))
        } catch let error as HTTPClientError {
            throw Self.grpcError(error)
        }
        guard response.status == 200 else { throw Self.grpcError(httpStatus: response.status) }
        let statusSource = response.trailers.first(name: "grpc-status") != nil ? response.trailers : response.headers
        guard let statusText = statusSource.first(name: "grpc-status"), let raw = Int(statusText) else {
            throw GRPCError(.internal, "response to \(path) has no grpc-status")
        }
        let code = GRPCStatusCode(rawValue: raw) ?? .unknown
        guard code == .ok else {
            throw GRPCError(code, GRPCMessageEncoding.decode(statusSource.first(name: "grpc-message") ?? ""))
        }
        return try GRPCFraming.messages(in: response.body, maxMessageBytes: maxMessageBytes,
                                        encoding: response.headers.first(name: "grpc-encoding"))
    }

    static func grpcError(_ error: HTTPClientError) -> GRPCError {
        switch error {
        case .deadlineExceeded: return GRPCError(.deadlineExceeded, "deadline exceeded")
        case .cancelled: return GRPCError(.cancelled, "call cancelled")
        case .connectFailed, .shutdown, .http2(.connectionClosed), .http2(.refusedStream), .http2(.connection):
            return GRPCError(.unavailable, error.description)
        case .http2(.streamReset): return GRPCError(.unavailable, error.description)
        }
    }

    /// The gRPC spec's mapping for responses that are not HTTP 200.
    static func grpcError(httpStatus: Int) -> GRPCError {
        let code: GRPCStatusCode
        switch httpStatus {
        case 400: code = .internal
        case 401: code = .unauthenticated
        case 403: code = .permissionDenied
        case 404: code = .unimplemented
        case 429, 502, 503, 504: code = .unavailable
        default: code = .unknown
        }
        return GRPCError(code, "HTTP status \(httpStatus)")
    }
}
