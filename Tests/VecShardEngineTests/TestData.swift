@testable import VecShardEngine

/// Small seeded datasets shaped like embeddings: Gaussian clusters around random centers.
struct TestData {
    let dimension: Int
    let base: [Float]
    let queries: [Float]
    var count: Int { base.count / dimension }
    var queryCount: Int { queries.count / dimension }

    init(count: Int, queries: Int, dimension: Int, clusters: Int = 20, seed: UInt64 = 7) {
        self.dimension = dimension
        var rng = SplitMix64(seed: seed)
        func gaussian() -> Float {
            let u1 = Double(rng.next() >> 11) * 0x1.0p-53 + 1e-12
            let u2 = Double(rng.next() >> 11) * 0x1.0p-53
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
        }
        var centers = [Float]()
        for _ in 0..<(clusters * dimension) { centers.append(gaussian() * 3) }
        func draw(_ n: Int) -> [Float] {
            var out = [Float]()
            out.reserveCapacity(n * dimension)
            for _ in 0..<n {
                let c = Int(rng.next() % UInt64(clusters))
                for d in 0..<dimension { out.append(centers[c * dimension + d] + gaussian()) }
            }
            return out
        }
        self.base = draw(count)
        self.queries = draw(queries)
    }

    func query(_ i: Int) -> [Float] { Array(queries[(i * dimension)..<((i + 1) * dimension)]) }
    func row(_ i: Int) -> [Float] { Array(base[(i * dimension)..<((i + 1) * dimension)]) }
}

/// Mean fraction of the exact top-k ids found by an approximate search.
func recall(_ found: [[Neighbor]], _ exact: [[Neighbor]]) -> Double {
    var total = 0.0
    for (f, e) in zip(found, exact) {
        let truth = Set(e.map(\.id))
        guard !truth.isEmpty else { total += 1; continue }
        total += Double(f.filter { truth.contains($0.id) }.count) / Double(truth.count)
    }
    return total / Double(exact.count)
}

/// The indexes under test, small enough for debug builds.
func testSpec(_ kind: IndexKind, threads: Int? = 2) -> IndexSpec {
    switch kind {
    case .flat: return IndexSpec(kind: .flat)
    case .ivfFlat: return IndexSpec(kind: .ivfFlat, nlist: 16, nprobe: 6, kmeansIterations: 8, buildThreads: threads)
    case .ivfPQ:
        return IndexSpec(kind: .ivfPQ, nlist: 16, nprobe: 6, refine: 10, kmeansIterations: 6, buildThreads: threads)
    case .hnsw: return IndexSpec(kind: .hnsw, m: 12, efConstruction: 64, efSearch: 48, buildThreads: threads)
    }
}

func searchAll(_ index: any VectorIndex, _ data: TestData, _ parameters: SearchParameters) throws -> [[Neighbor]] {
    try (0..<data.queryCount).map { try index.search(data.query($0), parameters: parameters) }
}

func temporaryPath(_ name: String) -> String {
    "/tmp/vecshard-engine-tests-\(getpid())-\(name)"
}

#if canImport(Glibc)
import VecShardPrimitives
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
