import VecShardPrimitives
import Testing
import CVecKernels
@testable import VecShardEngine

@Suite("Distance kernels against a scalar reference", .serialized)
struct KernelTests {
    static let dimensions = [1, 3, 15, 16, 17, 33, 128, 768, 4096]

    static func vectors(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Int64(rng.next() % 2001) - 1000) / 250 }
    }

    static func close(_ a: Float, _ b: Double, scale: Double) -> Bool {
        abs(Double(a) - b) <= 1e-4 * max(1, scale)
    }

    @Test("dot and l2sq match double-precision scalar loops at every supported level",
          arguments: dimensions)
    func singleKernels(dim: Int) {
        let a = Self.vectors(dim, seed: 1), b = Self.vectors(dim, seed: 2)
        var dot = 0.0, l2 = 0.0, scale = 0.0
        for i in 0..<dim {
            dot += Double(a[i]) * Double(b[i])
            l2 += Double(a[i] - b[i]) * Double(a[i] - b[i])
            scale += abs(Double(a[i]) * Double(b[i]))
        }
        for level in VectorKernels.Level.allCases where level.rawValue <= VectorKernels.supported.rawValue {
            #expect(VectorKernels.force(level))
            #expect(Self.close(VectorKernels.dot(a, b), dot, scale: scale), "dot dim \(dim) at \(level.name)")
            #expect(Self.close(VectorKernels.l2Squared(a, b), l2, scale: l2), "l2 dim \(dim) at \(level.name)")
        }
        VectorKernels.force(VectorKernels.supported)
    }

    @Test("row, gather, pq and best-match kernels agree with single-row kernels", arguments: [1, 3, 17, 768])
    func batchKernels(dim: Int) {
        let rows = 37
        let q = Self.vectors(dim, seed: 3), x = Self.vectors(rows * dim, seed: 4)
        for level in VectorKernels.Level.allCases where level.rawValue <= VectorKernels.supported.rawValue {
            VectorKernels.force(level)
            var dots = [Float](repeating: 0, count: rows), l2s = dots, gd = dots, gl = dots
            let ids: [UInt32] = (0..<UInt32(rows)).reversed()
            vk_dot_rows(q, x, dim, rows, &dots)
            vk_l2sq_rows(q, x, dim, rows, &l2s)
            vk_dot_gather(q, x, dim, ids, rows, &gd)
            vk_l2sq_gather(q, x, dim, ids, rows, &gl)
            for r in 0..<rows {
                let row = Array(x[(r * dim)..<((r + 1) * dim)])
                let d = VectorKernels.dot(q, row), l = VectorKernels.l2Squared(q, row)
                #expect(abs(dots[r] - d) <= 1e-3 * max(1, abs(d)))
                #expect(abs(l2s[r] - l) <= 1e-3 * max(1, l))
                #expect(abs(gd[rows - 1 - r] - d) <= 1e-3 * max(1, abs(d)))
                #expect(abs(gl[rows - 1 - r] - l) <= 1e-3 * max(1, l))
            }
            // Nearest-centroid search against brute force.
            let nc = 21
            let c = Array(x[0..<(nc * dim)])
            let packed = PackedCentroids(c, count: nc, dimension: dim)
            var best = [Int32](repeating: -1, count: rows)
            x.withUnsafeBufferPointer { packed.assign($0.baseAddress!, count: rows, threads: 1, alpha: 2, useNorms: true, into: &best) }
            for r in 0..<rows {
                let row = Array(x[(r * dim)..<((r + 1) * dim)])
                let dists = (0..<nc).map { VectorKernels.l2Squared(row, Array(c[($0 * dim)..<(($0 + 1) * dim)])) }
                let truth = dists.min()!
                #expect(dists[Int(best[r])] <= truth + 1e-3 * max(1, truth), "row \(r) at \(level.name)")
            }
        }
        VectorKernels.force(VectorKernels.supported)
    }

    @Test("PQ table scan sums one table entry per sub-space", arguments: [4, 16, 96])
    func pqScan(m: Int) {
        let n = 19
        let table = Self.vectors(m * 256, seed: 5)
        var rng = SplitMix64(seed: 6)
        let codes = (0..<(n * m)).map { _ in UInt8(rng.next() & 255) }
        for level in VectorKernels.Level.allCases where level.rawValue <= VectorKernels.supported.rawValue {
            VectorKernels.force(level)
            var out = [Float](repeating: 0, count: n)
            vk_pq_scan(codes, m, n, table, 0.5, &out)
            for i in 0..<n {
                var s = 0.5
                for j in 0..<m { s += Double(table[j * 256 + Int(codes[i * m + j])]) }
                #expect(abs(Double(out[i]) - s) < 1e-3)
            }
        }
        VectorKernels.force(VectorKernels.supported)
    }

    @Test("checksum changes with any byte")
    func checksum() {
        var bytes = [UInt8](repeating: 7, count: 1000)
        let a = vk_checksum64(bytes, bytes.count, 0)
        bytes[999] = 8
        #expect(vk_checksum64(bytes, bytes.count, 0) != a)
        #expect(vk_checksum64(bytes, 999, 0) != vk_checksum64(bytes, 1000, 0))
    }
}
