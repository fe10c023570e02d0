import VecShardPrimitives
import VecShardSchema

/// One search result. Scores follow the engine's rule: higher is closer.
public struct SearchHit: Sendable, Equatable {
    public var id: String
    public var score: Float
    public var metadata: Metadata
    /// The stored vector, when the search asked for vectors.
    public var vector: [Float]?

    public init(id: String, score: Float, metadata: Metadata, vector: [Float]? = nil) {
        self.id = id
        self.score = score
        self.metadata = metadata
        self.vector = vector
    }
}

extension SearchHit {
    /// Bytes this hit counts for in a response budget: id, score, metadata and vector.
    public var byteCount: Int { id.utf8.count + 4 + metadata.byteCount + 4 * (vector?.count ?? 0) }
}

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
