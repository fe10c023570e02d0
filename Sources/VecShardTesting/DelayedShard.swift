import VecShardSchema
import VecShardShardAPI

/// Test and benchmark aid (`vecshard serve --inject-search-delay-ms`): a shard whose searches

/// all wait `delay` first, to stand for a slow replica. Everything else passes straight through.
public final class DelayedShard: ShardClient {
    let inner: any ShardClient
    let delay: Duration

    public static func wrap(_ shard: any ShardClient, delay: Duration?) -> any ShardClient {
        guard let delay, delay > .zero else { return shard }
        return DelayedShard(shard, delay: delay)
    }

    init(_ inner: any ShardClient, delay: Duration) {
        self.inner = inner
        self.delay = delay
    }

    public var name: String { inner.name }
    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo { try await inner.createCollection(schema) }
    public func dropCollection(_ name: String) async throws -> Bool { try await inner.dropCollection(name) }
    public func describeCollection(_ name: String) async throws -> CollectionInfo { try await inner.describeCollection(name) }
    public func upsert(collection: String, points: [Point]) async throws -> WriteResult { try await inner.upsert(collection: collection, points: points) }
    public func delete(collection: String, ids: [String]) async throws -> WriteResult { try await inner.delete(collection: collection, ids: ids) }
    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        try await inner.get(collection: collection, ids: ids, includeVector: includeVector)
    }
    public func search(_ r: ShardSearch) async throws -> [[SearchHit]] {
        try await Task.sleep(for: delay)
        return try await inner.search(r)
    }
    public func stats() async throws -> ShardStats { try await inner.stats() }
    public func scan(_ r: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws { try await inner.scan(r, body) }
    public func flush(_ collection: String) async throws { try await inner.flush(collection) }
    public func compact(_ collection: String) async throws { try await inner.compact(collection) }
    public func sync(_ r: ReplicaSync) async throws -> SyncOutcome { try await inner.sync(r) }
}
