import Foundation
import Testing
import VecShardHTTP
@testable import VecShardServer

/// Limits that keep one request from making the service read, hold or send without bound, and
/// numbers out of range named with their field (hardening: amplification, JSON numbers).
@Suite struct RequestLimitsTests {
    @Test func numbersOutOfRangeNameTheFieldAndTheRange() async throws {
        try await withService(shards: 2) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/c", ["dimension": 3, "metric": "l2"])
                let cases: [(String, String, String)] = [
                    ("/v1/collections/c/points", #"{"points":[{"id":"x","vector":[1,2,1e39]}]}"#, "points[0].vector[2]"),
                    ("/v1/collections/c/points", #"{"points":[{"id":"x","vector":[1,2,1e39]}]}"#, "float32"),
                    ("/v1/collections/c/search", #"{"vector":[1,2,3],"k":9223372036854775808}"#, "field k is 9.223372036854776e+18; it must be a whole number from 1 to 10000"),
                    ("/v1/collections/c/search", #"{"vector":[1,2,3],"k":1.5}"#, "field k is 1.5; it must be a whole number from 1 to 10000"),
                    ("/v1/collections/c/search", #"{"vector":[1,2,3],"params":{"ef":2.5}}"#, "field params.ef is 2.5"),
                    ("/v1/collections/c/search/batch", #"{"queries":[{"vector":[1,2,3],"k":1e300}]}"#, "field queries[0].k"),
                ]
                for (path, body, fragment) in cases {
                    let answer = try await api.raw("POST", path, body)
                    #expect(answer.status == 400, "\(body): \(answer.status) \(answer.json)")
                    #expect(errorMessage(answer.json).contains(fragment), "\(body): '\(errorMessage(answer.json))' lacks '\(fragment)'")
                    #expect(!errorMessage(answer.json).contains("not valid JSON"), "\(body): \(errorMessage(answer.json))")
                }
                #expect(try await api.call("GET", "/v1/collections/c").json["count"] as? Int == 0)
            }
        }
    }

    /// openapi.yaml: knobs that do not apply to the index type are ignored (and not stored).
    @Test func inapplicableIndexKnobsAreIgnored() async throws {
        try await withService(shards: 1) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                let created = try await api.call("PUT", "/v1/collections/h", ["dimension": 4, "metric": "cosine", "index": ["type": "hnsw", "pq_m": 3, "nlist": 0]])
                #expect(created.status == 200, "\(created.json)")
                #expect((created.json["index"] as? [String: Any])?["pq_m"] == nil)
                #expect(try await api.call("PUT", "/v1/collections/h", ["dimension": 4, "metric": "cosine", "index": ["type": "hnsw"]]).status == 200)
            }
        }
    }

    /// A point's metadata has a total size; a batch a total number of results; an answer a
    /// total size. 60 queries x k 20 over 20 points of 60 KB metadata would be 72 MB.
    @Test func amplificationIsBounded() async throws {
        try await withService(shards: 4) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/m", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
                let fields = Dictionary(uniqueKeysWithValues: (0..<5).map { ("f\($0)", String(repeating: "x", count: 16_000)) })
                let tooBig = try await api.call("POST", "/v1/collections/m/points", ["points": [["id": "big", "vector": [0, 0], "metadata": fields]]])
                #expect(tooBig.status == 400 && errorCode(tooBig.json) == "invalid_metadata", "\(tooBig.json)")
                #expect(errorMessage(tooBig.json).contains("the limit is 65536 per point"), "\(errorMessage(tooBig.json))")

                let blob = String(repeating: "y", count: 60_000)
                let points = (0..<20).map { ["id": "p\($0)", "vector": [Double($0), 0], "metadata": ["blob": blob]] as [String: Any] }
                #expect(try await api.call("POST", "/v1/collections/m/points", ["points": points]).status == 200)

                let many = (0..<1000).map { _ in ["vector": [0, 0], "k": 101] as [String: Any] }
                let counted = try await api.call("POST", "/v1/collections/m/search/batch", ["queries": many])
                #expect(counted.status == 400 && errorMessage(counted.json).contains("101000 results in all"), "\(counted.json)")

                let heavy = (0..<60).map { _ in ["vector": [0, 0], "k": 20] as [String: Any] }
                let large = try await api.call("POST", "/v1/collections/m/search/batch", ["queries": heavy])
                #expect(large.status == 400 && errorCode(large.json) == "response_too_large", "\(large.status) \(errorCode(large.json))")
                #expect(errorMessage(large.json).contains("include_metadata"))
                // Without metadata the same batch is small and answered.
                let light = (0..<60).map { _ in ["vector": [0, 0], "k": 20, "include_metadata": false] as [String: Any] }
                let ok = try await api.call("POST", "/v1/collections/m/search/batch", ["queries": light])
                #expect(ok.status == 200)
                #expect((ok.json["results"] as? [[[String: Any]]])?.first?.count == 20)
            }
        }
    }
}
