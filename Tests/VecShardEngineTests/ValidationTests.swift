import Testing
@testable import VecShardEngine

@Suite("Bad input and edge cases")
struct ValidationTests {
    @Test("k above the number of live vectors returns all of them", arguments: IndexKind.allCases)
    func kAboveCount(kind: IndexKind) throws {
        let data = TestData(count: 40, queries: 1, dimension: 4, seed: 5)
        var spec = testSpec(kind)
        spec.nlist = 4
        let index = try makeIndex(spec: spec, metric: .l2, dimension: 4)
        _ = try index.build(from: data.base)
        index.delete(0)
        let result = try index.search(data.query(0), parameters: SearchParameters(k: 100, nprobe: 4, exact: kind == .ivfPQ))
        #expect(result.count == 39)
        #expect(Set(result.map(\.id)).count == 39)
    }

    @Test("an empty index returns an empty result", arguments: IndexKind.allCases)
    func emptyIndex(kind: IndexKind) throws {
        let index = try makeIndex(spec: testSpec(kind), metric: .cosine, dimension: 3)
        #expect(index.count == 0 && index.liveCount == 0)
        #expect(try index.search([1, 2, 3], k: 10).isEmpty)
        #expect(try index.search([1, 2, 3], parameters: SearchParameters(k: 5, exact: true)).isEmpty)
    }

    @Test("dimension mismatch names both dimensions", arguments: IndexKind.allCases)
    func dimensionMismatch(kind: IndexKind) throws {
        let index = try makeIndex(spec: testSpec(kind), metric: .l2, dimension: 768)
        #expect(throws: EngineError.dimensionMismatch(got: 767, expected: 768)) {
            try index.search([Float](repeating: 0, count: 767), k: 1)
        }
        #expect(throws: EngineError.dimensionMismatch(got: 767, expected: 768)) {
            try index.add([Float](repeating: 0, count: 767))
        }
        #expect(EngineError.dimensionMismatch(got: 767, expected: 768).description == "dimension 767, index expects 768")
        #expect(throws: EngineError.ragged(floats: 768 * 3 + 1, dimension: 768)) {
            try index.add([Float](repeating: 0, count: 768 * 3 + 1))
        }
        #expect(index.count == 0)
    }

    @Test("NaN and infinite components are rejected, naming the row and component", arguments: IndexKind.allCases)
    func nonFinite(kind: IndexKind) throws {
        let index = try makeIndex(spec: testSpec(kind), metric: .ip, dimension: 3)
        #expect(throws: EngineError.nonFiniteComponent(row: 1, component: 2)) {
            try index.add([1, 2, 3, 4, 5, .nan])
        }
        #expect(throws: EngineError.nonFiniteComponent(row: 0, component: 0)) {
            try index.search([.infinity, 0, 0], k: 1)
        }
        #expect(index.count == 0)
    }

    @Test("zero vectors have no cosine")
    func zeroCosine() throws {
        let index = try makeIndex(spec: IndexSpec(kind: .flat), metric: .cosine, dimension: 2)
        #expect(throws: EngineError.zeroVector(row: 0)) { try index.add([0, 0]) }
    }

    @Test("k outside 1...10000 is rejected")
    func badK() throws {
        let index = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: 2)
        _ = try index.add([1, 2])
        #expect(throws: EngineError.invalidK(0, max: 10_000)) { try index.search([1, 2], k: 0) }
        #expect(throws: EngineError.invalidK(10_001, max: 10_000)) { try index.search([1, 2], k: 10_001) }
        #expect(try index.search([1, 2], k: 10_000).count == 1)
        #expect(throws: EngineError.self) { try index.search([1, 2], parameters: SearchParameters(k: 1, ef: 0)) }
        #expect(throws: EngineError.self) { try index.search([1, 2], parameters: SearchParameters(k: 1, nprobe: -1)) }
    }

    @Test("invalid construction parameters name the knob and the limit")
    func invalidSpecs() {
        func message(_ spec: IndexSpec, dimension: Int = 768) -> String? {
            do {
                _ = try makeIndex(spec: spec, metric: .l2, dimension: dimension)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(message(IndexSpec(kind: .ivfFlat, nlist: 0))?.contains("nlist 0") == true)
        #expect(message(IndexSpec(kind: .ivfPQ, pqM: 7))?.contains("pq_m 7 does not divide the dimension 768") == true)
        #expect(message(IndexSpec(kind: .hnsw, m: 1))?.contains("m 1") == true)
        #expect(message(IndexSpec(kind: .hnsw, efConstruction: 0))?.contains("ef_construction") == true)
        #expect(message(IndexSpec(kind: .flat), dimension: 0)?.contains("dimension 0") == true)
        #expect(message(IndexSpec(kind: .flat), dimension: 4097)?.contains("4096") == true)
        #expect(message(IndexSpec(kind: .flat), dimension: 4096) == nil)
        #expect(message(IndexSpec(kind: .ivfFlat, trainPointsPerCentroid: 1000))?.contains("256") == true)
    }

    @Test("an IVF index given fewer vectors than nlist says it cannot train")
    func tooFewToTrain() throws {
        let index = try makeIndex(spec: IndexSpec(kind: .ivfFlat, nlist: 100), metric: .l2, dimension: 2)
        #expect(throws: EngineError.notTrained("training IVF with nlist 100 needs at least 100 vectors, got 3")) {
            try index.add([1, 2, 3, 4, 5, 6])
        }
    }

    @Test("IndexSpec decodes with defaults from the collection JSON")
    func specJSON() throws {
        let json = #"{"type":"hnsw","m":32}"#
        let spec = try JSONDecoder().decode(IndexSpec.self, from: Data(json.utf8))
        #expect(spec == IndexSpec(kind: .hnsw, m: 32))
        let back = try JSONDecoder().decode(IndexSpec.self, from: JSONEncoder().encode(spec))
        #expect(back == spec)
    }
}

import Foundation
