import NIOCore
import NIOHTTP1

/// Which wire protocol carried a request.
public enum HTTPProtocolVersion: String, Sendable {
    case http1 = "HTTP/1.1"
    case http2 = "HTTP/2"
}

/// A complete request as a handler sees it: the body has been received in full (and within the
/// configured size limit) before the handler runs.
public struct ServerRequest: Sendable {
    /// Upper-case method token, e.g. `GET`.
    public var method: String
    /// The path without the query string, percent-encoding preserved.
    public var path: String
    /// The raw query string after `?`, if any.
    public var query: Substring?
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    public var version: HTTPProtocolVersion
    /// Values of `{name}` segments of the matched route pattern, percent-decoded.
    public var pathParameters: [String: String] = [:]
    /// The pattern of the route that matched, e.g. `/v1/collections/{name}` (for metrics and logs).
    public var routePattern: String = ""

    public init(method: String, target: String, headers: HTTPHeaders, body: ByteBuffer, version: HTTPProtocolVersion) {
        self.method = method
        let queryOffset = target.utf8.withContiguousStorageIfAvailable { $0.firstIndex(of: UInt8(ascii: "?")) }
            ?? target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target.utf8.distance(from: target.utf8.startIndex, to: $0) }
        if let offset = queryOffset {
            let q = target.utf8.index(target.utf8.startIndex, offsetBy: offset)
            self.path = String(target[..<q])
            self.query = target[target.utf8.index(after: q)...]
        } else {
            self.path = target
            self.query = nil
        }
        self.headers = headers
        self.body = body
        self.version = version
    }

    /// The percent-decoded value of the first query parameter named `name`.
    public func queryParameter(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == name {
                return parts.count > 1 ? percentDecode(parts[1]) : ""
            }
        }
        return nil
    }
}

/// Decodes `%XX` escapes (and `+` is kept as is: paths, not forms). Invalid escapes are kept
/// verbatim rather than rejected.
public func percentDecode<S: StringProtocol>(_ s: S) -> String {
    guard s.contains("%") else { return String(s) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(s.utf8.count)
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2,
           let hi = hexValue(it[it.startIndex]), let lo = hexValue(it[it.startIndex + 1]) {
            bytes.append(hi << 4 | lo)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

@inline(__always)
private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}
