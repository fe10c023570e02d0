import Testing
@testable import VecShardEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Index files")
struct PersistenceTests {
    static let data = TestData(count: 1500, queries: 20, dimension: 12, seed: 31)

    func readBytes(_ path: String) -> [UInt8] {
        guard let f = fopen(path, "rb") else { return [] }
        defer { fclose(f) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    func writeBytes(_ bytes: [UInt8], _ path: String) {
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }

    @Test("write then load gives identical results", arguments: IndexKind.allCases, [DistanceMetric.l2, .cosine])
    func roundTrip(kind: IndexKind, metric: DistanceMetric) throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(kind), metric: metric, dimension: data.dimension)
        _ = try index.build(from: data.base)
        index.delete(3)
        index.delete(400)
        let path = temporaryPath("roundtrip-\(kind)-\(metric)")
        defer { unlink(path) }
        try index.write(to: path)
        let loaded = try loadIndex(from: path)
        #expect(loaded.kind == kind)
        #expect(loaded.metric == metric)
        #expect(loaded.dimension == data.dimension)
        #expect(loaded.count == index.count)
        #expect(loaded.liveCount == index.liveCount)
        #expect(loaded.isDeleted(400) && !loaded.isDeleted(401))
        for params in [SearchParameters(k: 10), SearchParameters(k: 7, filter: AllowList(ids: 0..<700, capacity: 1500))] {
            #expect(try searchAll(loaded, data, params) == searchAll(index, data, params))
        }
        // A loaded index keeps accepting vectors.
        let more = try loaded.add(data.row(0))
        #expect(more == 1500..<1501)
        #expect(try loaded.search(data.row(0), k: 2).map(\.id).contains(1500))
    }

    @Test("IVF_PQ reads its re-ranking vectors from the mapped file")
    func ivfpqMapped() throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(.ivfPQ), metric: .l2, dimension: data.dimension)
        _ = try index.build(from: data.base)
        let path = temporaryPath("mapped")
        defer { unlink(path) }
        try index.write(to: path)
        let loaded = try #require(try loadIndex(from: path) as? IVFPQIndex)
        #expect(loaded.vectorsAreMapped)
        #expect(loaded.memoryBytes < index.memoryBytes / 2)
    }

    @Test("a truncated, corrupted or foreign file gives a clear error", arguments: IndexKind.allCases)
    func corruptFiles(kind: IndexKind) throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(kind), metric: .ip, dimension: data.dimension)
        _ = try index.build(from: data.base)
        let path = temporaryPath("corrupt-\(kind)")
        defer { unlink(path) }
        try index.write(to: path)
        let good = readBytes(path)

        func reason(_ bytes: [UInt8]) -> String? {
            writeBytes(bytes, path)
            do {
                _ = try loadIndex(from: path)
                return nil
            } catch let error as EngineError {
                guard case .corruptIndexFile(_, let reason) = error else { return "unexpected \(error)" }
                return reason
            } catch {
                return "unexpected \(error)"
            }
        }
        #expect(reason(Array(good[..<(good.count / 2)]))?.contains("truncated") == true)
        #expect(reason(Array(good[..<40]))?.contains("header") == true)
        var flipped = good
        flipped[good.count - 100] ^= 0x40
        #expect(reason(flipped)?.contains("checksum") == true)
        var header = good
        header[20] ^= 1  // dimension
        #expect(reason(header)?.contains("checksum") == true)
        #expect(reason(Array("not an index at all, just some text".utf8) + [UInt8](repeating: 0, count: 64))?
            .contains("magic") == true)
        #expect(throws: EngineError.self) { try loadIndex(from: temporaryPath("does-not-exist")) }
    }
}
