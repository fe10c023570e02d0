import Foundation
import NIOCore
import VecShardCluster
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

/// The REST/JSON data API and the operators' admin endpoints, over a `ClusterRouter`: one file
/// per resource (CollectionRoutes, PointRoutes, SearchRoutes, AdminRoutes); this file holds what
/// they share: the deadline of a route, body decoding, JSON answers.
enum DataRoutes {
    static func add(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        addCollectionRoutes(to: &router, cluster: handle, requestTimeout: requestTimeout)
        addPointRoutes(to: &router, cluster: handle, requestTimeout: requestTimeout)
        addSearchRoutes(to: &router, cluster: handle, requestTimeout: requestTimeout)
        addAdminRoutes(to: &router, cluster: handle, requestTimeout: requestTimeout)
    }

    /// Adds a handler that runs under the request's deadline (`RequestDeadline.current`): the
    /// default timeout, or the `x-request-timeout-ms` header.
    ///
    /// Reads (`cut`) are answered 504 at the deadline and their work is cancelled: searches stop
    /// (storage and the engine look at cancellation). Writes and admin calls are not cut off
    /// half-way, so that their answer says what happened and their memory stays counted against
    /// the concurrent-request limit: a write whose deadline passed before it was applied is
    /// refused with 504 and nothing written; shard calls get the time left as `grpc-timeout`.
    static func route(_ router: inout Router, _ method: String, _ pattern: String, _ timeout: Duration, cut: Bool = true,
                              _ handler: @escaping @Sendable (ServerRequest) async throws -> ServerResponse) {
        router.add(method, pattern, .async { request in
            var limit = timeout
            if let header = request.headers.first(name: "x-request-timeout-ms") {
                guard let ms = Int(header), (1...600_000).contains(ms) else {
                    throw LimitError(message: "header x-request-timeout-ms must be 1 to 600000 milliseconds, got '\(header)'")
                }
                limit = .milliseconds(ms)
            }
            let deadline = ContinuousClock.now + limit
            guard cut else { return try await RequestDeadline.$current.withValue(deadline) { try await handler(request) } }
            // The handler's own answer at the deadline (a search's late shards, partial results)
            // gets `deadlineGrace` to arrive; after it, 504 and the handler is cancelled.
            return try await HandlerDeadline.run(until: deadline + deadlineGrace, onTimeout: { [limit] in HTTPError.deadlineExceeded(limit) }) {
                try await RequestDeadline.$current.withValue(deadline) { try await handler(request) }
            }
        })
    }

    /// How long after a request's deadline its handler may still answer before it is cut off.
    static let deadlineGrace: Duration = .milliseconds(50)

    static func decode<T: Decodable>(_ type: T.Type, _ request: ServerRequest) throws -> T {
        guard request.body.readableBytes > 0 else { throw RequestBodyError(message: "request body is empty; this endpoint takes JSON") }
        // The fast decoder first; when it refuses the body, Foundation's decides. The fast decoder's
        // type and range errors name the field and the range; Foundation reports an unrepresentable
        // number (1e39 as a float32, 2^63 as an Int) as invalid JSON without the field.
        let fastError: any Error
        do { return try request.body.withUnsafeReadableBytes { try FastJSON.decode(T.self, from: $0) } } catch { fastError = error }
        do {
            return try request.body.withUnsafeReadableBytes { try JSONDecoder().decode(T.self, from: Data($0)) }
        } catch {
            if case DecodingError.typeMismatch(_, let context) = fastError, context.debugDescription != "type mismatch" {
                throw RequestBodyError(fastError)
            }
            throw RequestBodyError(error)
        }
    }

    static func json(_ w: JSONWriter) -> ServerResponse {
        .json(.ok, ByteBuffer(bytes: w.bytes))
    }
}
