import VecShardProto
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
    public func createCollection(_ r: CreateCollectionRequest) async throws -> CollectionInfoMessage { try await inner.createCollection(r) }
    public func dropCollection(_ name: String) async throws -> Bool { try await inner.dropCollection(name) }
    public func describeCollection(_ name: String) async throws -> CollectionInfoMessage { try await inner.describeCollection(name) }
    public func upsert(_ r: UpsertRequest) async throws -> WriteResponse { try await inner.upsert(r) }
    public func delete(_ r: IDsRequest) async throws -> WriteResponse { try await inner.delete(r) }
    public func get(_ r: IDsRequest) async throws -> PointsResponse { try await inner.get(r) }
    public func search(_ r: SearchRequest) async throws -> SearchResponse {
        try await Task.sleep(for: delay)
        return try await inner.search(r)
    }
    public func stats() async throws -> StatsResponse { try await inner.stats() }
    public func scan(_ r: ScanRequest, _ body: @Sendable (PointsResponse) async throws -> Void) async throws { try await inner.scan(r, body) }
    public func flush(_ collection: String) async throws { try await inner.flush(collection) }
    public func compact(_ collection: String) async throws { try await inner.compact(collection) }
    public func sync(_ r: SyncRequest) async throws -> SyncResponse { try await inner.sync(r) }
}
