import VecShardPrimitives
import VecShardSchema

/// The bytes a search request may still gather, shared by its queries (they run concurrently).
public final class ResponseBudget: Sendable {
    public let limit: Int
    private let used = Locked(0)

    public init(limit: Int = SearchLimits.maxResponseBytes) { self.limit = limit }

    /// Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
    public func take(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }
}
