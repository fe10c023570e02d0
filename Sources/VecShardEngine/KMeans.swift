import CVecKernels
import VecShardPrimitives

/// Lloyd's k-means under squared L2, trained on a seeded sample, deterministic for a
/// given (data, k, seed) whatever the thread count: the sample, the initial centroids
/// and the tie-breaking (lowest centroid index) depend only on the seed, and sums are
/// accumulated in row order.
struct KMeans {
    var k: Int
    var iterations: Int
    /// At most k × maxPointsPerCentroid sampled rows are used.
    var maxPointsPerCentroid: Int
    var seed: UInt64
    var threads: Int

    /// Centroids (k × dimension, row-major) of the `count` rows at `data`.
    /// With fewer sampled rows than k, every row becomes a centroid and the rest repeat them.
    func train(_ data: UnsafePointer<Float>, count: Int, dimension: Int) -> [Float] {
        precondition(count > 0 && k > 0)
        var rng = SplitMix64(seed: seed)
        let sampleCount = min(count, k * maxPointsPerCentroid)
        var sample = [Float](repeating: 0, count: sampleCount * dimension)
        // Partial Fisher-Yates over row indexes picks a uniform sample without replacement;
        // rows are then copied in ascending order (better locality, same result).
        let picked: [Int]
        if sampleCount == count {
            picked = Array(0..<count)
        } else {
            var perm = [Int: Int]()
            var chosen = [Int]()
            chosen.reserveCapacity(sampleCount)
            for i in 0..<sampleCount {
                let j = i + Int(rng.next() % UInt64(count - i))
                let vi = perm[i] ?? i, vj = perm[j] ?? j
                perm[j] = vi
                chosen.append(vj)
            }
            picked = chosen.sorted()
        }
        sample.withUnsafeMutableBufferPointer { s in
            for (r, row) in picked.enumerated() {
                (s.baseAddress! + r * dimension).update(from: data + row * dimension, count: dimension)
            }
        }
        return trainOnSample(&sample, count: sampleCount, dimension: dimension, rng: &rng)
    }

    private func trainOnSample(_ sample: inout [Float], count n: Int, dimension d: Int,
                               rng: inout SplitMix64) -> [Float] {
        var centroids = [Float](repeating: 0, count: k * d)
        if n <= k {
            for c in 0..<k {
                let src = c % n
                for j in 0..<d { centroids[c * d + j] = sample[src * d + j] }
            }
            return centroids
        }
        // Initial centroids: k distinct sampled rows.
        var order = Array(0..<n)
        for i in 0..<k {
            let j = i + Int(rng.next() % UInt64(n - i))
            order.swapAt(i, j)
            for t in 0..<d { centroids[i * d + t] = sample[order[i] * d + t] }
        }
        var assignment = [Int32](repeating: 0, count: n)
        var sums = [Double](repeating: 0, count: k * d)
        var sizes = [Int](repeating: 0, count: k)
        for _ in 0..<iterations {
            sample.withUnsafeBufferPointer { s in
                assignment.withUnsafeMutableBufferPointer { a in
                    nearestCentroids(s.baseAddress!, count: n, dimension: d, centroids: centroids, k: k,
                                     threads: threads, into: a.baseAddress!)
                }
            }
            for i in 0..<(k * d) { sums[i] = 0 }
            for i in 0..<k { sizes[i] = 0 }
            sample.withUnsafeBufferPointer { s in
                for r in 0..<n {
                    let c = Int(assignment[r])
                    sizes[c] += 1
                    let row = s.baseAddress! + r * d
                    for t in 0..<d { sums[c * d + t] += Double(row[t]) }
                }
            }
            for c in 0..<k where sizes[c] > 0 {
                let inv = 1 / Double(sizes[c])
                for t in 0..<d { centroids[c * d + t] = Float(sums[c * d + t] * inv) }
            }
            splitEmptyClusters(&centroids, sizes: &sizes, dimension: d, rng: &rng)
        }
        return centroids
    }

    /// An empty cluster takes over half of the largest one: its centroid becomes a
    /// slightly perturbed copy (as FAISS does), and the next iteration splits the points.
    private func splitEmptyClusters(_ centroids: inout [Float], sizes: inout [Int], dimension d: Int,
                                    rng: inout SplitMix64) {
        for c in 0..<k where sizes[c] == 0 {
            var big = 0
            for j in 1..<k where sizes[j] > sizes[big] { big = j }
            guard sizes[big] > 1 else { return }
            for t in 0..<d {
                let v = centroids[big * d + t]
                let eps: Float = 1.0 / 1024
                let sign: Float = rng.next() & 1 == 0 ? 1 : -1
                centroids[c * d + t] = v * (1 + sign * eps)
                centroids[big * d + t] = v * (1 - sign * eps)
            }
            sizes[c] = sizes[big] / 2
            sizes[big] -= sizes[c]
        }
    }
}

/// For each of `count` rows (count × dimension) the index of the nearest of the k
/// centroids in squared L2 (lowest index on ties), computed in parallel blocks.
func nearestCentroids(_ rows: UnsafePointer<Float>, count: Int, dimension d: Int, centroids: [Float], k: Int,
                      threads: Int, into out: UnsafeMutablePointer<Int32>) {
    let packed = PackedCentroids(centroids, count: k, dimension: d)
    packed.assign(rows, count: count, threads: threads, alpha: 2, useNorms: true, into: out)
}

/// Centroids in the panel layout of `vk_best_match`, with their squared norms.
struct PackedCentroids {
    let count: Int
    let dimension: Int
    let panels: [Float]
    let norms: [Float]

    init(_ centroids: [Float], count: Int, dimension: Int) {
        self.count = count
        self.dimension = dimension
        var panels = [Float](repeating: 0, count: vk_packed_floats(count, dimension))
        centroids.withUnsafeBufferPointer { c in
            panels.withUnsafeMutableBufferPointer { p in vk_pack_panels(c.baseAddress!, count, dimension, p.baseAddress!) }
        }
        self.panels = panels
        self.norms = (0..<count).map { c in
            centroids.withUnsafeBufferPointer { vk_dot($0.baseAddress! + c * dimension, $0.baseAddress! + c * dimension, dimension) }
        }
    }

    /// out[i] = argmax_j alpha·dot(row_i, c_j) - (useNorms ? |c_j|² : 0). With alpha 2 and
    /// norms that is the nearest centroid in L2; with alpha 1 and no norms the largest
    /// inner product. scores (optional) receives the maximized value.
    func assign(_ rows: UnsafePointer<Float>, count n: Int, threads: Int, alpha: Float, useNorms: Bool,
                into out: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>? = nil) {
        let block = 128
        let blocks = (n + block - 1) / block
        panels.withUnsafeBufferPointer { p in
            norms.withUnsafeBufferPointer { nrm in
                parallelFor(blocks, threads: threads) { b in
                    let start = b * block
                    let rowsInBlock = min(block, n - start)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { tmp in
                        vk_best_match(rows + start * dimension, rowsInBlock, dimension, p.baseAddress!, count, alpha,
                                      useNorms ? nrm.baseAddress! : nil, out + start,
                                      scores.map { $0 + start } ?? tmp.baseAddress!)
                    }
                }
            }
        }
    }
}
