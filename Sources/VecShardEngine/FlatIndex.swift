import VecShardPrimitives
/// FLAT: every vector kept as given (unit-normalized under cosine) and every search
/// an exact scan. The oracle that the recall tests measure other indexes against.
/// Memory: count × dimension × 4 bytes.
final class FlatIndex: VectorIndex, @unchecked Sendable {
    let kind = IndexKind.flat
    let spec: IndexSpec
    let metric: DistanceMetric
    let dimension: Int
    private let lock = ReadWriteLock()
    private let store: VectorStore
    private let tombstones = Bitset()
    private let input: VectorInput
    private let kernel: ScoreKernel

    init(spec: IndexSpec, metric: DistanceMetric, dimension: Int) {
        self.spec = spec
        self.metric = metric
        self.dimension = dimension
        self.store = VectorStore(dimension: dimension)
        self.input = VectorInput(metric: metric, dimension: dimension)
        self.kernel = ScoreKernel(metric: metric)
    }

    convenience init(file: IndexFileReader) throws {
        let spec = try file.decode("spec", as: IndexSpec.self)
        self.init(spec: spec, metric: file.metric, dimension: file.dimension)
        let vectors = try file.array("vecs", of: Float.self, count: file.count * file.dimension)
        if file.count > 0 { store.append(vectors.baseAddress!, rows: file.count) }
        tombstones.load(try file.array("dead", of: UInt64.self, count: (file.count + 63) / 64))
    }

    var count: Int { lock.read { store.count } }
    var liveCount: Int { lock.read { store.count - tombstones.setCount } }
    var memoryBytes: Int { lock.read { store.ownedBytes + tombstones.wordCount * 8 } }

    func add(_ vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> {
        let rows = try input.validate(vectors)
        return try lock.write {
            let start = store.count
            guard start + rows <= Int(UInt32.max) else {
                throw EngineError.capacityExceeded("adding \(rows) vectors to \(start) exceeds the \(UInt32.max) ids of an index")
            }
            if rows > 0 { store.append(vectors.baseAddress!, rows: rows) }
            if metric == .cosine {
                for r in start..<(start + rows) { normalize(store.row(r), dimension) }
            }
            tombstones.grow(to: store.count)
            return UInt32(start)..<UInt32(start + rows)
        }
    }

    func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> { try add(vectors) }

    func delete(_ id: UInt32) {
        lock.write {
            if Int(id) < store.count { tombstones.insert(Int(id)) }
        }
    }

    func isDeleted(_ id: UInt32) -> Bool { lock.read { tombstones.contains(Int(id)) } }

    func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        let q = try input.query(query)
        return lock.read {
            guard store.count > tombstones.setCount else { return [] }
            return RowGate.with(filter: parameters.filter, tombstones: tombstones) { gate in
                q.withUnsafeBufferPointer { qp in
                    exactScan(query: qp.baseAddress!, store: store, rows: store.count, kernel: kernel, gate: gate,
                              filterCount: parameters.filter?.count, k: parameters.k)
                }
            }
        }
    }

    func write(to path: String) throws {
        try lock.read {
            try writeIndexFile(
                path: path, kind: kind, metric: metric, dimension: dimension, count: store.count,
                sections: [
                    IndexFileSection("spec", json: spec),
                    IndexFileSection("vecs", raw: UnsafeRawBufferPointer(store.buffer)),
                    IndexFileSection("dead", copying: tombstones.snapshot(ids: store.count)),
                ])
        }
    }
}
