import Testing
@testable import VecShardEngine

/// Recall@10 of every index and metric against the FLAT oracle on clustered data.
@Suite("Recall against FLAT")
struct RecallTests {
    static let data = TestData(count: 3000, queries: 40, dimension: 24)

    /// Thresholds with margin below what these settings reach on this data
    /// (IVF: 6 of 16 lists; IVF_PQ: 3 sub-spaces of 8 dims, refine 10; HNSW: m 12, ef 48).
    static let thresholds: [IndexKind: Double] = [.ivfFlat: 0.9, .ivfPQ: 0.85, .hnsw: 0.95]

    @Test("approximate indexes reach the recall threshold",
          arguments: [IndexKind.ivfFlat, .ivfPQ, .hnsw], DistanceMetric.allCases)
    func recallAboveThreshold(kind: IndexKind, metric: DistanceMetric) throws {
        let data = Self.data
        let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: metric, dimension: data.dimension)
        _ = try flat.build(from: data.base)
        let index = try makeIndex(spec: testSpec(kind), metric: metric, dimension: data.dimension)
        let ids = try index.build(from: data.base)
        #expect(ids == 0..<UInt32(data.count))
        #expect(index.count == data.count)
        let params = SearchParameters(k: 10)
        let exact = try searchAll(flat, data, params)
        let found = try searchAll(index, data, params)
        let r = recall(found, exact)
        #expect(r >= Self.thresholds[kind]!, "\(kind) \(metric) recall \(r)")
        for result in found {
            #expect(result.count == 10)
            #expect(zip(result, result.dropFirst()).allSatisfy { $0.score >= $1.score }, "best first")
        }
        // `exact: true` turns any index into the oracle.
        let forced = try searchAll(index, data, SearchParameters(k: 10, exact: true))
        #expect(recall(forced, exact) == 1.0)
    }

    @Test("FLAT scores follow the metric's ordering rule", arguments: DistanceMetric.allCases)
    func flatScores(metric: DistanceMetric) throws {
        let index = try makeIndex(spec: IndexSpec(kind: .flat), metric: metric, dimension: 2)
        _ = try index.add([3, 4, 1, 0, -1, 0])
        let result = try index.search([2, 0], k: 3)
        switch metric {
        case .l2:
            // squared distances 17, 1, 9 → scores −1, −9, −17.
            #expect(result == [Neighbor(id: 1, score: -1), Neighbor(id: 2, score: -9), Neighbor(id: 0, score: -17)])
        case .ip:
            #expect(result == [Neighbor(id: 0, score: 6), Neighbor(id: 1, score: 2), Neighbor(id: 2, score: -2)])
        case .cosine:
            #expect(result.map(\.id) == [1, 0, 2])
            #expect(abs(result[0].score - 1) < 1e-6 && abs(result[1].score - 0.6) < 1e-6 && abs(result[2].score + 1) < 1e-6)
        }
    }

    @Test("HNSW inserts after the build are found and keep recall")
    func hnswIncrementalAdd() throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(.hnsw), metric: .l2, dimension: data.dimension)
        let half = data.count / 2 * data.dimension
        _ = try index.build(from: Array(data.base[..<half]))
        let second = try index.add(Array(data.base[half...]))
        #expect(second == UInt32(data.count / 2)..<UInt32(data.count))
        for id in stride(from: data.count / 2, to: data.count, by: 97) {
            let hit = try index.search(data.row(id), k: 1)
            #expect(hit.first?.id == UInt32(id))
        }
        let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: data.dimension)
        _ = try flat.build(from: data.base)
        let r = recall(try searchAll(index, data, SearchParameters(k: 10)), try searchAll(flat, data, SearchParameters(k: 10)))
        #expect(r >= 0.95, "recall after incremental add \(r)")
    }

    @Test("IVF indexes accept adds after training", arguments: [IndexKind.ivfFlat, .ivfPQ])
    func ivfAddAfterBuild(kind: IndexKind) throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(kind), metric: .l2, dimension: data.dimension)
        _ = try index.build(from: Array(data.base[..<(2000 * data.dimension)]))
        _ = try index.add(Array(data.base[(2000 * data.dimension)...]))
        #expect(index.count == data.count)
        for id in [2000, 2500, 2999] {
            let hit = try index.search(data.row(id), parameters: SearchParameters(k: 1, nprobe: 16))
            #expect(hit.first?.id == UInt32(id))
        }
    }
}
