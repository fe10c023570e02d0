import VecShardEngine

/// Limits on points, checked before anything is written.
public enum PointLimits {
    /// Largest point id, in bytes of UTF-8.
    public static let maxPointIDBytes = 256
    /// Largest metadata key, in bytes of UTF-8.
    public static let maxMetadataKeyBytes = 256
    /// Largest string metadata value, in bytes of UTF-8.
    public static let maxMetadataStringBytes = 65_536
    /// Most metadata fields per point.
    public static let maxMetadataFields = 256
    /// Largest metadata of one point, in bytes: keys and string values in UTF-8, 8 per number,
    /// 1 per boolean. A search answer holds at most `SearchLimits.maxResponseBytes`, so at least
    /// a thousand points with full metadata fit in one.
    public static let maxMetadataBytes = 65_536
    /// Most points (or ids) in one upsert (or delete) call.
    public static let maxBatchPoints = 100_000
}

/// Bounds on what one search request may make a shard hold and send.
public enum SearchLimits {
    /// Largest answer to one search request (all its queries), in bytes of ids, scores, metadata
    /// and vectors as `SearchHit.byteCount` counts them. A search over it fails with
    /// `StorageError.responseTooLarge` before the rest is gathered.
    public static let maxResponseBytes = 64 * 1024 * 1024
    /// Largest k of one query (the engine's bound).
    public static let maxK = maxSearchK
    /// Most hits one request may ask for: the sum of k over its queries.
    public static let maxResultsPerRequest = 100_000
}
