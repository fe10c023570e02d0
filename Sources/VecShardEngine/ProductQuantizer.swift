import CVecKernels

/// A product quantizer: the dimension split into m sub-spaces of dsub = dimension/m
/// components, each quantized to one of 256 k-means centroids, so a vector becomes m
/// bytes. Distances to a query are read from m × 256 lookup tables (asymmetric
/// distance computation: the query stays exact, only stored vectors are quantized).
final class ProductQuantizer: @unchecked Sendable {
    static let centroidsPerSubspace = 256
    let dimension: Int
    let m: Int
    let dsub: Int
    /// m × 256 × dsub: centroid k of sub-space j starts at (j*256 + k)*dsub.
    let centroids: [Float]
    /// m × dsub × 256, the layout `vk_pq_tables` reads.
    let transposed: [Float]
    /// m × 256 squared norms of the centroids.
    let norms: [Float]
    private let packed: [PackedCentroids]

    init(centroids: [Float], dimension: Int, m: Int) {
        precondition(dimension % m == 0 && centroids.count == dimension * 256)
        self.dimension = dimension
        self.m = m
        self.dsub = dimension / m
        self.centroids = centroids
        let dsub = dimension / m
        var t = [Float](repeating: 0, count: centroids.count)
        var packed: [PackedCentroids] = []
        for j in 0..<m {
            for k in 0..<256 {
                for d in 0..<dsub { t[(j * dsub + d) * 256 + k] = centroids[(j * 256 + k) * dsub + d] }
            }
            packed.append(PackedCentroids(Array(centroids[(j * 256 * dsub)..<((j + 1) * 256 * dsub)]), count: 256, dimension: dsub))
        }
        self.transposed = t
        self.packed = packed
        self.norms = packed.flatMap { $0.norms }
    }

    /// Trains the 256 centroids of every sub-space on `count` rows (count × dimension).
    static func train(_ rows: UnsafePointer<Float>, count: Int, dimension: Int, m: Int, spec: IndexSpec) -> ProductQuantizer {
        let dsub = dimension / m
        var all = [Float]()
        all.reserveCapacity(dimension * 256)
        var sub = [Float](repeating: 0, count: count * dsub)
        for j in 0..<m {
            for r in 0..<count {
                for d in 0..<dsub { sub[r * dsub + d] = rows[r * dimension + j * dsub + d] }
            }
            let kmeans = KMeans(k: 256, iterations: spec.kmeansIterations, maxPointsPerCentroid: 256,
                                seed: spec.seed &+ UInt64(j + 1), threads: spec.threadCount)
            all += sub.withUnsafeBufferPointer { kmeans.train($0.baseAddress!, count: count, dimension: dsub) }
        }
        return ProductQuantizer(centroids: all, dimension: dimension, m: m)
    }

    /// Codes (count × m bytes) of `count` rows, in parallel blocks.
    func encode(_ rows: UnsafePointer<Float>, count: Int, threads: Int, into codes: UnsafeMutablePointer<UInt8>) {
        let block = 256
        let blocks = (count + block - 1) / block
        parallelFor(blocks, threads: threads) { b in
            let start = b * block, n = min(block, count - start)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block * dsub) { sub in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: block) { idx in
                    for j in 0..<m {
                        for r in 0..<n {
                            (sub.baseAddress! + r * dsub).update(from: rows + (start + r) * dimension + j * dsub, count: dsub)
                        }
                        packed[j].assign(sub.baseAddress!, count: n, threads: 1, alpha: 2, useNorms: true,
                                         into: idx.baseAddress!)
                        for r in 0..<n { codes[(start + r) * m + j] = UInt8(idx[r]) }
                    }
                }
            }
        }
    }

    /// The reconstruction of a code (dimension floats).
    func decode(_ code: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        for j in 0..<m {
            for d in 0..<dsub { out[j * dsub + d] = centroids[(j * 256 + Int(code[j])) * dsub + d] }
        }
    }

    /// Score tables (m × 256 floats) for a query residual r:
    /// l2: table[j][k] = 2·r_j·c_jk − |c_jk|², so that −|r − decode(code)|² = Σ_j table[j][code_j] − |r|²;
    /// inner product: table[j][k] = r_j·c_jk, so that r·decode(code) = Σ_j table[j][code_j].
    func tables(_ r: UnsafePointer<Float>, l2: Bool, into out: UnsafeMutablePointer<Float>) {
        transposed.withUnsafeBufferPointer { t in
            norms.withUnsafeBufferPointer { n in
                vk_pq_tables(r, m, dsub, t.baseAddress!, l2 ? 2 : 1, l2 ? n.baseAddress! : nil, out)
            }
        }
    }
}
