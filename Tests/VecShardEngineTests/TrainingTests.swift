import Testing
@testable import VecShardEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Training")
struct TrainingTests {
    static let data = TestData(count: 2500, queries: 10, dimension: 16, seed: 41)

    @Test("k-means is deterministic for a seed, whatever the thread count")
    func kmeansDeterminism() {
        let data = Self.data
        func centroids(seed: UInt64, threads: Int) -> [Float] {
            data.base.withUnsafeBufferPointer {
                KMeans(k: 20, iterations: 5, maxPointsPerCentroid: 64, seed: seed, threads: threads)
                    .train($0.baseAddress!, count: data.count, dimension: data.dimension)
            }
        }
        let a = centroids(seed: 1, threads: 1)
        #expect(a == centroids(seed: 1, threads: 2))
        #expect(a == centroids(seed: 1, threads: 1))
        #expect(a != centroids(seed: 2, threads: 1))
        #expect(a.allSatisfy { $0.isFinite })
    }

    @Test("k-means lowers the quantization error of its initial centroids")
    func kmeansConverges() {
        let data = Self.data
        func error(_ c: [Float]) -> Double {
            var total = 0.0
            for r in 0..<data.count {
                let row = data.row(r)
                total += Double((0..<20).map { VectorKernels.l2Squared(row, Array(c[($0 * 16)..<(($0 + 1) * 16)])) }.min()!)
            }
            return total
        }
        let start = data.base.withUnsafeBufferPointer {
            KMeans(k: 20, iterations: 0, maxPointsPerCentroid: 64, seed: 3, threads: 1).train($0.baseAddress!, count: data.count, dimension: 16)
        }
        let trained = data.base.withUnsafeBufferPointer {
            KMeans(k: 20, iterations: 10, maxPointsPerCentroid: 64, seed: 3, threads: 1).train($0.baseAddress!, count: data.count, dimension: 16)
        }
        #expect(error(trained) < error(start))
    }

    @Test("IVF and HNSW builds are identical for the same seed", arguments: [IndexKind.ivfFlat, .ivfPQ, .hnsw])
    func buildDeterminism(kind: IndexKind) throws {
        let data = Self.data
        func fileBytes(threads: Int) throws -> [UInt8] {
            let index = try makeIndex(spec: testSpec(kind, threads: threads), metric: .l2, dimension: data.dimension)
            _ = try index.build(from: data.base)
            let path = temporaryPath("determinism-\(kind)-\(threads)-\(UInt64.random(in: 0...UInt64.max))")
            defer { unlink(path) }
            try index.write(to: path)
            let f = fopen(path, "rb")!
            defer { fclose(f) }
            var out = [UInt8](repeating: 0, count: 1 << 22)
            let n = fread(&out, 1, out.count, f)
            return Array(out[..<n])
        }
        // HNSW built with several threads depends on the interleaving, so compare
        // single-threaded builds there; IVF must not depend on the thread count.
        let a = try fileBytes(threads: 1)
        #expect(a == (try fileBytes(threads: kind == .hnsw ? 1 : 2)))
    }
}
