import NIOCore
import NIOHTTP1

public struct ClientRequest: Sendable {
    public var method: String
    /// Path and query, e.g. `/v1/collections`.
    public var path: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer?

    public init(method: String = "GET", path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

public struct ClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// Trailing headers (gRPC puts `grpc-status` here).
    public var trailers: HTTPHeaders
}

/// A peer address (`host:port`).
public struct Peer: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (or `[v6]:port`).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Client errors: each says whether the request may have reached the peer.
public enum HTTPClientError: Error, CustomStringConvertible, Sendable {
    /// No connection could be made; the request was never sent.
    case connectFailed(Peer, String)
    /// The deadline passed; the stream was reset (the peer may have processed it).
    case deadlineExceeded
    /// The calling task was cancelled; the stream was reset.
    case cancelled
    case http2(HTTP2Error)
    case shutdown

    public var description: String {
        switch self {
        case .connectFailed(let peer, let why): return "cannot connect to \(peer): \(why)"
        case .deadlineExceeded: return "deadline exceeded"
        case .cancelled: return "request cancelled"
        case .http2(let e): return e.description
        case .shutdown: return "client is shut down"
        }
    }

    /// True when the request certainly was not processed by the peer, so any request may be retried.
    public var isSafeToRetry: Bool {
        switch self {
        case .connectFailed, .shutdown: return true
        case .http2(.refusedStream): return true
        default: return false
        }
    }
}
