import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import VecShardBench
import VecShardCluster
import VecShardShard
import VecShardShardAPI
import VecShardHTTP
import VecShardProto
import VecShardRouting
import VecShardStorage

/// Search load against a loaded collection: the queries of a gen.py dataset (query.fvecs), their
/// exact answers (gt.ivecs, ids = row numbers as `vecshard import` writes them), N concurrent
/// clients over HTTP/2 (or the same shards searched in-process, without HTTP, with --in-process).
struct BenchSearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-search",
        abstract: "Measure search QPS, p50/p99 latency and recall@10 of a loaded collection with 1..N concurrent clients.")

    @Option(help: "Base URL of the service.") var url = "http://127.0.0.1:8080"
    @Option(help: "Collection holding the dataset's base vectors (ids = row numbers).") var collection: String
    @Option(help: "Dataset folder (query.fvecs, gt.ivecs) from ../shared/bench/gen.py.") var data: String
    @Option(help: "Concurrent clients, comma-separated.") var clients = "1,8,64"
    @Option(help: "Search knob: ef (HNSW) or nprobe (IVF) values, comma-separated, as name=v1,v2.") var sweep = "ef=64"
    @Option(help: "Queries per measurement (cycled).") var queries = 2000
    @Option(help: "Results per query.") var k = 10
    @Option(help: "params.oversample of every query.") var oversample: Double?
    @Option(name: .customLong("in-process"), help: "Search the shards under this standalone --data-dir directly (no HTTP): the router's own cost.")
    var inProcess: String?
    @Option(name: .customLong("shards"), help: "With --in-process: the number of shards (s0...s<N-1>).") var shardCount = 4

    func run() async throws {
        let (queryValues, dim) = try Texmex.readFvecs(data + "/query.fvecs")
        let (gt, width) = try Texmex.readIvecs(data + "/gt.ivecs")
        let queryCount = queryValues.count / dim
        let parts = sweep.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, ["ef", "nprobe"].contains(String(parts[0])) else { throw ValidationError("--sweep must be ef=... or nprobe=...") }
        let knob = String(parts[0])
        let values = parts[1].split(separator: ",").compactMap { Int($0) }
        let clientCounts = clients.split(separator: ",").compactMap { Int($0) }

        let search: @Sendable (Int, Int) async throws -> [String]
        var cleanup: (@Sendable () async -> Void)?
        if let dir = inProcess {
            var shards: [String: any ShardClient] = [:]
            var opened: [Shard] = []
            for i in 0..<shardCount {
                let storage = try await Shard.open(directory: "\(dir)/shards/s\(i)")
                opened.append(storage)
                shards["s\(i)"] = LocalShard(name: "s\(i)", storage: storage)
            }
            let topology = Topology(version: 1, groups: [ShardGroup(name: "default", shards: (0..<shardCount).map { ShardDescriptor(name: "s\($0)") })])
            let router = try ClusterRouter(table: try RoutingTable(topology), shards: shards)
            let collection = self.collection, k = self.k, oversample = self.oversample
            search = { q, v in
                let vector = Array(queryValues[(q * dim)..<((q + 1) * dim)])
                // Ids and scores only (the recall check needs nothing else).
                let query = ShardQuery(vector: vector, k: k, nprobe: knob == "nprobe" ? v : nil, ef: knob == "ef" ? v : nil, includeMetadata: false)
                return try await router.search(collection: collection, queries: [query], oversample: oversample)
                    .results[0].map(\.id)
            }
            let all = opened
            cleanup = { for s in all { await s.close() } }
        } else {
            guard let components = URLComponents(string: url), let host = components.host else { throw ValidationError("--url must be http://host:port") }
            let peer = Peer(host: host, port: components.port ?? 80)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var configuration = HTTP2Client.Configuration()
            configuration.connectionsPerPeer = 4
            configuration.streamsPerConnection = 16
            let client = HTTP2Client(group: group, configuration: configuration)
            let path = "/v1/collections/\(collection)/search"
            let k = self.k, oversample = self.oversample
            search = { q, v in
                var body = #"{"k":\#(k),"include_metadata":false,"params":{"\#(knob)":\#(v)"#
                if let oversample { body += #","oversample":\#(oversample)"# }
                body += #"},"vector":["#
                body += queryValues[(q * dim)..<((q + 1) * dim)].map(\.description).joined(separator: ",")
                body += "]}"
                let response = try await client.execute(ClientRequest(method: "POST", path: path, headers: ["content-type": "application/json"],
                                                                      body: ByteBuffer(string: body)), to: peer, timeout: .seconds(30))
                guard response.status == 200 else { throw ValidationError("search failed: \(response.status) \(String(buffer: response.body))") }
                let json = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                return ((json?["results"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
            }
            cleanup = {
                await client.shutdown()
                try? await group.shutdownGracefully()
            }
        }
        for value in values {
            for c in clientCounts {
                // Warm-up, then the measured pass.
                _ = try await measure(search, value: value, clients: c, total: min(200, queries), queryCount: queryCount, gt: gt, width: width)
                let r = try await measure(search, value: value, clients: c, total: queries, queryCount: queryCount, gt: gt, width: width)
                print(#"{"mode":"\#(inProcess == nil ? "rest" : "in-process")","collection":"\#(collection)","params":{"\#(knob)":\#(value)},"clients":\#(c),"# +
                      #""queries":\#(queries),"recall_at_10":\#(String(format: "%.4f", r.recall)),"qps":\#(Int(r.qps)),"# +
                      #""p50_ms":\#(String(format: "%.3f", r.p50)),"p99_ms":\#(String(format: "%.3f", r.p99))}"#)
            }
        }
        await cleanup?()
    }

    private func measure(_ search: @escaping @Sendable (Int, Int) async throws -> [String], value: Int, clients: Int, total: Int,
                         queryCount: Int, gt: [Int32], width: Int) async throws -> (qps: Double, p50: Double, p99: Double, recall: Double) {
        let start = ContinuousClock.now
        let perClient = (total + clients - 1) / clients
        let samples = try await withThrowingTaskGroup(of: [(Double, Int)].self) { group in
            for c in 0..<clients {
                group.addTask {
                    var out: [(Double, Int)] = []
                    for i in 0..<perClient {
                        let q = (c * perClient + i) % queryCount
                        let t0 = ContinuousClock.now
                        let ids = try await search(q, value)
                        let ms = (ContinuousClock.now - t0) / .milliseconds(1)
                        let truth = Set(gt[(q * width)..<(q * width + 10)].map { String($0) })
                        out.append((ms, ids.prefix(10).filter { truth.contains($0) }.count))
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let latencies = samples.map(\.0).sorted()
        let recall = Double(samples.reduce(0) { $0 + $1.1 }) / Double(samples.count * 10)
        return (Double(samples.count) / seconds, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)], recall)
    }
}
