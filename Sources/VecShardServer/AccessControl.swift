import VecShardHTTP

/// API keys: with a key configured, requests need `Authorization: Bearer <key>`. The read-only
/// key may search and read but not write or use /admin. Probes and metrics stay open (kubelet and
/// Prometheus scrape them without credentials). The shard role's gRPC service (`/vecshard.v1.Shard/*`)
/// takes the same keys: routers and peer replicas send theirs (`--shard-api-key`, default `--api-key`);
/// the read-only key may call the reading RPCs only.
public struct AccessPolicy: Sendable {
    public var apiKey: String?
    public var readOnlyAPIKey: String?

    public init(apiKey: String? = nil, readOnlyAPIKey: String? = nil) {
        self.apiKey = apiKey.flatMap { $0.isEmpty ? nil : $0 }
        self.readOnlyAPIKey = readOnlyAPIKey.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var isEnabled: Bool { apiKey != nil || readOnlyAPIKey != nil }

    static let openRoutes: Set<String> = ["/healthz", "/readyz", "/metrics"]

    /// The shard service's RPCs that change nothing.
    static let readRPCs: Set<String> = ["/vecshard.v1.Shard/Search", "/vecshard.v1.Shard/Get", "/vecshard.v1.Shard/Scan",
                                        "/vecshard.v1.Shard/Stats", "/vecshard.v1.Shard/DescribeCollection"]

    /// Searches are POSTs but only read.
    static func isRead(_ request: ServerRequest) -> Bool {
        if request.routePattern.hasPrefix("/admin/") { return false }
        if request.routePattern.hasPrefix("/vecshard.v1.") { return readRPCs.contains(request.path) }
        if request.method == "GET" { return true }
        return request.method == "POST" && (request.routePattern.hasSuffix("/search") || request.routePattern.hasSuffix("/search/batch"))
    }

    func check(_ request: ServerRequest) -> (any HTTPResponseError)? {
        guard isEnabled, !Self.openRoutes.contains(request.routePattern) else { return nil }
        guard let header = request.headers.first(name: "authorization") else {
            return HTTPError(.unauthorized, code: "unauthorized", message: "this service needs an API key: send Authorization: Bearer <key>",
                             headers: ["www-authenticate": "Bearer"])
        }
        guard let key = Self.bearerCredentials(header) else {
            return HTTPError(.unauthorized, code: "unauthorized", message: "the Authorization header must be 'Bearer <key>'",
                             headers: ["www-authenticate": "Bearer"])
        }
        if let apiKey, Self.constantTimeEqual(key, apiKey) { return nil }
        if let readOnlyAPIKey, Self.constantTimeEqual(key, readOnlyAPIKey) {
            return Self.isRead(request) ? nil
                : HTTPError(.forbidden, code: "forbidden", message: "the read-only API key cannot \(request.method) \(request.routePattern)")
        }
        return HTTPError(.unauthorized, code: "unauthorized", message: "invalid API key", headers: ["www-authenticate": "Bearer"])
    }

    /// The credentials of `Bearer <key>`. The scheme is case-insensitive (RFC 7235 section 2.1,
    /// RFC 6750 section 2.1): `bearer`, `BEARER` and `Bearer` are the same; spaces after it are
    /// skipped.
    static func bearerCredentials(_ header: String) -> String? {
        let utf8 = header.utf8
        guard utf8.count > 7 else { return nil }
        let scheme = utf8.prefix(6)
        guard zip(scheme, "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }), utf8.dropFirst(6).first == UInt8(ascii: " ") else { return nil }
        let key = header.utf8.dropFirst(7).drop { $0 == UInt8(ascii: " ") }
        return key.isEmpty ? nil : String(decoding: key, as: UTF8.self)
    }

    /// Compares without an early exit, so timing does not reveal how much of a key matched.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return difference == 0
    }
}

/// StatefulSet pods are named `<statefulset>-<ordinal>`; every pod of a shard's StatefulSet is
/// a replica of the same shard, so the shard id is the pod name without its ordinal.
public enum PodIdentity {
    public static func shardID(fromPodName name: String) -> String? {
        guard let dash = name.lastIndex(of: "-"), dash != name.startIndex else { return nil }
        let ordinal = name[name.index(after: dash)...]
        guard !ordinal.isEmpty, ordinal.allSatisfy(\.isNumber) else { return nil }
        return String(name[..<dash])
    }
}
