import VecShardPrimitives
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

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        do {
            if let existing = try? storage.collection(schema.name) {
                // PUT is idempotent: the same schema again is not an error, another one is.
                guard existing.schema == schema else {
                    throw ShardCallError(.alreadyExists, .collectionAlreadyExists,
                                         "collection '\(schema.name)' exists with another schema (dimension \(existing.schema.dimension), metric \(existing.schema.metric.rawValue), index \(existing.schema.index.kind.rawValue))")
                }
                return existing.describe().info
            }
            return try await storage.createCollection(schema).describe().info
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

    public func describeCollection(_ name: String) async throws -> CollectionInfo {
        try collection(name).describe().info
    }

    public func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        let target = try self.collection(collection)
        do {
            let receipt = try await target.upsert(points, version: version)
            return WriteResult(lsn: receipt.lsn, applied: receipt.count, version: receipt.version)
        } catch { throw storageShardError(error) }
    }

    public func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        let target = try self.collection(collection)
        do {
            let receipt = try await target.delete(ids: ids, version: version)
            return WriteResult(lsn: receipt.lsn, applied: receipt.count, version: receipt.version)
        } catch { throw storageShardError(error) }
    }

    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        let target = try self.collection(collection)
        if changes.count > PointLimits.maxBatchPoints {
            throw ShardCallError(SchemaError.batchTooLarge(count: changes.count, limit: PointLimits.maxBatchPoints))
        }
        for id in changes.deletedIDs {
            do { try CollectionSchema.validate(pointID: id) } catch { throw ShardCallError(error) }
        }
        do {
            return WriteResult(applied: try await target.apply(changes), version: (changes.versions + changes.deletedVersions).max() ?? 0)
        } catch { throw storageShardError(error) }
    }

    /// Pages hold at most 10,000 items, whatever was asked.
    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        let target = try collection(request.collection)
        let limit = min(request.limit == 0 ? 1000 : request.limit, 10_000)
        let (byID, byPoint) = try Self.predicates(request.selector)
        do {
            let page = try target.changes(afterVersion: request.afterVersion, afterID: request.afterID, limit: limit,
                                          ignoringFloor: request.ignoringFloor, where: byID, wherePoint: byPoint)
            return ChangesPageResult(changes: page.changes, more: page.more, nextVersion: page.next.version, nextID: page.next.id,
                                     tombstoneFloor: page.tombstoneFloor)
        } catch { throw storageShardError(error) }
    }

    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        let target = try self.collection(collection)
        return ids.compactMap { id in
            target.get(id).map { includeVector ? $0 : Point(id: $0.id, vector: [], metadata: $0.metadata) }
        }
    }

    /// Stops at the request's deadline (`RequestDeadline`, as `SearchDeadline` for the engine's
    /// loops): a search past it answers `deadline_exceeded` at once instead of running on.
    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        try await SearchDeadline.$current.withValue(RequestDeadline.current) { try await searchNow(request) }
    }

    private func searchNow(_ request: ShardSearch) async throws -> [[SearchHit]] {
        let target = try collection(request.collection)
        // One budget for the whole answer (the router checks the sum of k; a shard is asked for
        // k × oversample per query, so it bounds bytes, not counts): its queries run concurrently
        // and share it.
        let budget = ResponseBudget()
        @Sendable func run(_ query: ShardQuery) throws -> [SearchHit] {
            do {
                return try target.search(query.vector, parameters: query.parameters, filter: query.filter,
                                         includeVectors: query.includeVector, includeMetadata: query.includeMetadata, budget: budget)
            } catch { throw storageShardError(error) }
        }
        if request.queries.count == 1 { return [try run(request.queries[0])] }
        // Several queries (a batch search, or searches a router coalesced): answered concurrently,
        // each independently.
        let (values, errors) = await fanOut(request.queries) { try run($0) }
        if let error = errors.compactMap({ $0 }).first { throw error }
        return values.map { $0 ?? [] }
    }

    public func stats() async throws -> ShardStats {
        var stats = ShardStats(shardID: name)
        stats.collections = storage.listCollections().compactMap { try? storage.collection($0.name).describe().info }
        stats.memoryBytes = stats.collections.reduce(0) { $0 + $1.memoryBytes }
        stats.diskBytes = stats.collections.reduce(0) { $0 + $1.diskBytes }
        stats.refusedCollections = storage.refusedCollections.map {
            RefusedCollection(name: $0.name, code: $0.error.code, message: $0.error.description)
        }
        return stats
    }

    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws {
        let target = try collection(request.collection)
        let (byID, byPoint) = try Self.predicates(request.selector)
        let idsOnly = request.idsOnly
        try await target.forEachLivePoint(batchSize: request.batchSize == 0 ? 1000 : request.batchSize, where: byID) { batch in
            let points = byPoint.map { p in batch.filter { p($0.id, $0.metadata) } } ?? batch
            if points.isEmpty { return }
            try await body(idsOnly ? points.map { Point(id: $0.id, vector: []) } : points)
        }
    }

    public func flush(_ collection: String) async throws {
        do { try await self.collection(collection).flush() } catch { throw storageShardError(error) }
    }

    public func compact(_ collection: String) async throws {
        do { try await self.collection(collection).compact(force: true) } catch { throw storageShardError(error) }
    }

    /// A placement selector as storage predicates: on ids (rendezvous over a shard list) or on
    /// points (a whole layout, which reads the shard key from the metadata).
    static func predicates(_ selector: PlacementSelector?) throws
        -> (byID: (@Sendable (String) -> Bool)?, byPoint: (@Sendable (String, Metadata) -> Bool)?) {
        guard let selector else { return (nil, nil) }
        let owner = selector.owner, exclude = selector.exclude
        if let routing = selector.routing {
            let layout = Topology(version: 1, groups: routing.groups.map { ShardGroup(name: $0.name, shards: $0.shards.map { ShardDescriptor(name: $0) }) },
                                  collections: ["c": CollectionRouting(shardKey: routing.shardKey, groups: routing.valueGroups, defaultGroup: routing.defaultGroup)])
            let table: RoutingTable
            do { table = try RoutingTable(layout) } catch {
                throw ShardCallError(.invalidArgument, code: "invalid_selector", "the placement selector's layout is invalid: \(error)")
            }
            let key = routing.shardKey
            return (nil, { id, metadata in
                let value = key.flatMap { metadata[$0] }?.shardKeyText
                return (table.target(collection: "c", id: id, shardKeyValue: value).shard == owner) != exclude
            })
        }
        guard !selector.shards.isEmpty else { return (nil, nil) }
        // Shard-name hashes once per request, not per row.
        let shards = selector.shards, hashes = selector.shards.map { StableHash.xxh64($0) }
        return ({ id in (shards[Placement.owner(ofIDHash: StableHash.xxh64(id), amongShardHashes: hashes)] == owner) != exclude }, nil)
    }
}
