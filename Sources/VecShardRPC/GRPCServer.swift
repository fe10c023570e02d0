import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import VecShardHTTP
import VecShardProto

/// What a handler knows about its call.
public struct GRPCCallContext: Sendable {
    /// From `grpc-timeout`, if the client sent one.
    public var deadline: ContinuousClock.Instant?
    public var headers: HTTPHeaders
}

/// One method of a service, over raw message bytes.
public enum GRPCMethodHandler: Sendable {
    case unary(@Sendable (ByteBuffer, GRPCCallContext) async throws -> [UInt8])
    /// Writes any number of response messages through the closure it is given.
    case serverStreaming(@Sendable (ByteBuffer, GRPCCallContext, @Sendable ([UInt8]) async throws -> Void) async throws -> Void)
}

/// A gRPC service (`package.Service`) and its methods, served over the HTTP/2 server as
/// `POST /package.Service/Method` with `application/grpc` length-prefixed protobuf bodies,
/// `grpc-status`/`grpc-message` trailers (trailers-only responses for errors), `grpc-timeout`
/// deadlines and a maximum message size.
public struct GRPCService: Sendable {
    public let name: String
    public var maxMessageBytes: Int
    private var methods: [String: GRPCMethodHandler] = [:]

    public init(name: String, maxMessageBytes: Int = 64 * 1024 * 1024) {
        self.name = name
        self.maxMessageBytes = maxMessageBytes
    }

    public mutating func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String, _ handler: @escaping @Sendable (Request, GRPCCallContext) async throws -> Response
    ) {
        let limits = protoLimits
        methods[method] = .unary { body, context in
            let request = try Self.decode(Request.self, body, limits: limits)
            return try await handler(request, context).serializedBytes()
        }
    }

    public mutating func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String,
        _ handler: @escaping @Sendable (Request, GRPCCallContext, @Sendable (Response) async throws -> Void) async throws -> Void
    ) {
        let limits = protoLimits
        methods[method] = .serverStreaming { body, context, send in
            let request = try Self.decode(Request.self, body, limits: limits)
            try await handler(request, context) { try await send($0.serializedBytes()) }
        }
    }

    private var protoLimits: ProtoLimits {
        var limits = ProtoLimits()
        limits.maxFieldBytes = maxMessageBytes
        return limits
    }

    private static func decode<M: ProtoMessage>(_ type: M.Type, _ body: ByteBuffer, limits: ProtoLimits) throws -> M {
        do {
            return try body.withUnsafeReadableBytes { try M(serializedBytes: $0, limits: limits) }
        } catch let error as ProtoError {
            throw GRPCError(error.kind == .resourceExhausted ? .resourceExhausted : .invalidArgument,
                            "cannot decode \(M.self): \(error.message)")
        }
    }

    /// Adds `POST /<service>/{method}` to the router, and makes the server's early refusals of
    /// `application/grpc` requests gRPC-shaped (`rejectionShaper`).
    public func install(into router: inout Router) {
        let service = self
        router.add("POST", "/\(name)/{method}", .async { request in await service.handle(request) })
        router.rejectionShaper = Self.rejectionShaper
    }

    /// An answer the HTTP server gives before any handler runs (body or header limit, no route,
    /// no key, overload, timeout) as a gRPC client reads it: HTTP 200, trailers-only, with
    /// `grpc-status` (`GRPCStatusCode(refusal:)`) and the server's message naming the limit.
    /// Requests of other content types keep the JSON error.
    public static let rejectionShaper: @Sendable (any HTTPResponseError, String) -> ServerResponse? = { error, contentType in
        guard contentType.hasPrefix("application/grpc") else { return nil }
        return trailersOnly(GRPCError(GRPCStatusCode(refusal: error.status), error.message))
    }

    /// Answers one call (what `install` routes to).
    public func handle(_ request: ServerRequest) async -> ServerResponse {
        guard request.version == .http2 else {
            return errorResponse(status: .httpVersionNotSupported, code: "http2_required", message: "gRPC requires HTTP/2")
        }
        guard let contentType = request.headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            return errorResponse(status: .unsupportedMediaType, code: "unsupported_media_type",
                                 message: "gRPC requests need content-type application/grpc, got \(request.headers.first(name: "content-type") ?? "none")")
        }
        let method = request.pathParameters["method"] ?? ""
        guard let handler = methods[method] else {
            return Self.trailersOnly(GRPCError(.unimplemented, "method \(method) is not implemented by \(name)"))
        }
        var context = GRPCCallContext(deadline: nil, headers: request.headers)
        if let timeout = request.headers.first(name: "grpc-timeout") {
            guard let ns = GRPCTimeout.parse(timeout) else {
                return Self.trailersOnly(GRPCError(.invalidArgument, "malformed grpc-timeout '\(timeout)'"))
            }
            context.deadline = ContinuousClock.now + .nanoseconds(ns)
        }
        let message: ByteBuffer
        do {
            let messages = try GRPCFraming.messages(in: request.body, maxMessageBytes: maxMessageBytes,
                                                    encoding: request.headers.first(name: "grpc-encoding"))
            guard messages.count == 1 else {
                throw GRPCError(.internal, "\(method) takes exactly one request message, got \(messages.count)")
            }
            message = messages[0]
        } catch {
            return Self.trailersOnly(Self.grpcError(error))
        }
        switch handler {
        case .unary(let run):
            let ctx = context
            do {
                let response = try await Self.withDeadline(ctx.deadline) { try await run(message, ctx) }
                var body = ByteBuffer()
                body.reserveCapacity(response.count + 5)
                GRPCFraming.frame(response, into: &body)
                return ServerResponse(status: .ok, headers: ["content-type": "application/grpc"], body: .buffer(body),
                                      trailers: ["grpc-status": "0"])
            } catch {
                return Self.trailersOnly(Self.grpcError(error))
            }
        case .serverStreaming(let run):
            let ctx = context
            return ServerResponse(status: .ok, headers: ["content-type": "application/grpc"], body: .stream { writer in
                do {
                    try await Self.withDeadline(ctx.deadline) {
                        try await run(message, ctx) { bytes in
                            var frame = ByteBuffer()
                            frame.reserveCapacity(bytes.count + 5)
                            GRPCFraming.frame(bytes, into: &frame)
                            try await writer.write(frame)
                        }
                    }
                    return ["grpc-status": "0"]
                } catch {
                    return Self.trailers(Self.grpcError(error))
                }
            })
        }
    }

    /// Runs `body`, failing with DEADLINE_EXCEEDED (and cancelling it) once `deadline` passes.
    static func withDeadline<T: Sendable>(_ deadline: ContinuousClock.Instant?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let deadline else { return try await body() }
        guard ContinuousClock.now < deadline else {
            throw GRPCError(.deadlineExceeded, "deadline exceeded before the call started")
        }
        return try await HandlerDeadline.run(until: deadline, onTimeout: {
            GRPCError(.deadlineExceeded, "deadline exceeded before the call completed")
        }, body)
    }

    static func grpcError(_ error: any Error) -> GRPCError {
        switch error {
        case let e as GRPCError: return e
        case let e as any GRPCStatusConvertible: return e.grpcError
        case is CancellationError: return GRPCError(.cancelled, "the call was cancelled")
        default: return GRPCError(.internal, "internal error: \(error)")
        }
    }

    static func trailers(_ error: GRPCError) -> HTTPHeaders {
        ["grpc-status": String(error.code.rawValue), "grpc-message": GRPCMessageEncoding.encode(error.message)]
    }

    /// An error as a trailers-only response: one HEADERS frame with the status, no body.
    static func trailersOnly(_ error: GRPCError) -> ServerResponse {
        var headers: HTTPHeaders = ["content-type": "application/grpc"]
        headers.add(contentsOf: trailers(error))
        return ServerResponse(status: .ok, headers: headers, body: .buffer(ByteBuffer()))
    }
}
