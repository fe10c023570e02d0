import Foundation
import NIOCore
import VecShardCluster
import VecShardHTTP
import VecShardProto
import VecShardSchema
import VecShardShardAPI
import VecShardRouting

/// The REST/JSON data API and the operators' admin endpoints, over a `ClusterRouter`.
enum DataRoutes {
    static func add(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        route(&router, "GET", "/v1/collections", requestTimeout) { _ in
            let cluster = try handle.current
            let collections = try await cluster.listCollections()
            var w = JSONWriter()
            w.raw("{\"collections\":[")
            for (i, c) in collections.enumerated() {
                if i > 0 { w.raw(",") }
                w.collection(c)
            }
            w.raw("]}")
            return json(w)
        }
        route(&router, "PUT", "/v1/collections/{name}", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let body = try decode(CreateCollectionBody.self, request)
            let name = request.pathParameters["name"]!
            if let spec = body.index {
                // Every index knob is range-checked here, before it is narrowed for the shard protocol.
                do { try spec.validate(dimension: min(max(body.dimension, 1), VecShardEngine.maxDimension)) } catch {
                    throw ShardCallError(.invalidArgument, code: "invalid_schema", "index: \(error)")
                }
            }
            let info = try await cluster.createCollection(CreateCollectionRequest(
                name: name, dimension: UInt32(clamping: max(body.dimension, 0)), metric: body.metric,
                index: body.index.map(indexMessage), shardKey: body.shardKey ?? ""))
            var w = JSONWriter()
            w.collection(info)
            return json(w)
        }
        route(&router, "GET", "/v1/collections/{name}", requestTimeout) { request in
            let cluster = try handle.current
            var w = JSONWriter()
            w.collection(try await cluster.describeCollection(request.pathParameters["name"]!))
            return json(w)
        }
        route(&router, "DELETE", "/v1/collections/{name}", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let name = request.pathParameters["name"]!
            guard try await cluster.dropCollection(name) else {
                throw ShardCallError(.notFound, code: "collection_not_found", "collection '\(name)' does not exist")
            }
            return .json(.ok, #"{"dropped":true}"#)
        }
        route(&router, "POST", "/v1/collections/{name}/points", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let body = try decode(UpsertBody.self, request)
            guard body.points.count <= APILimits.maxUpsertPoints else {
                throw LimitError(message: "field points has \(body.points.count) points; the limit is \(APILimits.maxUpsertPoints) per request")
            }
            guard !body.points.isEmpty else { throw LimitError(message: "field points is empty") }
            let result = try await cluster.upsert(collection: request.pathParameters["name"]!, points: body.points.map(\.message))
            return .json(.ok, #"{"upserted":\#(result.applied)\#(failedReplicas(result))}"#)
        }
        route(&router, "POST", "/v1/collections/{name}/points/delete", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let body = try decode(DeleteBody.self, request)
            guard body.ids.count <= APILimits.maxDeleteIDs else {
                throw LimitError(message: "field ids has \(body.ids.count) ids; the limit is \(APILimits.maxDeleteIDs) per request")
            }
            let result = try await cluster.delete(collection: request.pathParameters["name"]!, ids: body.ids)
            return .json(.ok, #"{"deleted":\#(result.applied)\#(failedReplicas(result))}"#)
        }
        route(&router, "GET", "/v1/collections/{name}/points/{id}", requestTimeout) { request in
            let cluster = try handle.current
            let name = request.pathParameters["name"]!, id = request.pathParameters["id"]!
            guard let point = try await cluster.get(collection: name, id: id) else {
                throw ShardCallError(.notFound, code: "point_not_found", "no point with id '\(id)' in collection '\(name)'")
            }
            var w = JSONWriter()
            w.point(point)
            return json(w)
        }
        route(&router, "POST", "/v1/collections/{name}/search", requestTimeout) { request in
            let cluster = try handle.current
            let body = try decode(SearchBody.self, request)
            let query = try queryMessage(body, field: "")
            let outcome = try await cluster.search(collection: request.pathParameters["name"]!, queries: [query],
                                                   oversample: body.params?.oversample, allowPartial: body.allowPartial ?? false)
            var w = JSONWriter(capacity: 256 + 64 * (outcome.results.first?.count ?? 0))
            w.raw("{\"results\":")
            w.hits(outcome.results[0], includeMetadata: body.includeMetadata ?? true, includeVector: body.includeVector ?? false)
            shards(outcome, into: &w)
            w.raw("}")
            return json(w)
        }
        route(&router, "POST", "/v1/collections/{name}/search/batch", requestTimeout) { request in
            let cluster = try handle.current
            let body = try decode(BatchSearchBody.self, request)
            guard body.queries.count <= APILimits.maxBatchQueries else {
                throw LimitError(message: "field queries has \(body.queries.count) queries; the limit is \(APILimits.maxBatchQueries)")
            }
            guard !body.queries.isEmpty else { throw LimitError(message: "field queries is empty") }
            let queries = try body.queries.enumerated().map { try queryMessage($1, field: "queries[\($0)].") }
            let wanted = queries.reduce(0) { $0 + Int($1.params?.k ?? 10) }
            guard wanted <= APILimits.maxResultsPerRequest else {
                throw LimitError(message: "field queries asks for \(wanted) results in all (the sum of k); the limit is \(APILimits.maxResultsPerRequest) per request")
            }
            let oversamples = Set(body.queries.map { $0.params?.oversample })
            guard oversamples.count <= 1 else { throw LimitError(message: "queries of one batch must use the same params.oversample") }
            let outcome = try await cluster.search(collection: request.pathParameters["name"]!, queries: queries,
                                                   oversample: oversamples.first ?? nil, allowPartial: body.allowPartial ?? false)
            var w = JSONWriter()
            w.raw("{\"results\":[")
            for (i, hits) in outcome.results.enumerated() {
                if i > 0 { w.raw(",") }
                w.hits(hits, includeMetadata: body.queries[i].includeMetadata ?? true, includeVector: body.queries[i].includeVector ?? false)
            }
            w.raw("]")
            shards(outcome, into: &w)
            w.raw("}")
            return json(w)
        }
        addAdmin(to: &router, cluster: handle, requestTimeout: requestTimeout)
    }

    static func addAdmin(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        route(&router, "GET", "/admin/shards", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            let stats = try await cluster.stats()
            let counts = cluster.shardRequestCounts
            let replicated = Dictionary(cluster.replicatedShards.map { ($0.name, $0.replicaStates) }, uniquingKeysWith: { a, _ in a })
            var w = JSONWriter()
            w.raw("{\"shards\":[")
            for (i, s) in stats.sorted(by: { $0.shardID < $1.shardID }).enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"name\":"); w.string(s.shardID)
                w.raw(",\"state\":\"ready\",\"points\":"); w.number(s.collections.reduce(0) { $0 + $1.count })
                w.raw(",\"segments\":"); w.number(s.collections.reduce(0) { $0 + Int($1.segments) })
                w.raw(",\"memory_bytes\":"); w.number(s.memoryBytes)
                w.raw(",\"disk_bytes\":"); w.number(s.diskBytes)
                w.raw(",\"requests\":"); w.number(counts[s.shardID] ?? 0)
                if let replicas = replicated[s.shardID] {
                    w.raw(",\"replicas\":[")
                    for (j, r) in replicas.enumerated() {
                        if j > 0 { w.raw(",") }
                        w.raw("{\"address\":"); w.string(r.address); w.raw(",\"state\":"); w.string(r.state); w.raw("}")
                    }
                    w.raw("]")
                }
                w.raw(",\"collections\":[")
                for (j, c) in s.collections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.collection(c)
                }
                w.raw("],\"maintenance\":{")
                for (j, c) in s.collections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.string(c.name); w.raw(":"); w.maintenance(c)
                }
                w.raw("},\"refused_collections\":[")
                for (j, c) in s.refusedCollections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.refusedCollection(c)
                }
                w.raw("]}")
            }
            w.raw("]}")
            return json(w)
        }
        route(&router, "POST", "/admin/collections/{name}/flush", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            try await cluster.flush(request.pathParameters["name"]!)
            return .json(.ok, #"{"flushed":true}"#)
        }
        route(&router, "POST", "/admin/collections/{name}/compact", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            try await cluster.compact(request.pathParameters["name"]!)
            return .json(.ok, #"{"compacted":true}"#)
        }
        route(&router, "GET", "/admin/topology", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            let topology = cluster.table.topology
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return .json(.ok, ByteBuffer(bytes: try encoder.encode(topology)), headers: ["etag": "\"\(topology.version)\""])
        }
        route(&router, "PUT", "/admin/topology", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let proposed = try decode(Topology.self, request)
            var expected: UInt64?
            if let ifMatch = request.headers.first(name: "if-match") {
                guard let version = UInt64(ifMatch.trimmingCharacters(in: CharacterSet(charactersIn: "\" W/"))) else {
                    throw RequestBodyError(message: "If-Match must be the topology version, e.g. \"3\"; got \(ifMatch)")
                }
                expected = version
            }
            try await cluster.replaceTopology(proposed, expectedVersion: expected, makeClient: handle.makeShardClient)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return .json(.ok, ByteBuffer(bytes: try encoder.encode(proposed)), headers: ["etag": "\"\(proposed.version)\""])
        }
    }

    /// Adds a handler that runs under the request's deadline (`RequestDeadline.current`): the
    /// default timeout, or the `x-request-timeout-ms` header.
    ///
    /// Reads (`cut`) are answered 504 at the deadline and their work is cancelled: searches stop
    /// (storage and the engine look at cancellation). Writes and admin calls are not cut off
    /// half-way, so that their answer says what happened and their memory stays counted against
    /// the concurrent-request limit: a write whose deadline passed before it was applied is
    /// refused with 504 and nothing written; shard calls get the time left as `grpc-timeout`.
    private static func route(_ router: inout Router, _ method: String, _ pattern: String, _ timeout: Duration, cut: Bool = true,
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

    private static func decode<T: Decodable>(_ type: T.Type, _ request: ServerRequest) throws -> T {
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

    private static func queryMessage(_ body: SearchBody, field: String) throws -> QueryMessage {
        let k = try wholeNumber(body.k, field: "\(field)k", in: 1...APILimits.maxK) ?? 10
        func positive(_ v: Double?, _ name: String) throws -> UInt32 {
            UInt32(try wholeNumber(v, field: "\(field)params.\(name)", in: 1...1_000_000) ?? 0)
        }
        if let o = body.params?.oversample, !(1...APILimits.maxOversample).contains(o) {
            throw LimitError(message: "field \(field)params.oversample is \(o); it must be between 1 and \(APILimits.maxOversample)")
        }
        let params = SearchParamsMessage(k: UInt32(k), nprobe: try positive(body.params?.nprobe, "nprobe"), ef: try positive(body.params?.ef, "ef"),
                                         refine: try positive(body.params?.refine, "refine"), exact: body.params?.exact ?? false)
        for (name, condition) in body.filter ?? [:] where condition.values.isEmpty {
            throw LimitError(message: "field \(field)filter.\(name) is an empty list; an IN filter needs at least one value")
        }
        let filter = body.filter.map { FilterMessage(must: $0.mapValues(\.values)) }
        return QueryMessage(vector: body.vector, filter: filter, params: params, includeVector: body.includeVector ?? false,
                            includeMetadata: body.includeMetadata ?? true)
    }

    /// A count the client sent as a JSON number: nil when absent, else a whole number in `range`;
    /// otherwise 400 naming the field, the value and the range (1.5, 2^63 and -1 alike).
    static func wholeNumber(_ value: Double?, field: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let value else { return nil }
        guard value == value.rounded(.towardZero), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            let shown = value == value.rounded(.towardZero) && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
            throw LimitError(message: "field \(field) is \(shown); it must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return Int(value)
    }

    private static func indexMessage(_ spec: VecShardEngineIndexSpec) -> IndexSpecMessage {
        // Knobs of other index types are dropped, not stored: an HNSW schema never carries a pq_m.
        let ivf = spec.kind == .ivfFlat || spec.kind == .ivfPQ
        return IndexSpecMessage(type: spec.kind.rawValue, nlist: ivf ? UInt32(clamping: spec.nlist ?? 0) : 0,
                         pqM: spec.kind == .ivfPQ ? UInt32(clamping: spec.pqM ?? 0) : 0,
                         m: UInt32(clamping: spec.m), efConstruction: UInt32(clamping: spec.efConstruction), nprobe: UInt32(clamping: spec.nprobe),
                         efSearch: UInt32(clamping: spec.efSearch), refine: UInt32(clamping: spec.refine))
    }

    /// `,"failed_replicas":[...]` when a write met its quorum without some replicas.
    private static func failedReplicas(_ result: WriteResponse) -> String {
        guard !result.failedReplicas.isEmpty else { return "" }
        return #","failed_replicas":["# + result.failedReplicas.map(JSONString.quoted).joined(separator: ",") + "]"
    }

    private static func shards(_ outcome: ClusterRouter.SearchOutcome, into w: inout JSONWriter) {
        w.raw(",\"shards\":{\"asked\":"); w.number(outcome.shardsAsked)
        w.raw(",\"answered\":"); w.number(outcome.shardsAnswered)
        w.raw("}")
        if !outcome.missingShards.isEmpty {
            w.raw(",\"partial\":true,\"missing_shards\":[")
            for (i, s) in outcome.missingShards.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(s)
            }
            w.raw("]")
        }
    }

    private static func json(_ w: JSONWriter) -> ServerResponse {
        .json(.ok, ByteBuffer(bytes: w.bytes))
    }
}

import VecShardEngine
typealias VecShardEngineIndexSpec = VecShardEngine.IndexSpec
