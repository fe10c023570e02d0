import CVecKernels
import VecShardPrimitives

/// IVF_PQ: a coarse quantizer (nlist k-means centroids) whose lists hold product-
/// quantized codes of each vector's residual (vector − its list's centroid, as FAISS
/// does by default), m bytes per vector. A search probes `nprobe` lists, scores codes
/// from lookup tables, and with refine > 1 re-ranks the best k × refine candidates
/// exactly with the full-precision vectors (two-stage retrieval).
///
/// The full-precision vectors are kept by id for re-ranking and exact scans. After
/// `build`/`add` they are in memory; an index loaded from a file reads them from the
/// memory-mapped file, so its resident memory is about the codes and ids
/// (count × (m + 4) bytes) plus the quantizers, and the page cache holds the vectors.
final class IVFPQIndex: VectorIndex, @unchecked Sendable {
    let kind = IndexKind.ivfPQ
    private(set) var spec: IndexSpec
    let metric: DistanceMetric
    let dimension: Int
    let m: Int
    private let lock = ReadWriteLock()
    private let tombstones = Bitset()
    private let input: VectorInput
    private let kernel: ScoreKernel
    private var quantizer: CoarseQuantizer?
    private var pq: ProductQuantizer?
    private var lists: InvertedLists<UInt8>
    private var vectors: VectorStore
    /// Keeps the file mapping of a loaded index alive.
    private var file: IndexFileReader?

    init(spec: IndexSpec, metric: DistanceMetric, dimension: Int) {
        self.spec = spec
        self.metric = metric
        self.dimension = dimension
        self.m = spec.resolvedPQM(dimension: dimension)
        self.spec.pqM = m
        self.input = VectorInput(metric: metric, dimension: dimension)
        self.kernel = ScoreKernel(metric: metric)
        self.lists = InvertedLists(nlist: 0, width: m, tracksLocations: false)
        self.vectors = VectorStore(dimension: dimension)
    }

    convenience init(file: IndexFileReader) throws {
        let info = try file.decode("spec", as: IVFFileInfo.self)
        try info.spec.validate(dimension: file.dimension)
        self.init(spec: info.spec, metric: file.metric, dimension: file.dimension)
        guard info.trained else {
            guard file.count == 0 else { throw file.corrupt("an untrained index cannot hold vectors") }
            return
        }
        let centroids = try file.array("cent", of: Float.self, count: info.nlist * dimension)
        quantizer = CoarseQuantizer(centroids: Array(centroids), metric: metric, dimension: dimension)
        pq = ProductQuantizer(centroids: Array(try file.array("pqcb", of: Float.self, count: dimension * 256)),
                              dimension: dimension, m: m)
        lists = InvertedLists(nlist: info.nlist, width: m, tracksLocations: false)
        guard lists.load(sizes: try file.array("lsiz", of: UInt32.self, count: info.nlist),
                         allIds: try file.array("lids", of: UInt32.self, count: file.count),
                         allPayload: try file.array("lcod", of: UInt8.self, count: file.count * m),
                         count: file.count) else { throw file.corrupt("inverted lists are inconsistent") }
        let raw = try file.array("vecs", of: Float.self, count: file.count * dimension)
        if file.count > 0 {
            vectors = VectorStore(dimension: dimension, mapped: raw.baseAddress!, rows: file.count, mapping: file.mapping)
        }
        tombstones.load(try file.array("dead", of: UInt64.self, count: (file.count + 63) / 64))
        // The checksum passes read every page of the file. Everything but the full vectors was
        // copied into memory, and re-ranking reads only the candidates' vectors: let all the
        // pages go back to being page cache (read again on demand).
        file.mapping.dropResidentPages(UnsafeRawBufferPointer(start: file.mapping.base, count: file.mapping.size))
        self.file = file
    }

    var count: Int { lock.read { vectors.count } }
    var liveCount: Int { lock.read { vectors.count - tombstones.setCount } }
    var memoryBytes: Int {
        lock.read {
            lists.memoryBytes + vectors.ownedBytes + (quantizer?.centroids.count ?? 0) * 8
                + (pq?.centroids.count ?? 0) * 12 + tombstones.wordCount * 8
        }
    }
    var isTrained: Bool { lock.read { quantizer != nil } }
    /// True when the full-precision vectors are read from a memory-mapped file.
    var vectorsAreMapped: Bool { lock.read { vectors.isMapped } }

    /// Trains the coarse quantizer and the product quantizer on `sample`.
    func train(_ sample: UnsafeBufferPointer<Float>) throws {
        let rows = try input.validate(sample)
        try lock.write {
            guard vectors.count == 0 else { throw EngineError.invalidParameter("the index already holds vectors; train before adding") }
            try input.withPrepared(sample) { try trainLocked($0, rows: rows) }
        }
    }

    private func trainLocked(_ data: UnsafePointer<Float>, rows: Int) throws {
        let nlist = spec.resolvedNlist(trainingCount: rows)
        guard rows >= nlist else {
            throw EngineError.notTrained("training IVF_PQ with nlist \(nlist) needs at least \(nlist) vectors, got \(rows)")
        }
        let coarse = CoarseQuantizer.train(data, count: rows, nlist: nlist, spec: spec, metric: metric, dimension: dimension)
        // The product quantizer learns residuals of an evenly strided subset of the rows.
        let sampleRows = min(rows, 256 * 256)
        let stride = Double(rows) / Double(sampleRows)
        var residuals = [Float](repeating: 0, count: sampleRows * dimension)
        var picked = [Float](repeating: 0, count: sampleRows * dimension)
        for i in 0..<sampleRows {
            let r = Int(Double(i) * stride)
            for d in 0..<dimension { picked[i * dimension + d] = data[r * dimension + d] }
        }
        var assignment = [Int32](repeating: 0, count: sampleRows)
        picked.withUnsafeBufferPointer { p in
            assignment.withUnsafeMutableBufferPointer { a in
                coarse.assign(p.baseAddress!, count: sampleRows, threads: spec.threadCount, into: a.baseAddress!)
            }
        }
        for i in 0..<sampleRows {
            let c = Int(assignment[i])
            for d in 0..<dimension { residuals[i * dimension + d] = picked[i * dimension + d] - coarse.centroids[c * dimension + d] }
        }
        pq = residuals.withUnsafeBufferPointer {
            ProductQuantizer.train($0.baseAddress!, count: sampleRows, dimension: dimension, m: m, spec: spec)
        }
        quantizer = coarse
        lists = InvertedLists(nlist: nlist, width: m, tracksLocations: false)
        spec.nlist = nlist
    }

    func add(_ newRows: UnsafeBufferPointer<Float>) throws -> Range<UInt32> {
        let rows = try input.validate(newRows)
        return try lock.write {
            let start = vectors.count
            guard start + rows <= Int(UInt32.max) else {
                throw EngineError.capacityExceeded("adding \(rows) vectors to \(start) exceeds the \(UInt32.max) ids of an index")
            }
            guard rows > 0 else { return UInt32(start)..<UInt32(start) }
            try input.withPrepared(newRows) { data in
                if quantizer == nil { try trainLocked(data, rows: rows) }
                let quantizer = quantizer!, pq = pq!
                let threads = spec.threadCount
                var assignment = [Int32](repeating: 0, count: rows)
                var codes = [UInt8](repeating: 0, count: rows * m)
                assignment.withUnsafeMutableBufferPointer { a in
                    quantizer.assign(data, count: rows, threads: threads, into: a.baseAddress!)
                    codes.withUnsafeMutableBufferPointer { c in
                        // Residuals in blocks, so the extra memory stays bounded.
                        let block = 16384
                        var residual = [Float](repeating: 0, count: min(block, rows) * dimension)
                        residual.withUnsafeMutableBufferPointer { res in
                            var b = 0
                            while b < rows {
                                let n = min(block, rows - b)
                                parallelFor(n, threads: threads, chunk: 512) { i in
                                    let src = data + (b + i) * dimension
                                    let cen = quantizer.centroid(Int(a[b + i]))
                                    let dst = res.baseAddress! + i * dimension
                                    for d in 0..<dimension { dst[d] = src[d] - cen[d] }
                                }
                                pq.encode(res.baseAddress!, count: n, threads: threads, into: c.baseAddress! + b * m)
                                b += n
                            }
                        }
                        lists.append(firstId: start, lists: a.baseAddress!, rows: c.baseAddress!, count: rows)
                        if rows >= 1024 { lists.compact() }
                    }
                }
                vectors.append(data, rows: rows)
            }
            tombstones.grow(to: vectors.count)
            return UInt32(start)..<UInt32(vectors.count)
        }
    }

    func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> { try add(vectors) }

    func delete(_ id: UInt32) {
        lock.write {
            if Int(id) < vectors.count { tombstones.insert(Int(id)) }
        }
    }

    func isDeleted(_ id: UInt32) -> Bool { lock.read { tombstones.contains(Int(id)) } }

    func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        let q = try input.query(query)
        return lock.read {
            guard vectors.count > tombstones.setCount, let quantizer, let pq else { return [] }
            return RowGate.with(filter: parameters.filter, tombstones: tombstones) { gate in
                q.withUnsafeBufferPointer { qb in
                    let qp = qb.baseAddress!
                    let live = vectors.count - tombstones.setCount
                    let small = parameters.prefersExactScan(live: live, default: spec.filterExactFraction)
                    if parameters.exact || small {
                        return exactScan(query: qp, store: vectors, rows: vectors.count, kernel: kernel, gate: gate,
                                         filterCount: parameters.filter?.count, k: parameters.k)
                    }
                    let refine = parameters.refine ?? spec.refine
                    let depth = refine > 1 ? min(parameters.k * refine, 100_000) : parameters.k
                    let candidates = scanCodes(q: qp, quantizer: quantizer, pq: pq,
                                               nprobe: parameters.nprobe ?? spec.nprobe, gate: gate, depth: depth)
                    guard refine > 1 else { return candidates }
                    var heap = TopKHeap(k: parameters.k)
                    for c in candidates {
                        heap.push(kernel.score(qp, vectors.row(Int(c.id)), dim: dimension), c.id)
                    }
                    return heap.sorted()
                }
            }
        }
    }

    /// The best `depth` admitted rows of the probed lists by their PQ (approximate) score.
    private func scanCodes(q: UnsafePointer<Float>, quantizer: CoarseQuantizer, pq: ProductQuantizer, nprobe: Int,
                           gate: RowGate, depth: Int) -> [Neighbor] {
        let nlist = quantizer.nlist
        let l2 = metric == .l2
        var heap = TopKHeap(k: depth)
        let chunk = 256
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: nlist + m * 256 + dimension + chunk) { buf in
            let coarse = buf.baseAddress!
            let table = coarse + nlist
            let residual = table + m * 256
            let out = residual + dimension
            quantizer.scores(q, into: coarse)
            var probes = TopKHeap(k: min(nprobe, nlist))
            for i in 0..<nlist where coarse[i] >= probes.threshold { probes.push(coarse[i], UInt32(i)) }
            let qNorm = vk_dot(q, q, dimension)
            if !l2 { pq.tables(q, l2: false, into: table) }
            for probe in probes.sorted() {
                let l = Int(probe.id)
                let bias: Float
                if l2 {
                    // residual r = q − c; score = Σ table − |r|², |r|² = |q|² − coarse score.
                    let c = quantizer.centroid(l)
                    for d in 0..<dimension { residual[d] = q[d] - c[d] }
                    pq.tables(residual, l2: true, into: table)
                    bias = -(qNorm - probe.score)
                } else {
                    // q·x ≈ q·c + q·r̂; the coarse score is q·c (ip) or 2·q·c − |c|² (cosine).
                    bias = metric == .ip ? probe.score : (probe.score + quantizer.packed.norms[l]) / 2
                }
                lists.ids[l].withUnsafeBufferPointer { ids in
                    lists.payload[l].withUnsafeBufferPointer { codes in
                        var start = 0
                        while start < ids.count {
                            let n = min(chunk, ids.count - start)
                            vk_pq_scan(codes.baseAddress! + start * m, m, n, table, bias, out)
                            var threshold = heap.threshold
                            for i in 0..<n where out[i] >= threshold {
                                let id = ids[start + i]
                                if gate.isOpen || gate.admits(id) {
                                    heap.push(out[i], id)
                                    threshold = heap.threshold
                                }
                            }
                            start += n
                        }
                    }
                }
            }
            return heap.sorted()
        }
    }

    func write(to path: String) throws {
        try lock.read {
            var sections = [
                IndexFileSection("spec", json: IVFFileInfo(spec: spec, nlist: quantizer?.nlist ?? 0, trained: quantizer != nil)),
                IndexFileSection("dead", copying: tombstones.snapshot(ids: vectors.count)),
            ]
            if let quantizer, let pq {
                sections += [
                    IndexFileSection("cent", copying: quantizer.centroids),
                    IndexFileSection("pqcb", copying: pq.centroids),
                    IndexFileSection("lsiz", copying: lists.sizes),
                    IndexFileSection("lids", copying: lists.allIds),
                    IndexFileSection("lcod", copying: lists.allPayload),
                    IndexFileSection("vecs", raw: UnsafeRawBufferPointer(vectors.buffer)),
                ]
            }
            try writeIndexFile(path: path, kind: kind, metric: metric, dimension: dimension, count: vectors.count,
                               sections: sections)
        }
    }
}
