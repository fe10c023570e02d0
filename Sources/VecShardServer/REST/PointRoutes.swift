import Foundation
import NIOCore
import VecShardCluster
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

/// `/v1/collections/{name}/points`: upsert, delete by id, get by id.
extension DataRoutes {
    static func addPointRoutes(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        route(&router, "POST", "/v1/collections/{name}/points", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let body = try decode(UpsertBody.self, request)
            guard body.points.count <= APILimits.maxUpsertPoints else {
                throw LimitError(message: "field points has \(body.points.count) points; the limit is \(APILimits.maxUpsertPoints) per request")
            }
            guard !body.points.isEmpty else { throw LimitError(message: "field points is empty") }
            let name = request.pathParameters["name"]!
            let result = try await cluster.upsert(collection: name, points: body.points.map(\.point))
            return .json(.ok, #"{"upserted":\#(result.applied)\#(failedReplicas(result))\#(token(result, name))}"#)
        }
        route(&router, "POST", "/v1/collections/{name}/points/delete", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let body = try decode(DeleteBody.self, request)
            guard body.ids.count <= APILimits.maxDeleteIDs else {
                throw LimitError(message: "field ids has \(body.ids.count) ids; the limit is \(APILimits.maxDeleteIDs) per request")
            }
            let name = request.pathParameters["name"]!
            let result = try await cluster.delete(collection: name, ids: body.ids)
            return .json(.ok, #"{"deleted":\#(result.applied)\#(failedReplicas(result))\#(token(result, name))}"#)
        }
        route(&router, "GET", "/v1/collections/{name}/points/{id}", requestTimeout) { request in
            let cluster = try handle.current
            let name = request.pathParameters["name"]!, id = request.pathParameters["id"]!
            let requirement = try readRequirement(consistency: request.queryParameter("consistency"),
                                                  token: request.queryParameter("consistency_token"), collection: name)
            guard let point = try await ReadRequirement.$current.withValue(requirement, operation: { try await cluster.get(collection: name, id: id) }) else {
                throw ShardCallError(.notFound, .pointNotFound, "no point with id '\(id)' in collection '\(name)'")
            }
            var w = JSONWriter()
            w.point(point)
            return json(w)
        }
    }

    /// `,"consistency_token":"..."`: the versions the write produced per shard, for reads that
    /// must see it.
    static func token(_ result: WriteResult, _ collection: String) -> String {
        guard !result.shardVersions.isEmpty else { return "" }
        return #","consistency_token":"# + JSONString.quoted(ConsistencyToken(collection: collection, versions: result.shardVersions).text)
    }

    /// `,"failed_replicas":[...]` when a write met its quorum without some replicas.
    static func failedReplicas(_ result: WriteResult) -> String {
        guard !result.failedReplicas.isEmpty else { return "" }
        return #","failed_replicas":["# + result.failedReplicas.map(JSONString.quoted).joined(separator: ",") + "]"
    }
}
