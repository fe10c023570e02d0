import Atomics
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a route's handler runs.
public enum RouteHandler: Sendable {
    /// Runs on the connection's event loop. Only for handlers that are cheap and never block
    /// (health probes): they keep answering even when every worker thread is busy searching.
    case inline(@Sendable (ServerRequest) throws -> ServerResponse)
    /// Runs as a task on the Swift concurrency pool, off the event loop (the default).
    case async(@Sendable (ServerRequest) async throws -> ServerResponse)
    /// The same answer to every request, whatever it carries (liveness probes). Its HTTP/2 header
    /// list is encoded once (`ServerResponse.prepared()`), and with no authorizer set an HTTP/2
    /// connection answers it without building a `ServerRequest` (see `Router.constantAnswer`).
    /// No handler runs, so the observer sees a handler time of zero.
    case constant(ServerResponse)
}

/// What happened to one request, reported to the router's observer (metrics, access log).
public struct RequestOutcome: Sendable {
    public var method: String
    /// The matched route pattern, or `unmatched` for 404/405 answers.
    public var route: String
    /// Identifies the matched route (method and pattern) uniquely in the process, so observers
    /// can key per-route state by an integer instead of hashing strings; nil when unmatched.
    public var routeID: Int?
    public var status: Int
    /// Handler time in seconds (from dispatch to the response head being ready).
    public var seconds: Double
    public var version: HTTPProtocolVersion
}

/// A constant route's answer as HTTP/2 sends it: header list encoded once, body bytes shared by
/// every response (nghttp2 copies them out). Only for complete bodies without trailers.
final class ConstantAnswer: Sendable {
    let response: ServerResponse
    let status: Int
    let http2Headers: PreparedHeaderBlock
    let body: ByteBuffer

    /// Nil unless `response` is prepared (see `ServerResponse.prepared()`).
    init?(_ response: ServerResponse) {
        guard let headers = response.preparedHTTP2Headers, case .buffer(let body) = response.body, response.trailers == nil else { return nil }
        self.response = response
        self.status = Int(response.status.code)
        self.http2Headers = headers
        self.body = body
    }
}

/// Maps method + path pattern to handlers. Patterns are `/`-separated segments; a segment
/// `{name}` matches any one non-empty segment and is passed percent-decoded in
/// `ServerRequest.pathParameters`. Literal routes are found by one dictionary look-up.
/// Built once before the server starts; immutable afterwards.
public struct Router: Sendable {
    /// Immutable and shared: resolving a request hands out a reference, not a copy of its fields.
    final class Route: Sendable {
        let id: Int
        let method: String
        let pattern: String
        let segments: [Segment]
        let handler: RouteHandler
        /// The answer of a `.constant` route with a complete body, in the form an HTTP/2
        /// connection sends it (see `constantAnswer`).
        let constant: ConstantAnswer?
        /// UTF-8 of `method` and `pattern`, compared with request bytes by `constantAnswer`.
        let methodBytes: [UInt8]
        let patternBytes: [UInt8]

        init(method: String, pattern: String, segments: [Segment], handler: RouteHandler) {
            self.id = Route.nextID.loadThenWrappingIncrement(ordering: .relaxed)
            self.method = method
            self.pattern = pattern
            self.segments = segments
            self.methodBytes = Array(method.utf8)
            self.patternBytes = Array(pattern.utf8)
            if case .constant(let response) = handler {
                let prepared = response.prepared()
                self.handler = .constant(prepared)
                self.constant = ConstantAnswer(prepared)
            } else {
                self.handler = handler
                self.constant = nil
            }
        }

        private static let nextID = ManagedAtomic<Int>(0)
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private var literalRoutes: [String: [Route]] = [:]   // path → its routes, one per method
    private var patternRoutes: [Route] = []
    /// The `.constant` routes among the literal ones, for `constantAnswer`: a few entries
    /// compared by equality, no hashing.
    private var constantRoutes: [Route] = []
    public var observer: (@Sendable (RequestOutcome) -> Void)?
    /// Checked after a route matched and before its handler runs (access control); a returned
    /// error is the answer.
    public var authorizer: (@Sendable (ServerRequest) -> (any HTTPResponseError)?)?
    /// Shapes an error the server answers before a handler runs (no route, wrong method, no
    /// key, body or header limits, overload, timeouts) for the request's `content-type`; nil
    /// keeps the JSON error. gRPC installs one: `application/grpc` requests get gRPC status
    /// trailers, which gRPC clients read, instead of an HTTP error status.
    public var rejectionShaper: (@Sendable (_ error: any HTTPResponseError, _ contentType: String) -> ServerResponse?)?

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: RouteHandler) {
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: true).map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") { return .parameter(String(part.dropFirst().dropLast())) }
            return .literal(String(part))
        }
        let route = Route(method: method, pattern: pattern, segments: segments, handler: handler)
        if segments.allSatisfy({ if case .literal = $0 { true } else { false } }) {
            literalRoutes[pattern, default: []].removeAll { $0.method == method }
            literalRoutes[pattern, default: []].append(route)
            constantRoutes.removeAll { $0.method == method && $0.pattern == pattern }
            if route.constant != nil { constantRoutes.append(route) }
        } else {
            patternRoutes.append(route)
        }
    }

    public mutating func get(_ pattern: String, _ handler: @escaping @Sendable (ServerRequest) async throws -> ServerResponse) {
        add("GET", pattern, .async(handler))
    }
    public mutating func post(_ pattern: String, _ handler: @escaping @Sendable (ServerRequest) async throws -> ServerResponse) {
        add("POST", pattern, .async(handler))
    }
    public mutating func put(_ pattern: String, _ handler: @escaping @Sendable (ServerRequest) async throws -> ServerResponse) {
        add("PUT", pattern, .async(handler))
    }
    public mutating func delete(_ pattern: String, _ handler: @escaping @Sendable (ServerRequest) async throws -> ServerResponse) {
        add("DELETE", pattern, .async(handler))
    }

    enum Resolution {
        case matched(Route, [String: String])
        case methodNotAllowed([String])
        case notFound
    }

    /// The route for `method` and `path`. A literal path shadows every pattern. Among patterns,
    /// the most specific one that takes the method wins (segment by segment from the left, a
    /// literal beats a parameter: `/c/{name}/points/delete` before `/c/{name}/points/{id}`).
    /// When no route takes the method, `Allow` lists the methods of the most specific pattern
    /// the path matches, exactly those of that route.
    func resolve(method: String, path: String) -> Resolution {
        if let byMethod = literalRoutes[path] ?? literalRoutes[normalized(path)] {
            for route in byMethod where route.method == method { return .matched(route, [:]) }
            return .methodNotAllowed(byMethod.map(\.method).sorted())
        }
        var best: (route: Route, params: [String: String])?
        var mostSpecific: Route?
        var allowed: [String] = []
        for route in patternRoutes {
            guard let params = match(route, path) else { continue }
            if route.method == method, best.map({ Self.isMoreSpecific(route, than: $0.route) }) ?? true { best = (route, params) }
            if let current = mostSpecific, current.segments == route.segments {
                allowed.append(route.method)
            } else if mostSpecific.map({ Self.isMoreSpecific(route, than: $0) }) ?? true {
                mostSpecific = route
                allowed = [route.method]
            }
        }
        if let best { return .matched(best.route, best.params) }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed.sorted())
    }

    /// Whether `a` is more specific than `b`: at the first segment where they differ in kind,
    /// `a` has a literal and `b` a parameter.
    private static func isMoreSpecific(_ a: Route, than b: Route) -> Bool {
        for (x, y) in zip(a.segments, b.segments) {
            switch (x, y) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }

    private func normalized(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    private func match(_ route: Route, _ path: String) -> [String: String]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == route.segments.count else { return nil }
        var params: [String: String] = [:]
        for (segment, part) in zip(route.segments, parts) {
            switch segment {
            case .literal(let s): if part != s { return nil }
            case .parameter(let name): params[name] = percentDecode(part)
            }
        }
        return params
    }

    /// The answer to a request for exactly the pattern of a `.constant` route (no query string,
    /// no trailing slash) with its method, reported to the observer; nil when the request needs
    /// `dispatch` (any other request, or an authorizer is set: it needs the request's headers).
    /// `dispatch` would give the same answer: such a path finds its literal routes first.
    func constantAnswer(method: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, version: HTTPProtocolVersion) -> ConstantAnswer? {
        guard authorizer == nil else { return nil }
        for route in constantRoutes where Self.equal(route.patternBytes, path) && Self.equal(route.methodBytes, method) {
            let answer = route.constant.unsafelyUnwrapped // only routes with one are listed
            observer?(RequestOutcome(method: route.method, route: route.pattern, routeID: route.id,
                                     status: answer.status, seconds: 0, version: version))
            return answer
        }
        return nil
    }

    /// `constantAnswer` for strings.
    func constantAnswer(method: String, path: String, version: HTTPProtocolVersion) -> ConstantAnswer? {
        Array(method.utf8).withUnsafeBytes { m in Array(path.utf8).withUnsafeBytes { p in constantAnswer(method: m, path: p, version: version) } }
    }

    @inline(__always)
    private static func equal(_ bytes: [UInt8], _ other: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == other.count else { return false }
        return bytes.count == 0 || bytes.withUnsafeBytes { memcmp($0.baseAddress!, other.baseAddress!, bytes.count) == 0 }
    }

    /// The answer to `error` for a request with this `content-type` (see `rejectionShaper`).
    public func rejection(_ error: any HTTPResponseError, contentType: String?) -> ServerResponse {
        if let rejectionShaper, let contentType, let shaped = rejectionShaper(error, contentType) { return shaped }
        return error.response()
    }

    /// Checks a request whose header block has arrived and whose body has not: the route, the
    /// method and the authorizer. Returns the answer that refuses it (404, 405, 401, 403; reported
    /// to the observer), or nil when its body should be read. `dispatch` checks again once the
    /// body is complete (cheap: a look-up, no handler runs here).
    public func admit(_ request: ServerRequest) -> ServerResponse? {
        switch resolve(method: request.method, path: request.path) {
        case .notFound, .methodNotAllowed:
            guard case .now(let response) = dispatch(request) else { return nil }
            return response
        case .matched(let route, let params):
            guard let authorizer else { return nil }
            var checked = request
            checked.pathParameters = params
            checked.routePattern = route.pattern
            guard let denied = authorizer(checked) else { return nil }
            let response = rejection(denied, contentType: request.headers.first(name: "content-type"))
            observe(checked, route: route, status: response.status, seconds: 0)
            return response
        }
    }

    /// What a connection should do with a request.
    public enum Dispatch: Sendable {
        /// Answer now, on the event loop.
        case now(ServerResponse)
        /// Run this off the event loop, then answer.
        case later(@Sendable () async -> ServerResponse)
    }

    /// Resolves the route and wraps the handler so that errors become JSON error responses and
    /// every outcome reaches the observer.
    public func dispatch(_ request: consuming ServerRequest) -> Dispatch {
        switch resolve(method: request.method, path: request.path) {
        case .notFound:
            let response = rejection(HTTPError.notFound("no route for \(request.method) \(request.path)"),
                                     contentType: request.headers.first(name: "content-type"))
            observe(request, route: nil, status: response.status, seconds: 0)
            return .now(response)
        case .methodNotAllowed(let allowed):
            let unique = Array(Set(allowed)).sorted()
            let error = HTTPError(.methodNotAllowed, code: "method_not_allowed",
                                     message: "\(request.method) is not allowed on \(request.path); allowed: \(unique.joined(separator: ", "))",
                                     headers: ["allow": unique.joined(separator: ", ")])
            let response = rejection(error, contentType: request.headers.first(name: "content-type"))
            observe(request, route: nil, status: response.status, seconds: 0)
            return .now(response)
        case .matched(let route, let params):
            request.pathParameters = params
            request.routePattern = route.pattern
            let start = NIODeadline.now()
            if let denied = authorizer?(request) {
                let response = rejection(denied, contentType: request.headers.first(name: "content-type"))
                observe(request, route: route, status: response.status, seconds: Self.seconds(since: start))
                return .now(response)
            }
            switch route.handler {
            case .constant(let response):
                observe(request, route: route, status: response.status, seconds: 0)
                return .now(response)
            case .inline(let handler):
                let response = Self.run { try handler(request) }
                observe(request, route: route, status: response.status, seconds: Self.seconds(since: start))
                return .now(response)
            case .async(let handler):
                let observer = self.observer
                let req = request
                return .later {
                    let response: ServerResponse
                    do { response = try await handler(req) } catch { response = Self.response(for: error) }
                    if let observer {
                        observer(RequestOutcome(method: req.method, route: route.pattern, routeID: route.id,
                                                status: Int(response.status.code), seconds: Self.seconds(since: start),
                                                version: req.version))
                    }
                    return response
                }
            }
        }
    }

    private func observe(_ request: ServerRequest, route: Route?, status: HTTPResponseStatus, seconds: Double) {
        observer?(RequestOutcome(method: request.method, route: route?.pattern ?? "unmatched", routeID: route?.id,
                                 status: Int(status.code), seconds: seconds, version: request.version))
    }

    private static func seconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1e9
    }

    private static func run(_ body: () throws -> ServerResponse) -> ServerResponse {
        do { return try body() } catch { return response(for: error) }
    }

    /// The one place where a thrown error becomes an HTTP response.
    public static func response(for error: any Error) -> ServerResponse {
        if let e = error as? any HTTPResponseError { return e.response() }
        return errorResponse(status: .internalServerError, code: "internal", message: "internal error: \(error)")
    }
}
