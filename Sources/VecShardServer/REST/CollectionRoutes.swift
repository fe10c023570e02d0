import Foundation
import NIOCore
import VecShardCluster
import VecShardEngine
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI

/// `/v1/collections`: list, create (PUT is idempotent), describe, drop.
extension DataRoutes {
    static func addCollectionRoutes(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
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
                do { try spec.validate(dimension: min(max(body.dimension, 1), maxDimension)) } catch {
                    throw ShardCallError(.invalidArgument, .invalidSchema, "index: \(error)")
                }
            }
            let schema: CollectionSchema
            do {
                schema = CollectionSchema(name: name, dimension: Int(UInt32(clamping: max(body.dimension, 0))),
                                          metric: try CollectionSchema.metric(named: body.metric),
                                          index: body.index?.schemaKnobs ?? IndexSpec(kind: .hnsw), shardKey: body.shardKey.flatMap { $0.isEmpty ? nil : $0 })
            } catch { throw shardError(error) }
            let info = try await cluster.createCollection(schema)
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
                throw ShardCallError(.notFound, .collectionNotFound, "collection '\(name)' does not exist")
            }
            return .json(.ok, #"{"dropped":true}"#)
        }
    }
}
