import VecShardSchema
import VecShardShardAPI

/// A shard client that passes every call to `inner`: a fault-injecting wrapper (or a test's
/// fake) implements only the calls it changes.
public protocol ForwardingShardClient: ShardClient {
    var inner: any ShardClient { get }
}

extension ForwardingShardClient {
    public var name: String { inner.name }
    public var writeBlocker: String? { inner.writeBlocker }
    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo { try await inner.createCollection(schema) }
    public func dropCollection(_ name: String) async throws -> Bool { try await inner.dropCollection(name) }
    public func describeCollection(_ name: String) async throws -> CollectionInfo { try await inner.describeCollection(name) }
    public func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        try await inner.upsert(collection: collection, points: points, version: version)
    }
    public func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        try await inner.delete(collection: collection, ids: ids, version: version)
    }
    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        try await inner.get(collection: collection, ids: ids, includeVector: includeVector)
    }
    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] { try await inner.search(request) }
    public func stats() async throws -> ShardStats { try await inner.stats() }
    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws { try await inner.scan(request, body) }
    public func flush(_ collection: String) async throws { try await inner.flush(collection) }
    public func compact(_ collection: String) async throws { try await inner.compact(collection) }
    public func sync(_ request: ReplicaSync) async throws -> SyncOutcome { try await inner.sync(request) }
    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult { try await inner.changes(request) }
    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        try await inner.apply(collection: collection, changes: changes)
    }
}
