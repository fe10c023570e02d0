import VecShardProto
import VecShardRouting
import VecShardSchema
import VecShardShardAPI
import VecShardStorage

/// A shard in this process: the storage `Shard` behind the shard protocol.
public final class LocalShard: ShardClient {
    public let name: String
    public let storage: Shard

    public init(name: String, storage: Shard) {
        self.name = name
        self.storage = storage
    }

    private func collection(_ name: String) throws -> ShardCollection {
        do { return try storage.collection(name) } catch { throw storageShardError(error) }
    }

    public func createCollection(_ request: CreateCollectionRequest) async throws -> CollectionInfoMessage {
        do {
            let schema = try CollectionSchema(message: request)
            if let existing = try? storage.collection(schema.name) {
                // PUT is idempotent: the same schema again is not an error, another one is.
                guard existing.schema == schema else {
                    throw ShardCallError(.alreadyExists, code: "collection_already_exists",
                                         "collection '\(schema.name)' exists with another schema (dimension \(existing.schema.dimension), metric \(existing.schema.metric.rawValue), index \(existing.schema.index.kind.rawValue))")
                }
                return existing.describe().message
            }
            return try await storage.createCollection(schema).describe().message
        } catch {
            throw storageShardError(error)
        }
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        do {
            try await storage.dropCollection(name)
            return true
        } catch let error as StorageError where error.kind == .notFound {
            return false
        } catch {
            throw storageShardError(error)
        }
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfoMessage {
        try collection(name).describe().message
    }

    public func upsert(_ request: UpsertRequest) async throws -> WriteResponse {
        let target = try collection(request.collection)
        let points = request.points.map { Point(message: $0) }
        do {
            let receipt = try await target.upsert(points)
            return WriteResponse(lsn: receipt.lsn, applied: UInt32(receipt.count))
        } catch { throw storageShardError(error) }
    }

    public func delete(_ request: IDsRequest) async throws -> WriteResponse {
        let target = try collection(request.collection)
        do {
            let receipt = try await target.delete(ids: request.ids)
            return WriteResponse(lsn: receipt.lsn, applied: UInt32(receipt.count))
        } catch { throw storageShardError(error) }
    }

    public func get(_ request: IDsRequest) async throws -> PointsResponse {
        let target = try collection(request.collection)
        return PointsResponse(points: request.ids.compactMap { id in
            target.get(id).map { PointMessage(id: $0.id, vector: request.includeVector ? $0.vector : [], metadata: $0.metadata.message) }
        })
    }

    public func search(_ request: SearchRequest) async throws -> SearchResponse {
        let target = try collection(request.collection)
        // One budget for the whole answer (the router checks the sum of k; a shard is asked for
        // k × oversample per query, so it bounds bytes, not counts): its queries run concurrently
        // and share it.
        let budget = ResponseBudget()
        @Sendable func run(_ query: QueryMessage) throws -> [ScoredPointMessage] {
            do {
                let hits = try target.search(query.vector, parameters: (query.params ?? SearchParamsMessage()).parameters(),
                                             filter: query.filter?.schemaFilter ?? [:], includeVectors: query.includeVector,
                                             includeMetadata: query.includeMetadata, budget: budget)
                return hits.map {
                    ScoredPointMessage(id: $0.id, score: $0.score, metadata: query.includeMetadata ? $0.metadata.message : [:],
                                       vector: $0.vector ?? [])
                }
            } catch { throw storageShardError(error) }
        }
        if request.queries.count == 1 { return SearchResponse(results: [try run(request.queries[0])]) }
        // Several queries (a batch search, or searches a router coalesced): answered concurrently,
        // each independently. Children store into slots by index and return nothing.
        let slots = ReplicaSlots<[ScoredPointMessage]>(count: request.queries.count)
        await withTaskGroup(of: Void.self) { group in
            for (i, query) in request.queries.enumerated() {
                group.addTask {
                    do { slots.succeed(i, try run(query)) } catch { slots.fail(i, storageShardError(error)) }
                }
            }
        }
        let (values, errors) = slots.take()
        if let error = errors.compactMap({ $0 }).first { throw error }
        return SearchResponse(results: values.map { $0 ?? [] })
    }

    public func stats() async throws -> StatsResponse {
        var stats = StatsResponse()
        stats.shardID = name
        stats.collections = storage.listCollections().compactMap { try? storage.collection($0.name).describe().message }
        stats.memoryBytes = stats.collections.reduce(0) { $0 + $1.memoryBytes }
        stats.diskBytes = stats.collections.reduce(0) { $0 + $1.diskBytes }
        stats.refusedCollections = storage.refusedCollections.map { refused in
            var info = CollectionInfoMessage()
            info.name = refused.name
            info.errorCode = refused.error.code
            info.errorMessage = refused.error.description
            return info
        }
        return stats
    }

    public func scan(_ request: ScanRequest, _ body: @Sendable (PointsResponse) async throws -> Void) async throws {
        let target = try collection(request.collection)
        var predicate: (@Sendable (String) -> Bool)?
        if let selector = request.selector, !selector.shards.isEmpty {
            let shards = selector.shards, owner = selector.owner
            predicate = { id in shards[Placement.owner(ofID: id, among: shards)] == owner }
        }
        let idsOnly = request.idsOnly
        try await target.forEachLivePoint(batchSize: Int(request.batchSize == 0 ? 1000 : request.batchSize), where: predicate) { points in
            try await body(PointsResponse(points: points.map {
                idsOnly ? PointMessage(id: $0.id) : PointMessage(id: $0.id, vector: $0.vector, metadata: $0.metadata.message)
            }))
        }
    }

    public func flush(_ collection: String) async throws {
        do { try await self.collection(collection).flush() } catch { throw storageShardError(error) }
    }

    public func compact(_ collection: String) async throws {
        do { try await self.collection(collection).compact(force: true) } catch { throw storageShardError(error) }
    }
}
