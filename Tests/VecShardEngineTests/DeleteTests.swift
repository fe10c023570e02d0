import Testing
@testable import VecShardEngine

@Suite("Deletes")
struct DeleteTests {
    static let data = TestData(count: 2000, queries: 20, dimension: 16, seed: 21)

    @Test("deleted ids are never returned and liveCount drops", arguments: IndexKind.allCases)
    func deletedNeverReturned(kind: IndexKind) throws {
        let data = Self.data
        let index = try makeIndex(spec: testSpec(kind), metric: .cosine, dimension: data.dimension)
        _ = try index.build(from: data.base)
        // Delete every query's current top 3 and every 7th id.
        var deleted = Set<UInt32>()
        for i in 0..<data.queryCount {
            for n in try index.search(data.query(i), k: 3) { deleted.insert(n.id) }
        }
        for id in stride(from: UInt32(0), to: UInt32(data.count), by: 7) { deleted.insert(id) }
        for id in deleted { index.delete(id) }
        index.delete(UInt32(data.count + 10))  // unknown: ignored
        index.delete(deleted.first!)           // twice: counted once
        #expect(index.liveCount == data.count - deleted.count)
        #expect(index.count == data.count)
        #expect(index.isDeleted(deleted.first!))
        for i in 0..<data.queryCount {
            for exact in [false, true] {
                let result = try index.search(data.query(i), parameters: SearchParameters(k: 20, exact: exact))
                #expect(result.count == 20)
                #expect(result.allSatisfy { !deleted.contains($0.id) })
            }
        }
        // A deleted vector's own query does not find it.
        let gone = deleted.sorted()[5]
        #expect(try index.search(data.row(Int(gone)), k: 5).allSatisfy { $0.id != gone })
    }

    @Test("deleting everything leaves an index that returns nothing", arguments: IndexKind.allCases)
    func deleteAll(kind: IndexKind) throws {
        let data = TestData(count: 300, queries: 1, dimension: 8, seed: 3)
        var spec = testSpec(kind)
        spec.nlist = 8
        let index = try makeIndex(spec: spec, metric: .l2, dimension: 8)
        _ = try index.build(from: data.base)
        for id in 0..<UInt32(300) { index.delete(id) }
        #expect(index.liveCount == 0)
        #expect(try index.search(data.query(0), k: 10).isEmpty)
    }
}
