import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import VecShardHTTP
import VecShardProto
import VecShardRPC

/// gRPC against REST/JSON for the same search work: a batch of 10 queries (k=10) over the same
/// vectors, served by a `--role shard` process (gRPC) and by a standalone process with one
/// in-process shard (REST). Reports bytes on the wire (message bodies), calls/s from one client,
/// and server CPU per call (from /proc).
struct BenchRPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-rpc",
        abstract: "Compare a 10-query search batch over gRPC and over REST/JSON against the same data.")

    @Option(help: "Vectors loaded into each server.") var points = 20_000
    @Option(help: "Dimension.") var dimension = 768
    @Option(help: "Queries per call.") var batch = 10
    @Option(help: "Results per query.") var k = 10
    @Option(help: "Seconds per measurement.") var seconds = 10.0
    @Option(help: "Index type of the collection.") var index = "hnsw"

    func run() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vecshard-bench-rpc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let shard = try ServerProcess.start(["--role", "shard", "--shard-id", "s0"], dataDir: root + "/shard")
        let rest = try ServerProcess.start(["--shards", "1"], dataDir: root + "/rest")
        defer { shard.stop(); rest.stop() }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let http = HTTP2Client(group: group)
        let grpc = GRPCClient(http: http)
        let shardPeer = Peer(host: "127.0.0.1", port: shard.port), restPeer = Peer(host: "127.0.0.1", port: rest.port)
        var rng = SystemRandomNumberGenerator()
        let vectors = (0..<points).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }

        // The same collection and points in both.
        _ = try await grpc.unary("/vecshard.v1.Shard/CreateCollection",
                                 CreateCollectionRequest(name: "c", dimension: UInt32(dimension), metric: "cosine", index: IndexSpecMessage(type: index)),
                                 to: shardPeer, timeout: .seconds(60), as: CollectionInfoMessage.self)
        _ = try await http.execute(ClientRequest(method: "PUT", path: "/v1/collections/c",
                                                 body: ByteBuffer(string: #"{"dimension":\#(dimension),"metric":"cosine","index":{"type":"\#(index)"}}"#)),
                                   to: restPeer, timeout: .seconds(60))
        for start in stride(from: 0, to: points, by: 1000) {
            let chunk = (start..<min(points, start + 1000)).map { PointMessage(id: "p\($0)", vector: vectors[$0]) }
            _ = try await grpc.unary("/vecshard.v1.Shard/Upsert", UpsertRequest(collection: "c", points: chunk), to: shardPeer, timeout: .seconds(120), as: WriteResponse.self)
            let json = #"{"points":["# + chunk.map { #"{"id":"\#($0.id)","vector":[\#($0.vector.map(\.description).joined(separator: ","))]}"# }.joined(separator: ",") + "]}"
            _ = try await http.execute(ClientRequest(method: "POST", path: "/v1/collections/c/points", body: ByteBuffer(string: json)), to: restPeer, timeout: .seconds(120))
        }
        let queries = (0..<batch).map { _ in (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) } }
        let grpcRequest = SearchRequest(collection: "c", queries: queries.map { QueryMessage(vector: $0, params: SearchParamsMessage(k: UInt32(k)), includeMetadata: true) })
        let restBody = ByteBuffer(string: #"{"queries":["# + queries.map { #"{"k":\#(k),"vector":[\#($0.map(\.description).joined(separator: ","))]}"# }.joined(separator: ",") + "]}")

        // Bytes on the wire: the request and response bodies (HTTP/2 framing and HPACK headers aside).
        let grpcRequestBytes = grpcRequest.serializedBytes().count + 5
        let grpcResponse = try await grpc.unary("/vecshard.v1.Shard/Search", grpcRequest, to: shardPeer, timeout: .seconds(30), as: SearchResponse.self)
        let grpcResponseBytes = grpcResponse.serializedBytes().count + 5
        let restResponse = try await http.execute(ClientRequest(method: "POST", path: "/v1/collections/c/search/batch", body: restBody), to: restPeer, timeout: .seconds(30))
        guard restResponse.status == 200 else { throw ValidationError("REST search failed: \(String(buffer: restResponse.body))") }

        func measure(_ call: @escaping @Sendable () async throws -> Void, server: ServerProcess) async throws -> (callsPerSecond: Double, cpuMsPerCall: Double) {
            for _ in 0..<50 { try await call() }
            let cpu0 = server.cpuSeconds(), start = ContinuousClock.now
            var calls = 0
            while (ContinuousClock.now - start) < .seconds(seconds) {
                try await call()
                calls += 1
            }
            let wall = (ContinuousClock.now - start) / .seconds(1)
            return (Double(calls) / wall, (server.cpuSeconds() - cpu0) * 1000 / Double(calls))
        }
        // Interleaved, two rounds each; the better round counts (the machine's speed drifts).
        var g: [(Double, Double)] = [], r: [(Double, Double)] = []
        for _ in 0..<2 {
            g.append(try await measure({ _ = try await grpc.unary("/vecshard.v1.Shard/Search", grpcRequest, to: shardPeer, timeout: .seconds(30), as: SearchResponse.self) }, server: shard))
            r.append(try await measure({
                let response = try await http.execute(ClientRequest(method: "POST", path: "/v1/collections/c/search/batch", body: restBody), to: restPeer, timeout: .seconds(30))
                _ = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) // a client parses what it gets
            }, server: rest))
        }
        let gBest = g.max { $0.0 < $1.0 }!, rBest = r.max { $0.0 < $1.0 }!
        print(#"{"transport":"grpc","points":\#(points),"dimension":\#(dimension),"index":"\#(index)","batch":\#(batch),"k":\#(k),"request_bytes":\#(grpcRequestBytes),"response_bytes":\#(grpcResponseBytes),"calls_per_s":\#(Int(gBest.0)),"server_cpu_ms_per_call":\#(String(format: "%.3f", gBest.1))}"#)
        print(#"{"transport":"rest","points":\#(points),"dimension":\#(dimension),"index":"\#(index)","batch":\#(batch),"k":\#(k),"request_bytes":\#(restBody.readableBytes),"response_bytes":\#(restResponse.body.readableBytes),"calls_per_s":\#(Int(rBest.0)),"server_cpu_ms_per_call":\#(String(format: "%.3f", rBest.1))}"#)
        print(#"{"ratio_rest_over_grpc":{"request_bytes":\#(String(format: "%.2f", Double(restBody.readableBytes) / Double(grpcRequestBytes))),"response_bytes":\#(String(format: "%.2f", Double(restResponse.body.readableBytes) / Double(grpcResponseBytes))),"calls_per_s":\#(String(format: "%.2f", rBest.0 / gBest.0)),"server_cpu_per_call":\#(String(format: "%.2f", rBest.1 / gBest.1))}}"#)
        await http.shutdown()
        try await group.shutdownGracefully()
    }
}

/// A `vecshard serve` child process on a free port.
struct ServerProcess {
    let process: Process
    let port: Int

    static func start(_ arguments: [String], dataDir: String) throws -> ServerProcess {
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, "--log-level", "warning"] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if (try? Socket.canConnect(port: port)) == true { return ServerProcess(process: process, port: port) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw ValidationError("server \(arguments) did not start")
    }

    /// User + system CPU seconds of the process so far.
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0) // utime, stime (fields 14, 15)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

enum Socket {
    static func canConnect(port: Int) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
}
