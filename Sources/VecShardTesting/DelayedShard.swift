import VecShardSchema
import VecShardShardAPI

/// Test and benchmark aid (`vecshard serve --inject-search-delay-ms`): a shard whose searches
/// all wait `delay` first, to stand for a slow replica. Everything else passes straight through.
public final class DelayedShard: ForwardingShardClient {
    public let inner: any ShardClient
    let delay: Duration

    public static func wrap(_ shard: any ShardClient, delay: Duration?) -> any ShardClient {
        guard let delay, delay > .zero else { return shard }
        return DelayedShard(shard, delay: delay)
    }

    init(_ inner: any ShardClient, delay: Duration) {
        self.inner = inner
        self.delay = delay
    }

    public func search(_ r: ShardSearch) async throws -> [[SearchHit]] {
        try await Task.sleep(for: delay)
        return try await inner.search(r)
    }
}
