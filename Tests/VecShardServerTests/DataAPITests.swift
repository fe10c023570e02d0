import Foundation
import NIOCore
import Testing
import VecShardPrimitives
import VecShardEngine
import VecShardHTTP
@testable import VecShardServer

/// JSON over the project's HTTP/2 client.
struct JSONClient: Sendable {
    let client: HTTP2Client
    let peer: Peer

    func call(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (status: Int, json: [String: Any]) {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let response = try await client.execute(ClientRequest(method: method, path: path, headers: ["content-type": "application/json"],
                                                              body: data.map { ByteBuffer(bytes: $0) }), to: peer, timeout: .seconds(30))
        let object = response.body.readableBytes == 0 ? [:]
            : (try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any] ?? [:])
        return (response.status, object)
    }

    func raw(_ method: String, _ path: String, _ text: String) async throws -> (status: Int, json: [String: Any]) {
        let response = try await client.execute(ClientRequest(method: method, path: path, body: ByteBuffer(string: text)), to: peer, timeout: .seconds(30))
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:])
    }
}

func errorMessage(_ json: [String: Any]) -> String { ((json["error"] as? [String: Any])?["message"] as? String) ?? "" }
func errorCode(_ json: [String: Any]) -> String { ((json["error"] as? [String: Any])?["code"] as? String) ?? "" }

@Suite struct DataAPITests {
    /// With FLAT, top-k through the router over N shards equals top-k of one flat index over all
    /// the data: same ids, same scores, for random data and random k.
    @Test(arguments: [1, 2, 5])
    func exactSearchThroughTheRouterEqualsOneFlatIndex(shards: Int) async throws {
        try await withService(shards: shards) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                var rng = SplitMix64(seed: UInt64(shards))
                let dim = 12, n = 400
                let created = try await api.call("PUT", "/v1/collections/exact", ["dimension": dim, "metric": "l2", "index": ["type": "flat"]])
                #expect(created.status == 200, "\(created.json)")
                var vectors: [[Float]] = []
                for _ in 0..<n { vectors.append((0..<dim).map { _ in Float(Int(rng.next() % 2001) - 1000) / 100 }) }
                let points = vectors.enumerated().map { ["id": "p\($0)", "vector": $1.map(Double.init), "metadata": ["i": $0]] as [String: Any] }
                let upserted = try await api.call("POST", "/v1/collections/exact/points", ["points": points])
                #expect(upserted.json["upserted"] as? Int == n)
                let oracle = try makeIndex(spec: IndexSpec(kind: .flat), metric: .l2, dimension: dim)
                _ = try oracle.add(vectors.flatMap { $0 })
                for _ in 0..<8 {
                    let query: [Float] = (0..<dim).map { _ in Float(Int(rng.next() % 2001) - 1000) / 100 }
                    let k = Int(rng.next() % 40) + 1
                    let answer = try await api.call("POST", "/v1/collections/exact/search", ["vector": query.map(Double.init), "k": k])
                    #expect(answer.status == 200, "\(answer.json)")
                    let results = answer.json["results"] as? [[String: Any]] ?? []
                    let expected = try oracle.search(query, parameters: SearchParameters(k: k))
                    #expect(results.map { $0["id"] as? String } == expected.map { "p\($0.id)" })
                    #expect(results.map { Float(($0["score"] as? Double) ?? .nan) } == expected.map(\.score))
                    let shardsInfo = answer.json["shards"] as? [String: Int]
                    #expect(shardsInfo == ["asked": shards, "answered": shards])
                }
                let described = try await api.call("GET", "/v1/collections/exact")
                #expect(described.json["count"] as? Int == n)
            }
        }
    }

    @Test func pointsLifecycleOverREST() async throws {
        try await withService(shards: 3) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/docs", ["dimension": 3, "metric": "cosine", "shard_key": "category"])
                let again = try await api.call("PUT", "/v1/collections/docs", ["dimension": 3, "metric": "cosine", "shard_key": "category"])
                #expect(again.status == 200) // same schema: idempotent
                let clash = try await api.call("PUT", "/v1/collections/docs", ["dimension": 4, "metric": "cosine"])
                #expect(clash.status == 409)
                let points: [[String: Any]] = [
                    ["id": "a1", "vector": [1, 0, 0], "metadata": ["category": "books", "year": 2021, "new": true]],
                    ["id": "a2", "vector": [0, 1, 0], "metadata": ["category": "music", "year": 2020]],
                    ["id": "a3", "vector": [0.9, 0.1, 0], "metadata": ["category": "books", "year": 2019]],
                ]
                #expect(try await api.call("POST", "/v1/collections/docs/points", ["points": points]).json["upserted"] as? Int == 3)
                let got = try await api.call("GET", "/v1/collections/docs/points/a1")
                #expect(got.json["id"] as? String == "a1")
                #expect((got.json["metadata"] as? [String: Any])?["year"] as? Int == 2021)
                #expect((got.json["vector"] as? [Double]) == [1, 0, 0])
                let filtered = try await api.call("POST", "/v1/collections/docs/search", ["vector": [1, 0, 0], "k": 5, "filter": ["category": "books"]])
                #expect((filtered.json["results"] as? [[String: Any]])?.map { $0["id"] as? String } == ["a1", "a3"])
                let inList = try await api.call("POST", "/v1/collections/docs/search", ["vector": [0, 1, 0], "k": 5, "filter": ["year": [2020, 2019]]])
                #expect((inList.json["results"] as? [[String: Any]])?.map { $0["id"] as? String } == ["a2", "a3"])
                let batch = try await api.call("POST", "/v1/collections/docs/search/batch", ["queries": [["vector": [1, 0, 0], "k": 1], ["vector": [0, 1, 0], "k": 1, "include_vector": true]]])
                let lists = batch.json["results"] as? [[[String: Any]]]
                #expect(lists?.map { $0.map { $0["id"] as? String } } == [["a1"], ["a2"]])
                #expect(lists?[1][0]["vector"] as? [Double] == [0, 1, 0])
                #expect(try await api.call("POST", "/v1/collections/docs/points/delete", ["ids": ["a1", "zz"]]).json["deleted"] as? Int == 1)
                #expect(try await api.call("GET", "/v1/collections/docs/points/a1").status == 404)
                let listed = try await api.call("GET", "/v1/collections")
                #expect((listed.json["collections"] as? [[String: Any]])?.first?["count"] as? Int == 2)
                #expect(try await api.call("POST", "/admin/collections/docs/flush").status == 200)
                #expect(try await api.call("POST", "/admin/collections/docs/compact").status == 200)
                let shards = try await api.call("GET", "/admin/shards")
                #expect((shards.json["shards"] as? [[String: Any]])?.count == 3)
                #expect(try await api.call("DELETE", "/v1/collections/docs").json["dropped"] as? Bool == true)
                #expect(try await api.call("GET", "/v1/collections/docs").status == 404)
            }
        }
    }

    /// Every bad request gets a 4xx that names the field and changes nothing.
    @Test func badRequestsNameTheField() async throws {
        try await withService(shards: 2) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                _ = try await api.call("PUT", "/v1/collections/c", ["dimension": 4, "metric": "l2"])
                let cases: [(String, String, Any, Int, String)] = [
                    ("PUT", "/v1/collections/bad", ["dimension": 0, "metric": "l2"], 400, "dimension 0"),
                    ("PUT", "/v1/collections/bad", ["dimension": 4, "metric": "hamming"], 400, "metric 'hamming'"),
                    ("PUT", "/v1/collections/bad", ["metric": "l2"], 400, "field dimension is required"),
                    ("PUT", "/v1/collections/bad%20name", ["dimension": 4, "metric": "l2"], 400, "letters, digits"),
                    ("PUT", "/v1/collections/bad", ["dimension": 4, "metric": "cosine", "index": ["type": "hnsw", "m": -1]], 400, "m -1"),
                    ("PUT", "/v1/collections/bad", ["dimension": 4, "metric": "l2", "index": ["type": "ivf_flat", "nlist": 5_000_000_000]], 400, "nlist"),
                    ("PUT", "/v1/collections/bad", ["dimension": 4, "metric": "l2", "index": ["type": "ivf_pq", "pq_m": 3]], 400, "pq_m 3 does not divide"),
                    ("POST", "/v1/collections/c/points", ["points": [["id": "x", "vector": [1, 2, 3]]]], 400, "dimension 3"),
                    ("POST", "/v1/collections/c/points", ["points": [["id": "x", "vector": [1, 2, 3, "a"]]]], 400, "points[0].vector[3]"),
                    ("POST", "/v1/collections/c/points", ["points": [["id": "", "vector": [1, 2, 3, 4]]]], 400, "empty"),
                    ("POST", "/v1/collections/c/points", ["points": [["id": String(repeating: "x", count: 300), "vector": [1, 2, 3, 4]]]], 400, "256"),
                    ("POST", "/v1/collections/c/points", ["points": []], 400, "points is empty"),
                    ("POST", "/v1/collections/c/points", ["pts": []], 400, "field points is required"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2, 3, 4], "k": 0], 400, "field k is 0"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2, 3, 4], "k": 10_001], 400, "10000"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2], "k": 3], 400, "dimension 2"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2, 3, 4], "params": ["oversample": 0.5]], 400, "params.oversample"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2, 3, 4], "filter": ["x": [1.5]]], 400, "filter"),
                    ("POST", "/v1/collections/c/search", ["vector": [1, 2, 3, 4], "filter": ["year": [] as [Int]]], 400, "filter.year is an empty list"),
                    ("POST", "/v1/collections/c/search/batch", ["queries": [["vector": [1, 2, 3, 4], "k": -1]]], 400, "queries[0].k"),
                    ("POST", "/v1/collections/nope/search", ["vector": [1, 2, 3, 4]], 404, "nope"),
                    ("POST", "/v1/collections/nope/points", ["points": [["id": "x", "vector": [1, 2, 3, 4]]]], 404, "nope"),
                ]
                for (method, path, body, status, fragment) in cases {
                    let answer = try await api.call(method, path, body)
                    #expect(answer.status == status, "\(method) \(path) \(body): \(answer.status) \(answer.json)")
                    #expect(errorMessage(answer.json).contains(fragment), "\(method) \(path): '\(errorMessage(answer.json))' lacks '\(fragment)'")
                }
                let notJSON = try await api.raw("POST", "/v1/collections/c/points", "{not json")
                #expect(notJSON.status == 400 && errorMessage(notJSON.json).contains("not valid JSON"))
                let nonFinite = try await api.raw("POST", "/v1/collections/c/points", #"{"points":[{"id":"x","vector":[1,2,3,1e999]}]}"#)
                #expect(nonFinite.status == 400, "\(nonFinite.json)")
                // Scores that overflow float32 still make valid JSON (clamped to the largest finite value).
                // (Components are at most 1.8446743e19, whose square is still finite; the squared
                // distance of these two is not.)
                _ = try await api.call("PUT", "/v1/collections/huge", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]])
                _ = try await api.call("POST", "/v1/collections/huge/points", ["points": [["id": "p", "vector": [1.8e19, 1.8e19]]]])
                let overflow = try await api.raw("POST", "/v1/collections/huge/search", #"{"vector":[-1.8e19,-1.8e19],"k":1}"#)
                #expect(overflow.status == 200 && (overflow.json["results"] as? [[String: Any]])?.first?["id"] as? String == "p", "\(overflow)")
                _ = try await api.call("DELETE", "/v1/collections/huge")
                // Nothing was written by any of them.
                #expect(try await api.call("GET", "/v1/collections/c").json["count"] as? Int == 0)
                #expect(try await api.call("GET", "/v1/collections/bad").status == 404)
            }
        }
    }

    @Test func dataSurvivesARestart() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-restart-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        for round in 0..<2 {
            try await withService(shards: 3, dataDirectory: dataDir) { _, peer in
                try await withClient { client in
                    let api = JSONClient(client: client, peer: peer)
                    if round == 0 {
                        _ = try await api.call("PUT", "/v1/collections/keep", ["dimension": 2, "metric": "ip", "index": ["type": "hnsw"]])
                        let points = (0..<50).map { ["id": "k\($0)", "vector": [Double($0), 1]] as [String: Any] }
                        _ = try await api.call("POST", "/v1/collections/keep/points", ["points": points])
                    } else {
                        #expect(try await api.call("GET", "/v1/collections/keep").json["count"] as? Int == 50)
                        let top = try await api.call("POST", "/v1/collections/keep/search", ["vector": [1, 0], "k": 1])
                        #expect((top.json["results"] as? [[String: Any]])?.first?["id"] as? String == "k49")
                    }
                }
            }
        }
    }
}
