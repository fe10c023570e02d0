import Foundation
import Testing
import VecShardHTTP
@testable import VecShardServer

/// `consistency` and `consistency_token` over REST (standalone: every shard has one copy, so
/// every level is met; the replica rules are in VersionedWriteTests): writes answer a token,
/// reads accept it, and bad values are refused naming the field.
@Suite struct ConsistencyAPITests {
    @Test func writesAnswerATokenAndReadsTakeItOrRefuseBadOnes() async throws {
        try await withService(shards: 2) { _, peer in
            try await withClient { client in
                let api = JSONClient(client: client, peer: peer)
                for name in ["c", "other"] {
                    #expect(try await api.call("PUT", "/v1/collections/\(name)", ["dimension": 2, "metric": "l2", "index": ["type": "flat"]]).status == 200)
                }
                let written = try await api.call("POST", "/v1/collections/c/points", ["points": (0..<20).map { ["id": "p\($0)", "vector": [Double($0), 1]] }])
                let token = written.json["consistency_token"] as? String
                #expect(written.status == 200 && token?.hasPrefix("vst1.") == true, "\(written.json)")
                let deleted = try await api.call("POST", "/v1/collections/c/points/delete", ["ids": ["p3"]])
                #expect(deleted.json["consistency_token"] as? String != nil)
                for consistency in ["one", "majority", "all"] {
                    let r = try await api.call("POST", "/v1/collections/c/search", ["vector": [3, 1], "k": 2, "consistency": consistency, "consistency_token": token!])
                    #expect(r.status == 200 && (r.json["results"] as? [[String: Any]])?.count == 2, "\(consistency): \(r)")
                }
                let batch = try await api.call("POST", "/v1/collections/c/search/batch", ["queries": [["vector": [1, 1]]], "consistency": "all", "consistency_token": token!])
                #expect(batch.status == 200)
                let got = try await api.call("GET", "/v1/collections/c/points/p5?consistency=majority&consistency_token=\(token!)")
                #expect(got.status == 200 && got.json["id"] as? String == "p5", "\(got)")

                // Refused, naming the field, changing nothing.
                let level = try await api.call("POST", "/v1/collections/c/search", ["vector": [3, 1], "consistency": "quorum"])
                #expect(level.status == 400 && errorCode(level.json) == "invalid_consistency" && errorMessage(level.json).contains("field consistency"), "\(level)")
                let getLevel = try await api.call("GET", "/v1/collections/c/points/p5?consistency=strong")
                #expect(getLevel.status == 400 && errorCode(getLevel.json) == "invalid_consistency")
                for bad in ["nonsense", "vst1.%%%", "vst1." + Data("c\nshard".utf8).base64EncodedString()] {
                    let r = try await api.call("POST", "/v1/collections/c/search", ["vector": [3, 1], "consistency_token": bad])
                    #expect(r.status == 400 && errorCode(r.json) == "invalid_consistency_token" && errorMessage(r.json).contains("field consistency_token"), "\(bad): \(r)")
                }
                let foreign = try await api.call("POST", "/v1/collections/other/search", ["vector": [3, 1], "consistency_token": token!])
                #expect(foreign.status == 400 && errorMessage(foreign.json).contains("belongs to collection 'c'"), "\(foreign)")
                let inQuery = try await api.call("POST", "/v1/collections/c/search/batch", ["queries": [["vector": [1, 1], "consistency": "all"]]])
                #expect(inQuery.status == 400)
            }
        }
    }
}
