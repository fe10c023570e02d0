import Foundation
import NIOCore
import NIOHTTP1
import Testing
import VecShardHTTP
import VecShardProto
import VecShardRPC
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

    /// The shard role's gRPC service takes the same keys: none or a wrong one is UNAUTHENTICATED,
    /// the read-only key may call the reading RPCs only.
    @Test func shardRoleChecksTheKeyOnGRPC() async throws {
        try await withService(shards: 1, access: AccessPolicy(apiKey: "rw-secret", readOnlyAPIKey: "ro-secret"), role: .shard(id: "s0")) { _, peer in
            try await withClient { http in
                func code(_ key: String?, _ body: (GRPCClient) async throws -> Void) async -> GRPCStatusCode {
                    do { try await body(GRPCClient(http: http, apiKey: key)); return .ok } catch let e as GRPCError { return e.code } catch { return .unknown }
                }
                let create = { (c: GRPCClient) in
                    _ = try await c.unary("/vecshard.v1.Shard/CreateCollection", CreateCollectionRequest(name: "c", dimension: 2, metric: "l2"),
                                          to: peer, timeout: .seconds(10), as: CollectionInfoMessage.self)
                }
                let stats = { (c: GRPCClient) in
                    _ = try await c.unary("/vecshard.v1.Shard/Stats", StatsRequest(), to: peer, timeout: .seconds(10), as: StatsResponse.self)
                }
                #expect(await code(nil, create) == .unauthenticated)
                #expect(await code("guess", create) == .unauthenticated)
                #expect(await code("ro-secret", create) == .permissionDenied)
                #expect(await code("ro-secret", stats) == .ok)
                #expect(await code("rw-secret", create) == .ok)
                #expect(await code(nil, stats) == .unauthenticated)
                // Nothing was created by the refused calls: the one collection is the key holder's.
                let c = GRPCClient(http: http, apiKey: "rw-secret")
                let s = try await c.unary("/vecshard.v1.Shard/Stats", StatsRequest(), to: peer, timeout: .seconds(10), as: StatsResponse.self)
                #expect(s.collections.map(\.name) == ["c"])
            }
        }
    }

    /// The same with a real gRPC client (grpcio, raw bytes: an empty StatsRequest).
    @Test func grpcioSeesUnauthenticatedWithoutTheShardKey() async throws {
        try await withService(shards: 1, access: AccessPolicy(apiKey: "rw-secret"), role: .shard(id: "s0")) { _, peer in
            let script = """
            import grpc, sys
            channel = grpc.insecure_channel("127.0.0.1:\(peer.port)")
            stats = channel.unary_unary("/vecshard.v1.Shard/Stats")
            def code(metadata):
                try:
                    stats(b"", metadata=metadata, timeout=10)
                    return "OK"
                except grpc.RpcError as e:
                    return e.code().name
            print(code(None), code([("authorization", "Bearer wrong")]), code([("authorization", "Bearer rw-secret")]))
            """
            let result = try await runTool(["python3", "-c", script], timeout: 60)
            #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "UNAUTHENTICATED UNAUTHENTICATED OK", "\(result.output)")
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
