import Foundation
import NIOCore
import NIOPosix
import NIOHTTP1
import Testing
import VecShardHTTP
import VecShardProto
@testable import VecShardRPC
import VecShardCluster
import VecShardSchema
import VecShardShardAPI

/// A fake `vecshard.v1.Shard`: deterministic answers, enough to exercise every method and status.
func makeFakeShardService() -> GRPCService {
    var service = GRPCService(name: "vecshard.v1.Shard", maxMessageBytes: 1 << 20)
    service.unary("CreateCollection") { (request: CreateCollectionRequest, _) -> CollectionInfoMessage in
        guard !request.name.isEmpty else { throw GRPCError(.invalidArgument, "collection name is empty") }
        var info = CollectionInfoMessage()
        info.name = request.name
        info.dimension = request.dimension
        info.metric = request.metric
        info.index = request.index
        return info
    }
    service.unary("DescribeCollection") { (request: CollectionNameRequest, _) -> CollectionInfoMessage in
        throw GRPCError(.notFound, "collection '\(request.name)' does not exist")
    }
    service.unary("DropCollection") { (_: CollectionNameRequest, _) in DropCollectionResponse(dropped: true) }
    service.unary("Upsert") { (request: UpsertRequest, _) in WriteResponse(lsn: 1, applied: UInt32(request.points.count)) }
    service.unary("Delete") { (request: IDsRequest, _) in WriteResponse(lsn: 2, applied: UInt32(request.ids.count)) }
    service.unary("Get") { (request: IDsRequest, _) -> PointsResponse in
        if request.ids == ["slow"] { try await Task.sleep(nanoseconds: 3_000_000_000) }
        return PointsResponse(points: request.ids.map { PointMessage(id: $0, vector: request.includeVector ? [1, 2] : []) })
    }
    service.unary("Search") { (request: SearchRequest, _) -> SearchResponse in
        SearchResponse(results: request.queries.map { query in
            (0..<Int(query.params?.k ?? 10)).map { j in
                var metadata: [String: MetadataValueMessage] = [:]
                for (field, values) in query.filter?.must ?? [:] { metadata[field] = values.first }
                return ScoredPointMessage(id: "hit-\(j)", score: -Float(j), metadata: metadata)
            }
        })
    }
    service.unary("Stats") { (_: StatsRequest, _) -> StatsResponse in
        var stats = StatsResponse()
        stats.shardID = "test-shard"
        return stats
    }
    service.serverStreaming("Scan") { (request: ScanRequest, _, send: @Sendable (PointsResponse) async throws -> Void) in
        let total = 10, batch = Int(max(request.batchSize, 1))
        for start in stride(from: 0, to: total, by: batch) {
            try await send(PointsResponse(points: (start..<min(start + batch, total)).map { PointMessage(id: "p\($0)") }))
        }
    }
    return service
}

func withGRPCServer<T>(limits: HTTPServerLimits = HTTPServerLimits(), _ body: (Peer) async throws -> T) async throws -> T {
    var router = Router()
    makeFakeShardService().install(into: &router)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.limits = limits
    let server = HTTPServer(configuration: configuration, router: router, group: group)
    try await server.start()
    let result: Result<T, any Error>
    do { result = .success(try await body(Peer(host: "127.0.0.1", port: server.port))) } catch { result = .failure(error) }
    await server.shutdown(gracePeriod: .seconds(2))
    try await group.shutdownGracefully()
    return try result.get()
}

func withGRPCClient<T>(_ body: (GRPCClient) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let http = HTTP2Client(group: group)
    let result: Result<T, any Error>
    do { result = .success(try await body(GRPCClient(http: http))) } catch { result = .failure(error) }
    await http.shutdown()
    try await group.shutdownGracefully()
    return try result.get()
}

@Suite struct GRPCTests {
    @Test func unaryAndStreamingCallsWithTheOwnClient() async throws {
        try await withGRPCServer { peer in
            try await withGRPCClient { client in
                let info = try await client.unary("/vecshard.v1.Shard/CreateCollection",
                                                  CreateCollectionRequest(name: "docs", dimension: 8, metric: "l2"),
                                                  to: peer, timeout: .seconds(5), as: CollectionInfoMessage.self)
                #expect(info.name == "docs" && info.dimension == 8)
                let search = try await client.unary("/vecshard.v1.Shard/Search",
                                                    SearchRequest(collection: "docs", queries: [QueryMessage(vector: [1, 2], params: SearchParamsMessage(k: 3))]),
                                                    to: peer, timeout: .seconds(5), as: SearchResponse.self)
                #expect(search.results.map { $0.map(\.id) } == [["hit-0", "hit-1", "hit-2"]])
                let batches = try await client.serverStreaming("/vecshard.v1.Shard/Scan", ScanRequest(collection: "docs", batchSize: 3),
                                                               to: peer, timeout: .seconds(5), as: PointsResponse.self)
                #expect(batches.map(\.points.count) == [3, 3, 3, 1])
            }
        }
    }

    @Test func statusesReachTheClient() async throws {
        try await withGRPCServer { peer in
            try await withGRPCClient { client in
                func status(_ path: String, _ request: some ProtoMessage, timeout: TimeAmount = .seconds(5)) async -> GRPCError? {
                    do {
                        _ = try await client.unary(path, request, to: peer, timeout: timeout, as: PointsResponse.self)
                        return nil
                    } catch { return error as? GRPCError }
                }
                let notFound = await status("/vecshard.v1.Shard/DescribeCollection", CollectionNameRequest(name: "missing"))
                #expect(notFound == GRPCError(.notFound, "collection 'missing' does not exist"))
                let invalid = await status("/vecshard.v1.Shard/CreateCollection", CreateCollectionRequest())
                #expect(invalid?.code == .invalidArgument)
                let unimplemented = await status("/vecshard.v1.Shard/Nope", StatsRequest())
                #expect(unimplemented?.code == .unimplemented)
                #expect(unimplemented?.message.contains("Nope") == true)
                let late = await status("/vecshard.v1.Shard/Get", IDsRequest(collection: "c", ids: ["slow"]), timeout: .milliseconds(200))
                #expect(late?.code == .deadlineExceeded)
                let unknownService = await status("/other.Service/Get", StatsRequest())
                #expect(unknownService?.code == .unimplemented) // HTTP 404 maps to UNIMPLEMENTED
            }
        }
    }

    @Test func framingErrorsAndLimits() async throws {
        try await withGRPCServer { peer in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let http = HTTP2Client(group: group)
            func raw(_ body: ByteBuffer, headers: HTTPHeaders = ["content-type": "application/grpc", "te": "trailers"]) async throws -> ClientResponse {
                try await http.execute(ClientRequest(method: "POST", path: "/vecshard.v1.Shard/Search", headers: headers, body: body),
                                       to: peer, timeout: .seconds(5))
            }
            func frame(flag: UInt8, _ payload: [UInt8]) -> ByteBuffer {
                var b = ByteBuffer()
                b.writeInteger(flag)
                b.writeInteger(UInt32(payload.count), endianness: .big)
                b.writeBytes(payload)
                return b
            }
            let compressed = try await raw(frame(flag: 1, [1, 2, 3]), headers: ["content-type": "application/grpc", "grpc-encoding": "gzip"])
            #expect(compressed.headers.first(name: "grpc-status") == "12") // UNIMPLEMENTED, trailers-only
            #expect(compressed.headers.first(name: "grpc-message")?.contains("gzip") == true)
            let malformed = try await raw(frame(flag: 0, [0x0a, 0x05, 0x61]))
            #expect(malformed.headers.first(name: "grpc-status") == "3") // INVALID_ARGUMENT
            var big = ByteBuffer()
            big.writeInteger(UInt8(0))
            big.writeInteger(UInt32(2 << 20), endianness: .big)
            big.writeBytes([UInt8](repeating: 0, count: 2 << 20))
            let oversized = try await raw(big)
            #expect(oversized.headers.first(name: "grpc-status") == "8") // RESOURCE_EXHAUSTED
            #expect(oversized.headers.first(name: "grpc-message")?.contains("1048576") == true)
            let badTimeout = try await raw(frame(flag: 0, []), headers: ["content-type": "application/grpc", "grpc-timeout": "soon"])
            #expect(badTimeout.headers.first(name: "grpc-status") == "3")
            let wrongType = try await raw(frame(flag: 0, []), headers: ["content-type": "application/json"])
            #expect(wrongType.status == 415)
            let message = "naïve 100% sure\nnext line"
            #expect(GRPCMessageEncoding.decode(GRPCMessageEncoding.encode(message)) == message)
            #expect(GRPCMessageEncoding.encode("a%b") == "a%25b")
            await http.shutdown()
            try await group.shutdownGracefully()
        }
    }

    /// Every refusal the HTTP server makes before a handler runs is gRPC-shaped for
    /// `application/grpc` requests: HTTP 200, trailers-only, a grpc-status and a message naming
    /// the limit; other requests keep the JSON error.
    @Test func earlyRefusalsOfGRPCRequestsAreGRPCShaped() async throws {
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 64 * 1024
        limits.maxHeaderListBytes = 4096
        try await withGRPCServer(limits: limits) { peer in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let http = HTTP2Client(group: group)
            let grpc: HTTPHeaders = ["content-type": "application/grpc", "te": "trailers"]
            func call(_ path: String, body: Int, headers: HTTPHeaders = grpc) async throws -> ClientResponse {
                try await http.execute(ClientRequest(method: "POST", path: path, headers: headers, body: ByteBuffer(repeating: 0, count: body)),
                                       to: peer, timeout: .seconds(5))
            }
            let overBody = try await call("/vecshard.v1.Shard/Upsert", body: 100_000)
            #expect(overBody.status == 200)
            #expect(overBody.headers.first(name: "grpc-status") == "8") // RESOURCE_EXHAUSTED
            #expect(overBody.headers.first(name: "grpc-message")?.contains("65536") == true)
            var big = grpc
            big.add(name: "x-big", value: String(repeating: "h", count: 8000))
            let overHeaders = try await call("/vecshard.v1.Shard/Upsert", body: 10, headers: big)
            #expect(overHeaders.status == 200 && overHeaders.headers.first(name: "grpc-status") == "8")
            let unknown = try await call("/other.Service/Get", body: 10)
            #expect(unknown.status == 200 && unknown.headers.first(name: "grpc-status") == "12") // UNIMPLEMENTED
            let json = try await call("/vecshard.v1.Shard/Upsert", body: 100_000, headers: ["content-type": "application/json"])
            #expect(json.status == 413)
            await http.shutdown()
            try await group.shutdownGracefully()
        }
    }

    @Test func timeoutHeaderEncoding() {
        #expect(GRPCTimeout.encode(nanoseconds: 250_000_000) == "250000u")
        #expect(GRPCTimeout.encode(nanoseconds: 5_000) == "5000n")
        #expect(GRPCTimeout.parse("250m") == 250_000_000)
        #expect(GRPCTimeout.parse("1H") == 3_600_000_000_000)
        #expect(GRPCTimeout.parse("123456789S") == nil) // more than 8 digits
        #expect(GRPCTimeout.parse("5x") == nil)
    }
}

/// Python grpcio on the other side, both ways (pip packages installed by scripts/bootstrap.sh).
@Suite struct GRPCInteropTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = packageRoot.appendingPathComponent("Tests/VecShardRPCTests/Interop/grpc_peer.py").path
    static let proto = packageRoot.appendingPathComponent("proto").path

    @Test func pythonGrpcioClientCallsEveryMethod() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-grpc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try await withGRPCServer { peer in
            let (status, output) = try await runOffPool(["python3", Self.script, "client", Self.proto, work.path, String(peer.port)])
            #expect(status == 0, "python client: \(output)")
            #expect(output.contains("client done"))
        }
    }

    /// grpcio reads a request over the HTTP body limit as RESOURCE_EXHAUSTED naming the limit
    /// (an HTTP 413 would be UNKNOWN to it).
    @Test func pythonGrpcioClientOverTheBodyLimitGetsResourceExhausted() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-grpc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        var limits = HTTPServerLimits()
        limits.maxBodyBytes = 64 * 1024
        try await withGRPCServer(limits: limits) { peer in
            let (status, output) = try await runOffPool(["python3", Self.script, "over-limit", Self.proto, work.path, String(peer.port),
                                                         String(limits.maxBodyBytes)])
            #expect(status == 0, "python client: \(output)")
            #expect(output.contains("over-limit done"))
        }
    }

    @Test func ownClientCallsAPythonGrpcioServer() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-grpc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "server", Self.proto, work.path]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        defer {
            try? stdin.fileHandleForWriting.close()
            process.terminate()
        }
        let portLine = try await blockingRead { String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self) }
        let port = try #require(Int(portLine.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        let peer = Peer(host: "127.0.0.1", port: port)
        try await withGRPCClient { client in
            let search = try await client.unary("/vecshard.v1.Shard/Search",
                                                SearchRequest(collection: "c", queries: [QueryMessage(vector: [0.5, -1], params: SearchParamsMessage(k: 2))]),
                                                to: peer, timeout: .seconds(5), as: SearchResponse.self)
            #expect(search.results == [[ScoredPointMessage(id: "c-0", score: 0, vector: [0.5, -1]),
                                        ScoredPointMessage(id: "c-1", score: -1, vector: [0.5, -1])]])
            let write = try await client.unary("/vecshard.v1.Shard/Upsert", UpsertRequest(collection: "c", points: [PointMessage(id: "a", vector: [1])]),
                                               to: peer, timeout: .seconds(5), as: WriteResponse.self)
            #expect(write == WriteResponse(lsn: 42, applied: 1))
            let batches = try await client.serverStreaming("/vecshard.v1.Shard/Scan", ScanRequest(collection: "c", batchSize: 2),
                                                           to: peer, timeout: .seconds(5), as: PointsResponse.self)
            #expect(batches.map { $0.points.map(\.id) } == [["s0-0", "s0-1"], ["s1-0", "s1-1"], ["s2-0", "s2-1"]])
            do {
                _ = try await client.unary("/vecshard.v1.Shard/DescribeCollection", CollectionNameRequest(name: "x"), to: peer,
                                           timeout: .seconds(5), as: CollectionInfoMessage.self)
                Issue.record("expected NOT_FOUND")
            } catch let error as GRPCError {
                #expect(error == GRPCError(.notFound, "collection 'x' does not exist (ü)"))
            }
            do {
                _ = try await client.unary("/vecshard.v1.Shard/Get", IDsRequest(collection: "c"), to: peer, timeout: .milliseconds(200), as: PointsResponse.self)
                Issue.record("expected DEADLINE_EXCEEDED")
            } catch let error as GRPCError {
                #expect(error.code == .deadlineExceeded)
            }
            do {
                _ = try await client.unary("/vecshard.v1.Shard/Stats", StatsRequest(), to: peer, timeout: .seconds(5), as: StatsResponse.self)
                Issue.record("expected UNIMPLEMENTED")
            } catch let error as GRPCError {
                #expect(error.code == .unimplemented)
            }
        }
    }

    private func runOffPool(_ arguments: [String]) async throws -> (Int32, String) {
        try await blockingRead {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    /// Blocking work on a thread of its own, never on the two-thread cooperative pool.
    private func blockingRead<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}

@Suite struct DeadlinePropagationTests {
    @Test func remoteShardCallsCarryTheRequestDeadline() async throws {
        try await withGRPCServer { peer in
            try await withGRPCClient { client in
                let shard = RemoteShard(name: "s", peer: peer, client: client, timeout: .seconds(30))
                let start = ContinuousClock.now
                do {
                    _ = try await RequestDeadline.$current.withValue(ContinuousClock.now + .milliseconds(300)) {
                        try await shard.get(collection: "c", ids: ["slow"], includeVector: false) // the fake service sleeps 3 s
                    }
                    Issue.record("expected DEADLINE_EXCEEDED")
                } catch let error as ShardCallError {
                    #expect(error.kind == .deadlineExceeded)
                }
                #expect(ContinuousClock.now - start < .milliseconds(2_500)) // the fake answers after 3 s: anything shorter is the 300 ms deadline (plus scheduling on a loaded 2-core machine)
                // Without a request deadline the shard's own timeout applies and the call succeeds.
                let fast = try await shard.get(collection: "c", ids: ["a"], includeVector: false)
                #expect(fast.map(\.id) == ["a"])
            }
        }
    }
}
