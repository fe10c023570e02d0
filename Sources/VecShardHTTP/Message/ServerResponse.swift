import NIOCore
import NIOHTTP1

/// Writes the chunks of a streamed response body. `write` suspends while the peer is slow to
/// read (flow control), so a producer never buffers more than about `streamingHighWatermark`.
public protocol ResponseBodyWriter: Sendable {
    func write(_ chunk: ByteBuffer) async throws
}

/// A response body: complete bytes, or a producer that streams chunks and returns trailers.
public enum ResponseBody: Sendable {
    case buffer(ByteBuffer)
    /// The closure writes the body and returns the trailers to send after it (HTTP/2 only;
    /// HTTP/1.1 drops them). If it throws, the stream is reset (HTTP/2) or the connection closed.
    case stream(@Sendable (any ResponseBodyWriter) async throws -> HTTPHeaders?)
}

public struct ServerResponse: Sendable {
    public var status: HTTPResponseStatus
    /// Header names should be lower case (HTTP/2 requires it; HTTP/1.1 does not care).
    public var headers: HTTPHeaders
    public var body: ResponseBody
    /// Trailers sent after a `.buffer` body (HTTP/2 only), e.g. `grpc-status`.
    public var trailers: HTTPHeaders?
    /// The HTTP/2 header list of this exact response, encoded once (see `prepared()`).
    var preparedHTTP2Headers: PreparedHeaderBlock?

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ResponseBody = .buffer(ByteBuffer()), trailers: HTTPHeaders? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.trailers = trailers
    }

    /// The same response with its HTTP/2 header list encoded once, for responses that are built
    /// once and returned many times (probes). Only for `.buffer` bodies without trailers.
    public func prepared() -> ServerResponse {
        guard case .buffer(let body) = body, trailers == nil else { return self }
        var copy = self
        copy.preparedHTTP2Headers = PreparedHeaderBlock(HeaderBlock.response(status: status, headers: headers, contentLength: body.readableBytes))
        return copy
    }

    /// A response with a JSON body (`content-type: application/json`).
    public static func json(_ status: HTTPResponseStatus = .ok, _ body: ByteBuffer, headers: HTTPHeaders = [:]) -> ServerResponse {
        var h = headers
        h.replaceOrAdd(name: "content-type", value: "application/json")
        return ServerResponse(status: status, headers: h, body: .buffer(body))
    }

    public static func json(_ status: HTTPResponseStatus = .ok, _ text: String, headers: HTTPHeaders = [:]) -> ServerResponse {
        json(status, ByteBuffer(string: text), headers: headers)
    }

    public static func text(_ status: HTTPResponseStatus = .ok, _ text: String, contentType: String = "text/plain; charset=utf-8") -> ServerResponse {
        ServerResponse(status: status, headers: ["content-type": contentType], body: .buffer(ByteBuffer(string: text)))
    }
}
