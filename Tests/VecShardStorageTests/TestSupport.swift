import Foundation
@testable import VecShardStorage
import VecShardSchema
import VecShardPrimitives
import VecShardEngine

/// A fresh directory under /tmp, removed when the value is released.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String
    init(_ label: String = "storage") {
        path = NSTemporaryDirectory() + "vecshard-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic small vectors.
struct VectorSource {
    var rng: SplitMix64
    let dimension: Int
    init(seed: UInt64, dimension: Int) {
        rng = SplitMix64(seed: seed)
        self.dimension = dimension
    }
    mutating func vector() -> [Float] { (0..<dimension).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 } }
}

/// Exact top-k over the given live points with the engine's FLAT index: the oracle.
func oracleSearch(_ live: [String: Point], query: [Float], k: Int, metric: DistanceMetric, dimension: Int,
                  filter: (Metadata) -> Bool = { _ in true }) throws -> [(id: String, score: Float)] {
    let points = live.values.filter { filter($0.metadata) }.sorted { $0.id < $1.id }
    guard !points.isEmpty else { return [] }
    let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: metric, dimension: dimension)
    _ = try flat.add(points.flatMap(\.vector))
    return try flat.search(query, k: k).map { (points[Int($0.id)].id, $0.score) }
}

/// Asserts-free comparison helper: same ids in the same order (ties broken by id) and
/// scores within tolerance.
func sameResults(_ hits: [SearchHit], _ expected: [(id: String, score: Float)]) -> Bool {
    guard hits.count == expected.count else { return false }
    // Equal scores may come in either order; compare as (score-rounded, id) sets per position groups.
    for (h, e) in zip(hits, expected) where abs(h.score - e.score) > 1e-4 { return false }
    return Set(hits.map(\.id)) == Set(expected.map(\.id)) || hits.map(\.id) == expected.map(\.id)
}

func smallOptions(sealRows: Int = 1_000_000, automatic: Bool = false) -> StorageOptions {
    StorageOptions(thresholds: SegmentThresholds(sealRows: sealRows), walFileBytes: 64 << 10, automaticMaintenance: automatic)
}
