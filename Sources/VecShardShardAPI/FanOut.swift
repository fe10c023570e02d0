import Synchronization

/// Per-shard (or per-replica) results of a fan-out, written by concurrent child tasks.
public final class ReplicaSlots<T: Sendable>: Sendable {
    private let state: Mutex<(values: [T?], errors: [ShardCallError?])>

    public init(count: Int) { state = Mutex((Array(repeating: nil, count: count), Array(repeating: nil, count: count))) }

    public func succeed(_ index: Int, _ value: T) { state.withLock { $0.values[index] = value } }
    public func fail(_ index: Int, _ error: ShardCallError) { state.withLock { $0.errors[index] = error } }
    public func take() -> (values: [T?], errors: [ShardCallError?]) { state.withLock { ($0.values, $0.errors) } }
}
