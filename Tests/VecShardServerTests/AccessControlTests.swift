import Foundation
import NIOCore
import NIOHTTP1
import Testing
import VecShardHTTP
@testable import VecShardServer

@Suite struct AccessControlTests {
    private func call(_ client: HTTP2Client, _ peer: Peer, _ method: String, _ path: String, key: String?, body: String? = nil) async throws -> (Int, String) {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if let key { headers.add(name: "authorization", value: "Bearer \(key)") }
        let r = try await client.execute(ClientRequest(method: method, path: path, headers: headers, body: body.map { ByteBuffer(string: $0) }),
                                         to: peer, timeout: .seconds(10))
        return (r.status, String(buffer: r.body))
    }

    @Test func keysGateTheDataAndAdminAPIButNotTheProbes() async throws {
        try await withService(shards: 1, access: AccessPolicy(apiKey: "rw-secret", readOnlyAPIKey: "ro-secret")) { _, peer in
            try await withClient { client in
                #expect(try await call(client, peer, "GET", "/healthz", key: nil).0 == 200)
                #expect(try await call(client, peer, "GET", "/metrics", key: nil).0 == 200)
                let missing = try await call(client, peer, "GET", "/v1/collections", key: nil)
                #expect(missing.0 == 401 && missing.1.contains("Authorization: Bearer"))
                let wrong = try await call(client, peer, "GET", "/v1/collections", key: "guess")
                #expect(wrong.0 == 401 && wrong.1.contains("invalid API key"))
                #expect(try await call(client, peer, "PUT", "/v1/collections/c", key: "rw-secret", body: #"{"dimension":2,"metric":"l2"}"#).0 == 200)
                #expect(try await call(client, peer, "POST", "/v1/collections/c/points", key: "rw-secret",
                                       body: #"{"points":[{"id":"a","vector":[1,2]}]}"#).0 == 200)
                // The read-only key reads and searches, and nothing else.
                #expect(try await call(client, peer, "GET", "/v1/collections/c", key: "ro-secret").0 == 200)
                #expect(try await call(client, peer, "POST", "/v1/collections/c/search", key: "ro-secret", body: #"{"vector":[1,2]}"#).0 == 200)
                let write = try await call(client, peer, "POST", "/v1/collections/c/points", key: "ro-secret", body: #"{"points":[{"id":"b","vector":[1,2]}]}"#)
                #expect(write.0 == 403 && write.1.contains("read-only API key cannot POST"))
                #expect(try await call(client, peer, "GET", "/admin/shards", key: "ro-secret").0 == 403)
                #expect(try await call(client, peer, "DELETE", "/v1/collections/c", key: "ro-secret").0 == 403)
                #expect(try await call(client, peer, "GET", "/admin/shards", key: "rw-secret").0 == 200)
            }
        }
    }

    /// RFC 7235 section 2.1: the auth scheme is case-insensitive.
    @Test func bearerSchemeIsCaseInsensitive() async throws {
        #expect(AccessPolicy.bearerCredentials("bearer k1") == "k1")
        #expect(AccessPolicy.bearerCredentials("BEARER  k1") == "k1")
        #expect(AccessPolicy.bearerCredentials("Basic k1") == nil)
        #expect(AccessPolicy.bearerCredentials("Bearerk1") == nil)
        try await withService(shards: 1, access: AccessPolicy(apiKey: "rw-secret")) { _, peer in
            try await withClient { client in
                for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
                    let r = try await client.execute(ClientRequest(method: "GET", path: "/v1/collections",
                                                                   headers: ["authorization": "\(scheme) rw-secret"]),
                                                     to: peer, timeout: .seconds(10))
                    #expect(r.status == 200, "scheme \(scheme): \(String(buffer: r.body))")
                }
            }
        }
    }

    @Test func shardIDFromPodName() {
        #expect(PodIdentity.shardID(fromPodName: "shard-main-s0-1") == "shard-main-s0")
        #expect(PodIdentity.shardID(fromPodName: "s3-0") == "s3")
        #expect(PodIdentity.shardID(fromPodName: "router-abc") == nil)
        #expect(PodIdentity.shardID(fromPodName: "-1") == nil)
        #expect(PodIdentity.shardID(fromPodName: "s0-") == nil)
    }

    @Test func constantTimeCompare() {
        #expect(AccessPolicy.constantTimeEqual("abc", "abc"))
        #expect(!AccessPolicy.constantTimeEqual("abc", "abd"))
        #expect(!AccessPolicy.constantTimeEqual("abc", "abcd"))
        #expect(!AccessPolicy.constantTimeEqual("", "a"))
    }
}
