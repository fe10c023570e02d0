import CVecKernels
import VecShardPrimitives

/// FLAT for a segment that is still taking writes: rows are appended into fixed blocks
/// ("chunks") that never move once allocated, so
///
/// - each vector is copied once, from the caller's memory into its final place (no
///   reallocation copies as the segment grows, no second copy next to the caller's);
/// - searches scan the rows published so far while the single appender writes rows after
///   them, without waiting for it and without an allow list to hide the unpublished rows
///   (`search(_:parameters:rows:)` takes the visible row count);
/// - the vectors are kept exactly as given, also under cosine: the inverse norm of each row
///   is kept beside it and applied to the scores, so a point read back returns the bits it
///   was written with.
///
/// Chunk capacities start at 256 rows and double up to about 16 MiB per chunk, so a small
/// segment holds little memory and a large one few chunks.
///
/// Thread safety: one appender at a time (the caller serializes `append`/`appendRows`), any
/// number of concurrent searches and row reads, which see rows below the count they were
/// given (or `count`).
public final class GrowingFlatIndex: VectorIndex, @unchecked Sendable {
    public let kind = IndexKind.flat
    public let spec = IndexSpec(kind: .flat)
    public let metric: DistanceMetric
    public let dimension: Int

    /// Rows per chunk: chunk i holds `firstChunkRows << i` rows up to `maxChunkRows`.
    static let firstChunkRows = 256
    let maxChunkRows: Int
    /// log2(maxChunkRows / firstChunkRows): the first chunk of full size.
    private let fullChunk: Int

    private struct Chunk {
        let vectors: UnsafeMutablePointer<Float>
        /// 1 / |row| per row under cosine, nil otherwise.
        let inverseNorms: UnsafeMutablePointer<Float>?
        let rows: Int
    }

    /// Guards `chunks`, `appended` and `tombstones`; held only briefly (scans run unlocked
    /// over a copy of the chunk table: chunks are never moved or freed before deinit).
    private let lock = Lock()
    private var chunks: [Chunk] = []
    private var appended = 0
    private let tombstones = Bitset()
    private let input: VectorInput
    private let kernel: ScoreKernel

    public init(metric: DistanceMetric, dimension: Int) {
        precondition(dimension > 0)
        self.metric = metric
        self.dimension = dimension
        var maxRows = Self.firstChunkRows
        var full = 0
        while maxRows * 2 * dimension * 4 <= 16 << 20 {
            maxRows *= 2
            full += 1
        }
        self.maxChunkRows = maxRows
        self.fullChunk = full
        self.input = VectorInput(metric: metric, dimension: dimension)
        self.kernel = ScoreKernel(metric: metric)
    }

    deinit {
        for c in chunks {
            freeBlock(UnsafeMutableRawPointer(c.vectors))
            c.inverseNorms?.deallocate()
        }
    }

    /// The chunk holding `row` and the row's offset in it (closed form: chunk sizes double
    /// up to `maxChunkRows`, then stay).
    @inline(__always) func locate(_ row: Int) -> (chunk: Int, offset: Int) {
        let base = Self.firstChunkRows
        let geometric = base * ((1 << fullChunk) - 1) // rows in the chunks below `fullChunk`
        if row < geometric {
            let q = row / base + 1
            let i = Int.bitWidth - q.leadingZeroBitCount - 1
            return (i, row - base * ((1 << i) - 1))
        }
        let past = row - geometric
        return (fullChunk + past / maxChunkRows, past % maxChunkRows)
    }

    @inline(__always) private func chunkStart(_ i: Int) -> Int {
        let base = Self.firstChunkRows
        if i <= fullChunk { return base * ((1 << i) - 1) }
        return base * ((1 << fullChunk) - 1) + (i - fullChunk) * maxChunkRows
    }

    private func chunkRows(_ i: Int) -> Int { min(Self.firstChunkRows << min(i, fullChunk), maxChunkRows) }

    public var count: Int { lock.withLock { appended } }
    public var liveCount: Int { lock.withLock { appended - tombstones.setCount } }
    public var memoryBytes: Int {
        lock.withLock {
            chunks.reduce(0) { $0 + $1.rows * (dimension * 4 + ($1.inverseNorms == nil ? 0 : 4)) } + tombstones.wordCount * 8
        }
    }

    // MARK: appends

    /// Appends `rows` rows that the caller has already checked (finite components, no zero
    /// vector under cosine): `fill(i, destination)` writes row i's `dimension` floats.
    /// Returns the first row's id. The rows are visible to searches given a row count
    /// past them (and to `count`) once this returns.
    @discardableResult
    public func appendRows(_ rows: Int, _ fill: (Int, UnsafeMutablePointer<Float>) -> Void) -> UInt32 {
        let (first, table) = lock.withLock { () -> (Int, [Chunk]) in
            // Make room first (under the lock: readers copy the table), then fill unlocked.
            var end = chunks.isEmpty ? 0 : chunkStart(chunks.count - 1) + chunks[chunks.count - 1].rows
            while end < appended + rows {
                let n = chunkRows(chunks.count)
                let block = allocateBlock(bytes: n * dimension * 4).bindMemory(to: Float.self, capacity: n * dimension)
                let norms: UnsafeMutablePointer<Float>? = metric == .cosine ? .allocate(capacity: n) : nil
                chunks.append(Chunk(vectors: block, inverseNorms: norms, rows: n))
                end += n
            }
            return (appended, chunks)
        }
        precondition(first + rows <= Int(UInt32.max), "a growing segment holds at most \(UInt32.max) rows")
        for i in 0..<rows {
            let (c, offset) = locate(first + i)
            let destination = table[c].vectors + offset * dimension
            fill(i, destination)
            if let norms = table[c].inverseNorms {
                let norm = vk_dot(destination, destination, dimension).squareRoot()
                norms[offset] = norm > 0 ? 1 / norm : 0
            }
        }
        lock.withLock {
            appended = first + rows
            tombstones.grow(to: appended)
        }
        return UInt32(first)
    }

    public func add(_ vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> {
        let rows = try input.validate(vectors)
        let first = appendRows(rows) { i, d in d.update(from: vectors.baseAddress! + i * dimension, count: dimension) }
        return first..<(first + UInt32(rows))
    }

    public func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> { try add(vectors) }

    // MARK: reads

    /// Row `row` as it was appended. The row must have been appended.
    public func vector(at row: UInt32) -> [Float] {
        let (c, offset) = locate(Int(row))
        let chunk = lock.withLock { () -> Chunk in
            precondition(Int(row) < appended, "row \(row) of a growing index is not appended")
            return chunks[c]
        }
        return Array(UnsafeBufferPointer(start: chunk.vectors + offset * dimension, count: dimension))
    }

    /// Copies rows 0..<rows, row-major, into `destination` (rows × dimension floats).
    public func copyRows(_ rows: Int, into destination: UnsafeMutablePointer<Float>) {
        let table = lock.withLock { () -> [Chunk] in
            precondition(rows <= appended)
            return chunks
        }
        var done = 0
        var c = 0
        while done < rows {
            let n = min(table[c].rows, rows - done)
            (destination + done * dimension).update(from: table[c].vectors, count: n * dimension)
            done += n
            c += 1
        }
    }

    public func delete(_ id: UInt32) {
        lock.withLock { if Int(id) < appended { tombstones.insert(Int(id)) } }
    }

    public func isDeleted(_ id: UInt32) -> Bool { lock.withLock { tombstones.contains(Int(id)) } }

    public func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor] {
        try search(query, parameters: parameters, rows: Int.max)
    }

    /// Searches rows 0..<min(rows, count) only (the rows a storage snapshot made visible).
    public func search(_ query: [Float], parameters: SearchParameters, rows: Int) throws -> [Neighbor] {
        try parameters.validate()
        let q = try input.query(query)
        // Copy the table and tombstones under the lock; scan without it.
        let (table, limit, dead) = lock.withLock { () -> ([Chunk], Int, [UInt64]?) in
            let limit = min(rows, appended)
            let dead = tombstones.setCount > 0 ? tombstones.snapshot(ids: limit) : nil
            return (chunks, limit, dead)
        }
        guard limit > 0 else { return [] }
        return q.withUnsafeBufferPointer { qp in
            withGate(filter: parameters.filter, dead: dead) { gate in
                scan(qp.baseAddress!, table: table, rows: limit, gate: gate, filterCount: parameters.filter?.count, k: parameters.k)
            }
        }
    }

    private func withGate<T>(filter: AllowList?, dead: [UInt64]?, _ body: (RowGate) -> T) -> T {
        func withDead(_ inner: (UnsafePointer<UInt64>?, Int) -> T) -> T {
            guard let dead, !dead.isEmpty else { return inner(nil, 0) }
            return dead.withUnsafeBufferPointer { inner($0.baseAddress!, $0.count) }
        }
        return withDead { deadWords, deadCount in
            if let filter {
                return filter.words.withUnsafeBufferPointer { w in
                    // An empty allow list still gates (nothing passes): any non-nil pointer does.
                    let allow = w.baseAddress ?? UnsafePointer(tombstones.words)
                    return body(RowGate(allow: allow, allowCapacity: filter.capacity, dead: deadWords, deadWords: deadCount))
                }
            }
            return body(RowGate(allow: nil, allowCapacity: 0, dead: deadWords, deadWords: deadCount))
        }
    }

    /// The exact scan over chunks: rows in runs of up to 256 per kernel call, or, for a
    /// selective filter, the admitted rows gathered per chunk.
    private func scan(_ q: UnsafePointer<Float>, table: [Chunk], rows: Int, gate: RowGate, filterCount: Int?, k: Int) -> [Neighbor] {
        var heap = TopKHeap(k: k)
        let dim = dimension
        let batch = 256
        withUnsafeTemporaryAllocation(of: Float.self, capacity: batch) { scoreBuf in
            let scores = scoreBuf.baseAddress!
            if let filterCount, filterCount * 8 < rows {
                withUnsafeTemporaryAllocation(of: UInt32.self, capacity: batch) { idBuf in
                    let local = idBuf.baseAddress!
                    var n = 0
                    var chunk = -1
                    var start = 0
                    func flush() {
                        guard n > 0 else { return }
                        let c = table[chunk]
                        kernel.scoreGather(q, c.vectors, dim: dim, ids: local, count: n, into: scores)
                        if let norms = c.inverseNorms { for i in 0..<n { scores[i] *= norms[Int(local[i])] } }
                        for i in 0..<n where scores[i] >= heap.threshold { heap.push(scores[i], UInt32(start) + local[i]) }
                        n = 0
                    }
                    gate.forEachAdmitted(below: rows) { id in
                        let (c, offset) = locate(Int(id))
                        if c != chunk {
                            flush()
                            chunk = c
                            start = Int(id) - offset
                        }
                        local[n] = UInt32(offset)
                        n += 1
                        if n == batch { flush() }
                    }
                    flush()
                }
                return
            }
            var c = 0
            var chunkFirst = 0
            while chunkFirst < rows {
                if chunkFirst > 0, SearchDeadline.shouldStop { break }  // chunks are at least 256 rows; most are 16 MiB
                let chunk = table[c]
                let inChunk = min(chunk.rows, rows - chunkFirst)
                var offset = 0
                while offset < inChunk {
                    let n = min(batch, inChunk - offset)
                    kernel.scoreRows(q, chunk.vectors + offset * dim, dim: dim, count: n, into: scores)
                    if let norms = chunk.inverseNorms { for i in 0..<n { scores[i] *= norms[offset + i] } }
                    var threshold = heap.threshold
                    for i in 0..<n where scores[i] >= threshold {
                        let id = UInt32(chunkFirst + offset + i)
                        if gate.isOpen || gate.admits(id) {
                            heap.push(scores[i], id)
                            threshold = heap.threshold
                        }
                    }
                    offset += n
                }
                chunkFirst += chunk.rows
                c += 1
            }
        }
        return heap.sorted()
    }

    /// Writes a FLAT index file (vectors unit-normalized under cosine, as FLAT keeps them).
    public func write(to path: String) throws {
        let rows = count
        var vectors = [Float](repeating: 0, count: rows * dimension)
        vectors.withUnsafeMutableBufferPointer { p in
            guard rows > 0 else { return }
            copyRows(rows, into: p.baseAddress!)
            if metric == .cosine { for r in 0..<rows { normalize(p.baseAddress! + r * dimension, dimension) } }
        }
        let dead = lock.withLock { tombstones.snapshot(ids: rows) }
        try vectors.withUnsafeBytes { raw in
            try writeIndexFile(
                path: path, kind: kind, metric: metric, dimension: dimension, count: rows,
                sections: [
                    IndexFileSection("spec", json: spec),
                    IndexFileSection("vecs", raw: raw),
                    IndexFileSection("dead", copying: dead),
                ])
        }
    }
}
