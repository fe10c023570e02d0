/// The index structures the engine offers; raw values are the names used on the wire.
public enum IndexKind: String, Sendable, Codable, CaseIterable {
    case flat, ivfFlat = "ivf_flat", ivfPQ = "ivf_pq", hnsw

    var fileCode: UInt32 {
        switch self {
        case .flat: return 0
        case .ivfFlat: return 1
        case .ivfPQ: return 2
        case .hnsw: return 3
        }
    }

    init?(fileCode: UInt32) {
        switch fileCode {
        case 0: self = .flat
        case 1: self = .ivfFlat
        case 2: self = .ivfPQ
        case 3: self = .hnsw
        default: return nil
        }
    }
}
