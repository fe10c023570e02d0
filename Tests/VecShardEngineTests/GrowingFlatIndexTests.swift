import Testing
@testable import VecShardEngine

@Suite("Growing FLAT index (chunked, append-only)")
struct GrowingFlatIndexTests {
    // 3000 rows of 16-d: chunks of 256, 512, 1024 and 2048 rows, so scans and gathers cross
    // chunk boundaries.
    static let data = TestData(count: 3000, queries: 20, dimension: 16, seed: 5)

    static func filled(_ metric: DistanceMetric, rows: Int = data.count, batches: Int = 7) -> GrowingFlatIndex {
        let index = GrowingFlatIndex(metric: metric, dimension: data.dimension)
        var at = 0
        let per = (rows + batches - 1) / batches
        while at < rows {
            let n = min(per, rows - at)
            let first = index.appendRows(n) { i, d in
                data.base.withUnsafeBufferPointer { d.update(from: $0.baseAddress! + (at + i) * data.dimension, count: data.dimension) }
            }
            #expect(Int(first) == at)
            at += n
        }
        return index
    }

    @Test("rows map to chunks that double up to the cap and then stay")
    func chunkLayout() {
        let small = GrowingFlatIndex(metric: .l2, dimension: 16) // cap: 16 MiB / 64 B = 262,144 rows
        #expect(small.locate(0) == (0, 0))
        #expect(small.locate(255) == (0, 255))
        #expect(small.locate(256) == (1, 0))
        #expect(small.locate(767) == (1, 511))
        #expect(small.locate(768) == (2, 0))
        let wide = GrowingFlatIndex(metric: .l2, dimension: 768) // cap: 4,096 rows (12 MiB)
        #expect(wide.maxChunkRows == 4096)
        // Chunks 0-4 hold 256 + 512 + 1024 + 2048 + ... : the first full chunk starts at 3,840.
        #expect(wide.locate(3839) == (3, 2047))
        #expect(wide.locate(3840) == (4, 0))
        #expect(wide.locate(3840 + 4096) == (5, 0))
        #expect(wide.locate(3840 + 3 * 4096 + 7) == (7, 7))
        let huge = GrowingFlatIndex(metric: .l2, dimension: 20_000) // 256 rows are over 16 MiB: every chunk is 256 rows
        #expect(huge.maxChunkRows == 256)
        #expect(huge.locate(256 * 3 + 1) == (3, 1))
    }

    @Test("same results as FLAT, for every metric", arguments: DistanceMetric.allCases)
    func matchesFlat(metric: DistanceMetric) throws {
        let data = Self.data
        let growing = Self.filled(metric)
        let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: metric, dimension: data.dimension)
        _ = try flat.build(from: data.base)
        #expect(growing.count == data.count)
        for q in 0..<data.queryCount {
            let a = try growing.search(data.query(q), k: 10)
            let b = try flat.search(data.query(q), k: 10)
            #expect(a.map(\.id) == b.map(\.id), "query \(q)")
            for (x, y) in zip(a, b) { #expect(abs(x.score - y.score) <= 1e-4 * max(1, abs(y.score))) }
        }
    }

    @Test("a row limit hides later rows; filters and tombstones apply across chunks")
    func visibilityAndFilters() throws {
        let data = Self.data
        let growing = Self.filled(.l2)
        let prefix = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: data.dimension)
        _ = try prefix.build(from: Array(data.base[0..<(1000 * data.dimension)]))
        for q in 0..<5 {
            let limited = try growing.search(data.query(q), parameters: SearchParameters(k: 10), rows: 1000)
            #expect(limited.map(\.id) == (try prefix.search(data.query(q), k: 10)).map(\.id))
            #expect(limited.allSatisfy { $0.id < 1000 })
        }
        // Selective filter (gathered per chunk) and a dense one (scanned), with a tombstone.
        for step in [97, 2] {
            let allowed = AllowList(ids: stride(from: UInt32(3), to: UInt32(data.count), by: step), capacity: data.count)
            let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: data.dimension)
            _ = try flat.build(from: data.base)
            let victim = try growing.search(data.query(0), parameters: SearchParameters(k: 1, filter: allowed))[0].id
            let g = GrowingFlatIndex(metric: .l2, dimension: data.dimension)
            _ = try g.add(data.base)
            g.delete(victim)
            flat.delete(victim)
            for q in 0..<data.queryCount {
                let a = try g.search(data.query(q), parameters: SearchParameters(k: 10, filter: allowed))
                let b = try flat.search(data.query(q), parameters: SearchParameters(k: 10, filter: allowed))
                #expect(a.map(\.id) == b.map(\.id), "step \(step) query \(q)")
                #expect(!a.contains { $0.id == victim })
            }
        }
    }

    @Test("vectors read back bit for bit (also under cosine), and copied out in order")
    func readBack() throws {
        let data = Self.data
        let growing = Self.filled(.cosine)
        for row in [0, 255, 256, 767, 768, 2999] {
            #expect(growing.vector(at: UInt32(row)).map(\.bitPattern) == data.row(row).map(\.bitPattern))
        }
        var out = [Float](repeating: .nan, count: 2000 * data.dimension)
        out.withUnsafeMutableBufferPointer { growing.copyRows(2000, into: $0.baseAddress!) }
        #expect(out.map(\.bitPattern) == data.base[0..<(2000 * data.dimension)].map(\.bitPattern))
    }

    @Test("add validates input; the file it writes loads as FLAT")
    func validationAndFile() throws {
        let data = Self.data
        let g = GrowingFlatIndex(metric: .cosine, dimension: data.dimension)
        #expect(throws: EngineError.self) { try g.add([Float](repeating: 0, count: data.dimension)) }
        #expect(throws: EngineError.self) { try g.add([Float](repeating: 1, count: data.dimension + 1)) }
        #expect(g.count == 0)
        _ = try g.add(data.base)
        let path = temporaryPath("growing.vsi")
        try g.write(to: path)
        let loaded = try loadIndex(from: path)
        #expect(loaded.kind == .flat && loaded.count == data.count)
        for q in 0..<5 {
            #expect((try loaded.search(data.query(q), k: 10)).map(\.id) == (try g.search(data.query(q), k: 10)).map(\.id))
        }
    }
}
