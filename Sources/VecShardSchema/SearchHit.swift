/// One search result, from a segment, a shard or the router's merge. Scores follow the
/// engine's rule: higher is closer (`ScoreOrder`).
public struct SearchHit: Sendable, Equatable {
    public var id: String
    public var score: Float
    public var metadata: Metadata
    /// The stored vector, when the search asked for vectors.
    public var vector: [Float]?

    public init(id: String, score: Float, metadata: Metadata = [:], vector: [Float]? = nil) {
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
