import CVecKernels

/// The coarse quantizer of the IVF indexes: nlist k-means centroids. A vector belongs to
/// the inverted list of its nearest centroid in L2 (metrics l2 and cosine) or of the
/// centroid with the largest inner product (ip, as FAISS's IndexFlatIP quantizer);
/// queries probe lists in the same order.
final class CoarseQuantizer: @unchecked Sendable {
    let metric: DistanceMetric
    let dimension: Int
    let nlist: Int
    /// nlist × dimension, row-major.
    let centroids: [Float]
    let packed: PackedCentroids

    init(centroids: [Float], metric: DistanceMetric, dimension: Int) {
        self.metric = metric
        self.dimension = dimension
        self.nlist = centroids.count / dimension
        self.centroids = centroids
        self.packed = PackedCentroids(centroids, count: nlist, dimension: dimension)
    }

    /// Trains nlist centroids with k-means on a sample of the `count` rows at `data`.
    static func train(_ data: UnsafePointer<Float>, count: Int, nlist: Int, spec: IndexSpec, metric: DistanceMetric,
                      dimension: Int) -> CoarseQuantizer {
        let kmeans = KMeans(k: nlist, iterations: spec.kmeansIterations,
                            maxPointsPerCentroid: spec.trainPointsPerCentroid, seed: spec.seed, threads: spec.threadCount)
        return CoarseQuantizer(centroids: kmeans.train(data, count: count, dimension: dimension),
                               metric: metric, dimension: dimension)
    }

    private var usesL2: Bool { metric != .ip }

    /// The list of each of `count` rows, in parallel.
    func assign(_ rows: UnsafePointer<Float>, count: Int, threads: Int, into out: UnsafeMutablePointer<Int32>) {
        packed.assign(rows, count: count, threads: threads, alpha: usesL2 ? 2 : 1, useNorms: usesL2, into: out)
    }

    /// Coarse score of every list for query q (higher = probe first): 2·q·c − |c|² under
    /// L2 (so |q − c|² = |q|² − score), q·c under ip. out holds nlist floats.
    func scores(_ q: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        centroids.withUnsafeBufferPointer { c in vk_dot_rows(q, c.baseAddress!, dimension, nlist, out) }
        if usesL2 {
            packed.norms.withUnsafeBufferPointer { n in
                for i in 0..<nlist { out[i] = 2 * out[i] - n[i] }
            }
        }
    }

    /// The `nprobe` lists to scan for q, best first, with their coarse scores.
    func probe(_ q: UnsafePointer<Float>, nprobe: Int) -> [Neighbor] {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: nlist) { buf in
            let s = buf.baseAddress!
            scores(q, into: s)
            var heap = TopKHeap(k: min(nprobe, nlist))
            for i in 0..<nlist where s[i] >= heap.threshold { heap.push(s[i], UInt32(i)) }
            return heap.sorted()
        }
    }

    func centroid(_ list: Int) -> UnsafePointer<Float> {
        centroids.withUnsafeBufferPointer { $0.baseAddress! + list * dimension }
    }
}

/// The inverted lists of an IVF index: per list, the ids of its rows and their payload
/// (`width` elements per row: floats for IVF_FLAT, code bytes for IVF_PQ), plus where
/// each id lives, so that exact scans can reach a row by id.
struct InvertedLists<Element> {
    let width: Int
    var ids: [[UInt32]]
    var payload: [[Element]]
    /// listOf[id], slotOf[id]: the list holding row id and its position there.
    /// Kept only when `tracksLocations` (IVF_FLAT; IVF_PQ reads rows by id from its
    /// full-precision vectors instead).
    var listOf: [UInt32] = []
    var slotOf: [UInt32] = []
    let tracksLocations: Bool

    init(nlist: Int, width: Int, tracksLocations: Bool) {
        self.width = width
        self.tracksLocations = tracksLocations
        ids = Array(repeating: [], count: nlist)
        payload = Array(repeating: [], count: nlist)
    }

    /// Appends rows in order; row r (id firstId + r) goes to list lists[r] with payload
    /// rows[r*width ..< (r+1)*width].
    mutating func append(firstId: Int, lists: UnsafePointer<Int32>, rows: UnsafePointer<Element>, count: Int) {
        if tracksLocations {
            listOf.reserveCapacity(firstId + count)
            slotOf.reserveCapacity(firstId + count)
        }
        for r in 0..<count {
            let l = Int(lists[r])
            if tracksLocations {
                listOf.append(UInt32(l))
                slotOf.append(UInt32(ids[l].count))
            }
            ids[l].append(UInt32(firstId + r))
            payload[l].append(contentsOf: UnsafeBufferPointer(start: rows + r * width, count: width))
        }
    }

    /// Rebuilds the lists from their concatenated form (list sizes, ids and payload in
    /// list order), as stored in files. Returns false if the parts are inconsistent.
    mutating func load(sizes: UnsafeBufferPointer<UInt32>, allIds: UnsafeBufferPointer<UInt32>,
                       allPayload: UnsafeBufferPointer<Element>, count: Int) -> Bool {
        guard sizes.count == ids.count, allIds.count == count, allPayload.count == count * width,
              sizes.reduce(0, { $0 + Int($1) }) == count else { return false }
        var listOf = [UInt32](repeating: UInt32.max, count: count)
        var slotOf = [UInt32](repeating: 0, count: count)
        var offset = 0
        for l in 0..<sizes.count {
            let n = Int(sizes[l])
            ids[l] = Array(allIds[offset..<(offset + n)])
            payload[l] = Array(allPayload[(offset * width)..<((offset + n) * width)])
            for (slot, id) in ids[l].enumerated() {
                guard Int(id) < count, listOf[Int(id)] == UInt32.max else { return false }
                listOf[Int(id)] = UInt32(l)
                slotOf[Int(id)] = UInt32(slot)
            }
            offset += n
        }
        if tracksLocations {
            self.listOf = listOf
            self.slotOf = slotOf
        }
        return true
    }

    /// Gives back the growth slack of lists (arrays double when they grow): after a bulk
    /// add, each list is copied into storage of its exact size.
    mutating func compact() {
        func exact<T>(_ a: [T]) -> [T] {
            guard a.capacity > a.count + a.count / 16 else { return a }
            return [T](unsafeUninitializedCapacity: a.count) { buf, n in
                _ = buf.initialize(from: a)
                n = a.count
            }
        }
        for l in 0..<ids.count {
            ids[l] = exact(ids[l])
            payload[l] = exact(payload[l])
        }
        listOf = exact(listOf)
        slotOf = exact(slotOf)
    }

    var sizes: [UInt32] { ids.map { UInt32($0.count) } }
    var allIds: [UInt32] { ids.flatMap { $0 } }
    var allPayload: [Element] { payload.flatMap { $0 } }
    var maxListSize: Int { ids.reduce(0) { max($0, $1.count) } }

    var memoryBytes: Int {
        ids.reduce(0) { $0 + $1.capacity * 4 } + payload.reduce(0) { $0 + $1.capacity * MemoryLayout<Element>.stride }
            + (listOf.capacity + slotOf.capacity) * 4
    }
}

/// State of an IVF index as stored in its "spec" section besides the IndexSpec.
struct IVFFileInfo: Codable {
    var spec: IndexSpec
    var nlist: Int
    var trained: Bool
}
