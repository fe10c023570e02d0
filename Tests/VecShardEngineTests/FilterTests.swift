import Testing
@testable import VecShardEngine

@Suite("Filtered search")
struct FilterTests {
    static let data = TestData(count: 3000, queries: 30, dimension: 16, seed: 11)

    static func allowList(every step: Int) -> AllowList {
        AllowList(ids: stride(from: UInt32(0), to: UInt32(data.count), by: step), capacity: data.count)
    }

    @Test("only allowed ids come back, with recall against the filtered exact scan",
          arguments: IndexKind.allCases, [3, 200])
    func filtered(kind: IndexKind, step: Int) throws {
        // step 3: a third of the ids (walks the index); step 200: 0.5% (exact fallback).
        let data = Self.data
        let filter = Self.allowList(every: step)
        let index = try makeIndex(spec: testSpec(kind), metric: .l2, dimension: data.dimension)
        _ = try index.build(from: data.base)
        let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: data.dimension)
        _ = try flat.build(from: data.base)
        let params = SearchParameters(k: 10, filter: filter)
        let found = try searchAll(index, data, params)
        let exact = try searchAll(flat, data, params)
        for result in found {
            #expect(result.allSatisfy { filter.contains($0.id) })
            #expect(result.count == 10)
        }
        // IVF probes 6 of 16 lists, so with a filter it loses a little more than without.
        let threshold = step == 200 || kind == .flat ? 1.0 : (kind == .hnsw ? 0.9 : 0.8)
        let r = recall(found, exact)
        #expect(r >= threshold, "\(kind) filter 1/\(step) recall \(r)")
    }

    @Test("a filter allowing nothing returns nothing; allowing few returns all of them")
    func tinyFilters() throws {
        let data = Self.data
        for kind in IndexKind.allCases {
            let index = try makeIndex(spec: testSpec(kind), metric: .ip, dimension: data.dimension)
            _ = try index.build(from: data.base)
            #expect(try index.search(data.query(0), parameters: SearchParameters(k: 5, filter: AllowList(capacity: 10))).isEmpty)
            let few = AllowList(ids: [5, 17, 2999], capacity: data.count)
            let result = try index.search(data.query(0), parameters: SearchParameters(k: 10, filter: few))
            #expect(Set(result.map(\.id)) == [5, 17, 2999], "\(kind)")
        }
    }

    @Test("forcing the index walk or the exact scan per call", arguments: [IndexKind.ivfFlat, .ivfPQ, .hnsw])
    func perCallThreshold(kind: IndexKind) throws {
        let data = Self.data
        let filter = Self.allowList(every: 50)  // 2%: below the default threshold
        let index = try makeIndex(spec: testSpec(kind), metric: .l2, dimension: data.dimension)
        _ = try index.build(from: data.base)
        let exact = try searchAll(index, data, SearchParameters(k: 10, filter: filter))
        let scanned = try searchAll(index, data, SearchParameters(k: 10, filter: filter, filterExactFraction: 1))
        #expect(scanned == exact)
        // The walk returns allowed ids only, even when few of them are reachable.
        let walked = try searchAll(index, data, SearchParameters(k: 10, filter: filter, nprobe: 16, ef: 200,
                                                                 filterExactFraction: 0))
        for result in walked { #expect(result.allSatisfy { filter.contains($0.id) }) }
        #expect(recall(walked, exact) >= 0.8, "\(kind) walk under a 2% filter")
        #expect(throws: EngineError.self) {
            try index.search(data.query(0), parameters: SearchParameters(k: 1, filterExactFraction: 2))
        }
    }

    @Test("AllowList counts and bounds")
    func allowListBasics() {
        var list = AllowList(capacity: 130)
        list.insert(3)
        list.insert(3)
        list.insert(129)
        list.insert(500)  // beyond capacity: ignored
        #expect(list.count == 2)
        #expect(list.contains(129) && !list.contains(128) && !list.contains(500))
        let fromWords = AllowList(words: [UInt64.max, UInt64.max, UInt64.max], capacity: 130)
        #expect(fromWords.count == 130)
    }
}
