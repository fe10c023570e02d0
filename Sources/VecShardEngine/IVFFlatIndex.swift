import VecShardPrimitives
/// IVF_FLAT: vectors partitioned into nlist inverted lists by a k-means coarse quantizer;
/// a search scores the query against the centroids and scans the `nprobe` best lists
/// exactly. Trained on a sample of the first batch it is given (`build` or `add`).
/// Memory: count × (dimension × 4 + 12) bytes + nlist × dimension × 4.
final class IVFFlatIndex: VectorIndex, @unchecked Sendable {
    let kind = IndexKind.ivfFlat
    private(set) var spec: IndexSpec
    let metric: DistanceMetric
    let dimension: Int
    private let lock = ReadWriteLock()
    private let tombstones = Bitset()
    private let input: VectorInput
    private let kernel: ScoreKernel
    private var quantizer: CoarseQuantizer?
    private var lists: InvertedLists<Float>
    private var rowCount = 0

    init(spec: IndexSpec, metric: DistanceMetric, dimension: Int) {
        self.spec = spec
        self.metric = metric
        self.dimension = dimension
        self.input = VectorInput(metric: metric, dimension: dimension)
        self.kernel = ScoreKernel(metric: metric)
        self.lists = InvertedLists(nlist: 0, width: dimension, tracksLocations: true)
    }

    convenience init(file: IndexFileReader) throws {
        let info = try file.decode("spec", as: IVFFileInfo.self)
        self.init(spec: info.spec, metric: file.metric, dimension: file.dimension)
        guard info.trained else {
            guard file.count == 0 else { throw file.corrupt("an untrained index cannot hold vectors") }
            return
        }
        let centroids = try file.array("cent", of: Float.self, count: info.nlist * dimension)
        quantizer = CoarseQuantizer(centroids: Array(centroids), metric: metric, dimension: dimension)
        lists = InvertedLists(nlist: info.nlist, width: dimension, tracksLocations: true)
        guard lists.load(sizes: try file.array("lsiz", of: UInt32.self, count: info.nlist),
                         allIds: try file.array("lids", of: UInt32.self, count: file.count),
                         allPayload: try file.array("lvec", of: Float.self, count: file.count * dimension),
                         count: file.count) else { throw file.corrupt("inverted lists are inconsistent") }
        rowCount = file.count
        tombstones.load(try file.array("dead", of: UInt64.self, count: (file.count + 63) / 64))
    }

    var count: Int { lock.read { rowCount } }
    var liveCount: Int { lock.read { rowCount - tombstones.setCount } }
    var memoryBytes: Int {
        lock.read { lists.memoryBytes + (quantizer?.centroids.count ?? 0) * 8 + tombstones.wordCount * 8 }
    }
    /// True once the coarse quantizer exists.
    var isTrained: Bool { lock.read { quantizer != nil } }

    /// Trains the coarse quantizer on `sample` (rows × dimension). Throws if already
    /// trained with vectors added, or if the sample has fewer rows than nlist.
    func train(_ sample: UnsafeBufferPointer<Float>) throws {
        let rows = try input.validate(sample)
        let prepared = try input.prepared(sample)
        try lock.write {
            guard rowCount == 0 else { throw EngineError.invalidParameter("the index already holds vectors; train before adding") }
            try prepared.withUnsafeBufferPointer { try trainLocked($0.baseAddress!, rows: rows) }
        }
    }

    private func trainLocked(_ data: UnsafePointer<Float>, rows: Int) throws {
        let nlist = spec.resolvedNlist(trainingCount: rows)
        guard rows >= nlist else {
            throw EngineError.notTrained("training IVF with nlist \(nlist) needs at least \(nlist) vectors, got \(rows)")
        }
        quantizer = CoarseQuantizer.train(data, count: rows, nlist: nlist, spec: spec, metric: metric, dimension: dimension)
        lists = InvertedLists(nlist: nlist, width: dimension, tracksLocations: true)
        spec.nlist = nlist
    }

    func add(_ vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> {
        let rows = try input.validate(vectors)
        return try lock.write {
            guard rowCount + rows <= Int(UInt32.max) else {
                throw EngineError.capacityExceeded("adding \(rows) vectors to \(rowCount) exceeds the \(UInt32.max) ids of an index")
            }
            let start = rowCount
            guard rows > 0 else { return UInt32(start)..<UInt32(start) }
            try input.withPrepared(vectors) { data in
                if quantizer == nil { try trainLocked(data, rows: rows) }
                var assignment = [Int32](repeating: 0, count: rows)
                assignment.withUnsafeMutableBufferPointer { a in
                    quantizer!.assign(data, count: rows, threads: spec.threadCount, into: a.baseAddress!)
                    lists.append(firstId: start, lists: a.baseAddress!, rows: data, count: rows)
                    if rows >= 1024 { lists.compact() }
                }
            }
            rowCount += rows
            tombstones.grow(to: rowCount)
            return UInt32(start)..<UInt32(rowCount)
        }
    }

    func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> { try add(vectors) }

    func delete(_ id: UInt32) {
        lock.write {
            if Int(id) < rowCount { tombstones.insert(Int(id)) }
        }
    }

    func isDeleted(_ id: UInt32) -> Bool { lock.read { tombstones.contains(Int(id)) } }

    func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        let q = try input.query(query)
        return lock.read {
            guard rowCount > tombstones.setCount, let quantizer else { return [] }
            return RowGate.with(filter: parameters.filter, tombstones: tombstones) { gate in
                q.withUnsafeBufferPointer { qb in
                    let qp = qb.baseAddress!
                    let live = rowCount - tombstones.setCount
                    if parameters.exact {
                        return scanLists(0..<quantizer.nlist, q: qp, gate: gate, k: parameters.k)
                    }
                    if parameters.prefersExactScan(live: live, default: spec.filterExactFraction) {
                        return exactByLocation(q: qp, gate: gate, k: parameters.k)
                    }
                    let probes = quantizer.probe(qp, nprobe: parameters.nprobe ?? spec.nprobe)
                    return scanLists(probes.lazy.map { Int($0.id) }, q: qp, gate: gate, k: parameters.k)
                }
            }
        }
    }

    private func scanLists<S: Sequence>(_ listIds: S, q: UnsafePointer<Float>, gate: RowGate, k: Int) -> [Neighbor]
    where S.Element == Int {
        var heap = TopKHeap(k: k)
        let chunk = 256
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { buf in
            let out = buf.baseAddress!
            for l in listIds {
                lists.ids[l].withUnsafeBufferPointer { ids in
                    lists.payload[l].withUnsafeBufferPointer { vecs in
                        var start = 0
                        while start < ids.count {
                            let n = min(chunk, ids.count - start)
                            kernel.scoreRows(q, vecs.baseAddress! + start * dimension, dim: dimension, count: n, into: out)
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
        }
        return heap.sorted()
    }

    /// Exact scan of the admitted ids only, reaching each row through its list slot,
    /// scored in batches of 256 with prefetch.
    private func exactByLocation(q: UnsafePointer<Float>, gate: RowGate, k: Int) -> [Neighbor] {
        var heap = TopKHeap(k: k)
        // Base address of every list's payload, valid while the read lock is held.
        let bases: [UnsafePointer<Float>?] = lists.payload.map { $0.withUnsafeBufferPointer { $0.baseAddress } }
        let batch = 256
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: batch) { rowBuf in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: batch) { idBuf in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: batch) { scoreBuf in
                    let rows = rowBuf.baseAddress!, ids = idBuf.baseAddress!, scores = scoreBuf.baseAddress!
                    var n = 0
                    func flush() {
                        kernel.scorePointers(q, rows, dim: dimension, count: n, into: scores)
                        for i in 0..<n where scores[i] >= heap.threshold { heap.push(scores[i], ids[i]) }
                        n = 0
                    }
                    lists.listOf.withUnsafeBufferPointer { listOf in
                        lists.slotOf.withUnsafeBufferPointer { slotOf in
                            gate.forEachAdmitted(below: rowCount) { id in
                                rows[n] = bases[Int(listOf[Int(id)])]! + Int(slotOf[Int(id)]) * dimension
                                ids[n] = id
                                n += 1
                                if n == batch { flush() }
                            }
                        }
                    }
                    if n > 0 { flush() }
                }
            }
        }
        return heap.sorted()
    }

    func write(to path: String) throws {
        try lock.read {
            var sections = [
                IndexFileSection("spec", json: IVFFileInfo(spec: spec, nlist: quantizer?.nlist ?? 0, trained: quantizer != nil)),
                IndexFileSection("dead", copying: tombstones.snapshot(ids: rowCount)),
            ]
            if let quantizer {
                sections += [
                    IndexFileSection("cent", copying: quantizer.centroids),
                    IndexFileSection("lsiz", copying: lists.sizes),
                    IndexFileSection("lids", copying: lists.allIds),
                    IndexFileSection("lvec", copying: lists.allPayload),
                ]
            }
            try writeIndexFile(path: path, kind: kind, metric: metric, dimension: dimension, count: rowCount,
                               sections: sections)
        }
    }
}
