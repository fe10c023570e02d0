import VecShardPrimitives
/// An index over float32 vectors of one dimension and metric, addressed by internal
/// row ids 0..<count assigned in insertion order. External ids live in the storage
/// layer, which maps them to these row ids (as hnswlib keeps labels apart).
///
/// Thread safety: any number of concurrent searches; `add`, `build`, `delete` and
/// `write` take the index exclusively (searches wait). Builds use
/// `IndexSpec.buildThreads` threads; one search runs on the caller's thread.
public protocol VectorIndex: AnyObject, Sendable {
    var kind: IndexKind { get }
    /// The construction knobs (for IVF with nlist nil: the resolved nlist once trained).
    var spec: IndexSpec { get }
    var metric: DistanceMetric { get }
    var dimension: Int { get }
    /// Rows ever added; internal ids are 0..<count.
    var count: Int { get }
    /// count minus deleted rows.
    var liveCount: Int { get }
    /// Bytes of anonymous memory the index holds (vectors, codes, links, ids); excludes
    /// memory-mapped file pages (the IVF_PQ re-ranking vectors once loaded from a file).
    var memoryBytes: Int { get }

    /// Appends rows (row-major, vectors.count / dimension rows) and returns their ids.
    /// Throws on ragged input, a dimension mismatch, NaN/infinite components or a zero
    /// vector under cosine; nothing is added then. An untrained IVF index trains on
    /// this batch first (throwing `notTrained` if it is too small).
    func add(_ vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32>

    /// The usual path for a sealed segment: trains (IVF) on a sample of `vectors` and
    /// adds them all, using all build threads.
    func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32>

    /// Marks id deleted (a tombstone): never returned again. Unknown ids are ignored.
    func delete(_ id: UInt32)
    func isDeleted(_ id: UInt32) -> Bool

    /// The best min(k, live rows passing the filter) rows, best first. An empty index
    /// returns []. Throws on a dimension mismatch, NaN/infinite query components, k
    /// outside 1...maxSearchK or invalid knobs.
    func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor]

    /// Writes the index to `path` (atomically: a temporary file renamed into place).
    func write(to path: String) throws
}

extension VectorIndex {
    public func add(_ vectors: [Float]) throws -> Range<UInt32> {
        try vectors.withUnsafeBufferPointer { try add($0) }
    }

    public func build(from vectors: [Float]) throws -> Range<UInt32> {
        try vectors.withUnsafeBufferPointer { try build(from: $0) }
    }

    /// Convenience: search with only k set (other knobs at the index defaults).
    public func search(_ query: [Float], k: Int) throws -> [Neighbor] {
        try search(query, parameters: SearchParameters(k: k))
    }
}

/// Creates an empty index. Throws `invalidParameter` if the spec does not fit the
/// dimension (see `IndexSpec.validate`).
public func makeIndex(spec: IndexSpec, metric: DistanceMetric, dimension: Int) throws -> any VectorIndex {
    try spec.validate(dimension: dimension)
    switch spec.kind {
    case .flat: return FlatIndex(spec: spec, metric: metric, dimension: dimension)
    case .ivfFlat: return IVFFlatIndex(spec: spec, metric: metric, dimension: dimension)
    case .ivfPQ: return IVFPQIndex(spec: spec, metric: metric, dimension: dimension)
    case .hnsw: return HNSWIndex(spec: spec, metric: metric, dimension: dimension)
    }
}

/// Reads any index file written by `VectorIndex.write(to:)`, dispatching on its header.
/// Throws `corruptIndexFile` (naming the reason) for a file that is not an index, has an
/// unknown version, is truncated or fails its checksums.
public func loadIndex(from path: String) throws -> any VectorIndex {
    let file = try IndexFileReader(path: path)
    switch file.kind {
    case .flat: return try FlatIndex(file: file)
    case .ivfFlat: return try IVFFlatIndex(file: file)
    case .ivfPQ: return try IVFPQIndex(file: file)
    case .hnsw: return try HNSWIndex(file: file)
    }
}

/// The exact scan behind FLAT, `exact: true` and small filters: scores every admitted
/// row of `store` (rows 0..<rows) and keeps the best k.
/// Scans look at the calling task's cancellation every 65,536 rows (a mask on the row number; a
/// few milliseconds of scoring) and stop early when it is set. What they return then is
/// incomplete: the caller (storage) sees the same cancellation and throws instead of answering.
let cancellationCheckRows = 0xFFFF

func exactScan(query q: UnsafePointer<Float>, store: VectorStore, rows: Int, kernel: ScoreKernel, gate: RowGate,
               filterCount: Int?, k: Int) -> [Neighbor] {
    var heap = TopKHeap(k: k)
    let dim = store.dimension
    if let filterCount, filterCount * 8 < rows {
        // Few allowed rows: visit them by walking the allow list's set bits, scoring
        // them in batches of 256 with prefetch (the rows are scattered).
        let batch = 256
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: batch) { idBuf in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: batch) { scoreBuf in
                let ids = idBuf.baseAddress!, scores = scoreBuf.baseAddress!
                var n = 0
                func flush() {
                    kernel.scoreGather(q, store.base, dim: dim, ids: ids, count: n, into: scores)
                    for i in 0..<n where scores[i] >= heap.threshold { heap.push(scores[i], ids[i]) }
                    n = 0
                }
                gate.forEachAdmitted(below: rows) { id in
                    ids[n] = id
                    n += 1
                    if n == batch { flush() }
                }
                if n > 0 { flush() }
            }
        }
        return heap.sorted()
    }
    let chunk = 256
    withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { buf in
        let out = buf.baseAddress!
        var start = 0
        while start < rows {
            if start & cancellationCheckRows == 0, start > 0, SearchDeadline.shouldStop { break }
            let n = min(chunk, rows - start)
            kernel.scoreRows(q, store.row(start), dim: dim, count: n, into: out)
            var threshold = heap.threshold
            for i in 0..<n where out[i] >= threshold {
                let id = UInt32(start + i)
                if gate.isOpen || gate.admits(id) {
                    heap.push(out[i], id)
                    threshold = heap.threshold
                }
            }
            start += n
        }
    }
    return heap.sorted()
}
