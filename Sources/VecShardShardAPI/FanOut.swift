import Synchronization

/// Per-shard (or per-replica) results of a fan-out, written by concurrent child tasks.
public final class ReplicaSlots<T: Sendable>: Sendable {
    private let state: Mutex<(values: [T?], errors: [ShardCallError?])>

    public init(count: Int) { state = Mutex((Array(repeating: nil, count: count), Array(repeating: nil, count: count))) }

    public func succeed(_ index: Int, _ value: T) { state.withLock { $0.values[index] = value } }
    public func fail(_ index: Int, _ error: ShardCallError) { state.withLock { $0.errors[index] = error } }
    public func take() -> (values: [T?], errors: [ShardCallError?]) { state.withLock { ($0.values, $0.errors) } }
}

/// Runs `body` for every item concurrently (one child task each) and returns, in the items'
/// order, each one's value or its error as a `ShardCallError`, once all have finished. The one
/// fan-out of the router (over shards), of a replicated shard (over replicas) and of a shard
/// (over the queries of a call). (Children write into slots by index and return nothing: a task
/// group over generic `(Int, Result<T, E>)` tuples crashed in release builds with Swift 6.3.1.)
public func fanOut<Item: Sendable, T: Sendable>(_ items: [Item], _ body: @escaping @Sendable (Item) async throws -> T) async
    -> (values: [T?], errors: [ShardCallError?]) {
    let slots = ReplicaSlots<T>(count: items.count)
    await withTaskGroup(of: Void.self) { group in
        for (index, item) in items.enumerated() {
            group.addTask {
                do { slots.succeed(index, try await body(item)) } catch { slots.fail(index, shardError(error)) }
            }
        }
    }
    return slots.take()
}
