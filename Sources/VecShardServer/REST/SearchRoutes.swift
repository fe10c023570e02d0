import Foundation
import NIOCore
import VecShardCluster
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

/// `/v1/collections/{name}/search` and `/search/batch`: one query or a batch, merged across shards.
extension DataRoutes {
    static func addSearchRoutes(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        route(&router, "POST", "/v1/collections/{name}/search", requestTimeout) { request in
            let cluster = try handle.current
            let body = try decode(SearchBody.self, request)
            let query = try shardQuery(body, field: "")
            let name = request.pathParameters["name"]!
            let requirement = try readRequirement(consistency: body.consistency, token: body.consistencyToken, collection: name)
            let outcome = try await ReadRequirement.$current.withValue(requirement) {
                try await cluster.search(collection: name, queries: [query], oversample: body.params?.oversample, allowPartial: body.allowPartial ?? false)
            }
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
            let queries = try body.queries.enumerated().map { try shardQuery($1, field: "queries[\($0)].") }
            let wanted = queries.reduce(0) { $0 + $1.k }
            guard wanted <= APILimits.maxResultsPerRequest else {
                throw LimitError(message: "field queries asks for \(wanted) results in all (the sum of k); the limit is \(APILimits.maxResultsPerRequest) per request")
            }
            let oversamples = Set(body.queries.map { $0.params?.oversample })
            guard oversamples.count <= 1 else { throw LimitError(message: "queries of one batch must use the same params.oversample") }
            let name = request.pathParameters["name"]!
            if body.queries.contains(where: { $0.consistency != nil || $0.consistencyToken != nil }) {
                throw LimitError(message: "consistency and consistency_token are fields of the batch, not of its queries")
            }
            let requirement = try readRequirement(consistency: body.consistency, token: body.consistencyToken, collection: name)
            let outcome = try await ReadRequirement.$current.withValue(requirement) {
                try await cluster.search(collection: name, queries: queries, oversample: oversamples.first ?? nil, allowPartial: body.allowPartial ?? false)
            }
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
    }

    /// The read requirement of a search or get: `consistency` (one, majority, all; default one)
    /// and a write's `consistency_token` for `collection`; errors name the field.
    static func readRequirement(consistency: String?, token: String?, collection: String) throws -> ReadRequirement {
        var requirement = ReadRequirement()
        if let consistency {
            guard let level = ReadConsistency(rawValue: consistency) else {
                throw ShardCallError(.invalidArgument, code: "invalid_consistency",
                                     "field consistency is '\(consistency.prefix(40))'; it must be one of one, majority, all")
            }
            requirement.consistency = level
        }
        if let token {
            requirement.minVersions = try ConsistencyToken(text: token, field: "consistency_token", collection: collection).versions
        }
        return requirement
    }

    /// A query of the JSON body as the router takes it; `field` prefixes the names in errors
    /// (`queries[3].`).
    static func shardQuery(_ body: SearchBody, field: String) throws -> ShardQuery {
        let k = try wholeNumber(body.k, field: "\(field)k", in: 1...APILimits.maxK) ?? 10
        func positive(_ v: Double?, _ name: String) throws -> Int? {
            try wholeNumber(v, field: "\(field)params.\(name)", in: 1...1_000_000)
        }
        if let o = body.params?.oversample, !(1...APILimits.maxOversample).contains(o) {
            throw LimitError(message: "field \(field)params.oversample is \(o); it must be between 1 and \(APILimits.maxOversample)")
        }
        // In the order the fields were always checked: knobs, then the filter.
        let nprobe = try positive(body.params?.nprobe, "nprobe"), ef = try positive(body.params?.ef, "ef")
        let refine = try positive(body.params?.refine, "refine")
        for (name, condition) in body.filter ?? [:] where condition.values.isEmpty {
            throw LimitError(message: "field \(field)filter.\(name) is an empty list; an IN filter needs at least one value")
        }
        let filter = MetadataFilter(fields: (body.filter ?? [:]).mapValues { $0.values.count == 1 ? .equals($0.values[0]) : .oneOf($0.values) })
        return ShardQuery(vector: body.vector, filter: filter, k: k, nprobe: nprobe, ef: ef, refine: refine,
                          exact: body.params?.exact ?? false, includeVector: body.includeVector ?? false,
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

    static func shards(_ outcome: ClusterRouter.SearchOutcome, into w: inout JSONWriter) {
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
}
