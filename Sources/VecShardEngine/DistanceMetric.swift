/// How two vectors are compared. Every metric follows one ordering rule: a higher
/// score is closer, so one comparator merges results from any index or shard.
///
/// - `cosine`: cosine similarity in [-1, 1]. Vectors are normalized to unit length at
///   insert and queries at search, so the score is their inner product.
/// - `l2`: the NEGATIVE squared Euclidean distance (0 for identical vectors, below 0 otherwise).
/// - `ip`: the inner product, vectors stored as given.
public enum DistanceMetric: String, Sendable, Codable, CaseIterable {
    case cosine, l2, ip

    /// Code stored in index file headers.
    var fileCode: UInt32 {
        switch self {
        case .cosine: return 0
        case .l2: return 1
        case .ip: return 2
        }
    }

    init?(fileCode: UInt32) {
        switch fileCode {
        case 0: self = .cosine
        case 1: self = .l2
        case 2: self = .ip
        default: return nil
        }
    }
}
