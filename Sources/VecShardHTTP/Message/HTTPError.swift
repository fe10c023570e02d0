import NIOCore
import NIOHTTP1

/// An error that knows its HTTP status and a stable machine-readable code. Handlers throw these;
/// the server turns them into `{"error":{"code":...,"message":...}}` with that status.
public protocol HTTPResponseError: Error {
    var status: HTTPResponseStatus { get }
    /// Stable, snake_case, e.g. `not_found`, `payload_too_large`.
    var code: String { get }
    /// Names the problem, the field and the limit: "dimension 767, collection expects 768".
    var message: String { get }
    /// Extra response headers (e.g. `allow` on 405).
    var headers: HTTPHeaders { get }
    /// The whole answer; by default `{"error":{"code":...,"message":...}}` with `status` and `headers`.
    /// An error with more to say (the shards a write reached) renders its own.
    func response() -> ServerResponse
}

extension HTTPResponseError {
    public var headers: HTTPHeaders { [:] }

    public func response() -> ServerResponse {
        errorResponse(status: status, code: code, message: message, headers: headers)
    }
}

/// The HTTP layer's own errors (framing, limits, routing).
public struct HTTPError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var code: String
    public var message: String
    public var headers: HTTPHeaders

    public init(_ status: HTTPResponseStatus, code: String, message: String, headers: HTTPHeaders = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public static func badRequest(_ message: String) -> HTTPError { HTTPError(.badRequest, code: "bad_request", message: message) }
    public static func notFound(_ message: String) -> HTTPError { HTTPError(.notFound, code: "not_found", message: message) }
    public static func payloadTooLarge(limit: Int) -> HTTPError {
        HTTPError(.payloadTooLarge, code: "payload_too_large", message: "request body exceeds the limit of \(limit) bytes")
    }
    /// A request body that made no progress for `seconds`.
    public static func requestTimeout(after timeout: TimeAmount) -> HTTPError {
        HTTPError(.requestTimeout, code: "request_timeout",
                  message: "the request body made no progress for \(timeout.nanoseconds / 1_000_000) ms (the body timeout)")
    }
    /// Every handler slot is taken: shed instead of queued.
    public static func overloaded(limit: Int) -> HTTPError {
        HTTPError(.serviceUnavailable, code: "overloaded",
                  message: "the server is handling its limit of \(limit) concurrent requests; retry later",
                  headers: ["retry-after": "1"])
    }
    /// The request's deadline passed before its handler answered (the handler is cancelled).
    public static func deadlineExceeded(_ timeout: Duration) -> HTTPError {
        let ms = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        return HTTPError(.gatewayTimeout, code: "deadline_exceeded", message: "the request did not complete within its deadline of \(ms) ms")
    }
    public static func headersTooLarge(limit: Int) -> HTTPError {
        HTTPError(.requestHeaderFieldsTooLarge, code: "header_fields_too_large", message: "request header block exceeds the limit of \(limit) bytes")
    }
}

/// Builds the JSON error body every error response of the service uses.
public func errorResponse(status: HTTPResponseStatus, code: String, message: String, headers: HTTPHeaders = [:]) -> ServerResponse {
    var text = #"{"error":{"code":"#
    JSONString.append(code, to: &text)
    text += #","message":"#
    JSONString.append(message, to: &text)
    text += "}}"
    return .json(status, text, headers: headers)
}

/// Minimal JSON string escaping for hand-built bodies (RFC 8259 section 7).
public enum JSONString {
    public static func append(_ s: String, to out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    public static func quoted(_ s: String) -> String {
        var out = ""
        append(s, to: &out)
        return out
    }
}
