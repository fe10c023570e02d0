import Foundation
import NIOCore
import VecShardCluster
import VecShardHTTP
import VecShardSchema
import VecShardShardAPI
import VecShardRouting

/// `/admin/...`: shard states, maintenance (flush, compact) and the topology (read, replace with If-Match).
extension DataRoutes {
    static func addAdminRoutes(to router: inout Router, cluster handle: ClusterHandle, requestTimeout: Duration) {
        route(&router, "GET", "/admin/shards", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            let stats = try await cluster.stats()
            let counts = cluster.shardRequestCounts
            let replicated = Dictionary(cluster.replicaSets.map { ($0.name, $0.replicaStates) }, uniquingKeysWith: { a, _ in a })
            var w = JSONWriter()
            w.raw("{\"shards\":[")
            for (i, s) in stats.sorted(by: { $0.shardID < $1.shardID }).enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{\"name\":"); w.string(s.shardID)
                w.raw(",\"state\":\"ready\",\"points\":"); w.number(s.collections.reduce(0) { $0 + $1.count })
                w.raw(",\"segments\":"); w.number(s.collections.reduce(0) { $0 + Int($1.segments) })
                w.raw(",\"memory_bytes\":"); w.number(s.memoryBytes)
                w.raw(",\"disk_bytes\":"); w.number(s.diskBytes)
                w.raw(",\"requests\":"); w.number(counts[s.shardID] ?? 0)
                if let replicas = replicated[s.shardID] {
                    w.raw(",\"replicas\":[")
                    for (j, r) in replicas.enumerated() {
                        if j > 0 { w.raw(",") }
                        w.raw("{\"address\":"); w.string(r.address); w.raw(",\"state\":"); w.string(r.state)
                        if let points = r.points { w.raw(",\"points\":"); w.number(points) }
                        // Versions and checksums are u64s, written as strings: JSON numbers above 2^53
                        // lose digits in many clients.
                        if let version = r.version { w.raw(",\"version\":"); w.string(String(version)) }
                        if let lag = r.lag { w.raw(",\"lag\":"); w.number(lag) }
                        if let seconds = r.lagSeconds { w.raw(",\"lag_seconds\":"); w.number(seconds) }
                        if let checksum = r.checksum { w.raw(",\"checksum\":"); w.string(String(format: "%016llx", checksum)) }
                        w.raw("}")
                    }
                    w.raw("]")
                }
                w.raw(",\"collections\":[")
                for (j, c) in s.collections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.collection(c)
                }
                w.raw("],\"maintenance\":{")
                for (j, c) in s.collections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.string(c.name); w.raw(":"); w.maintenance(c)
                }
                w.raw("},\"refused_collections\":[")
                for (j, c) in s.refusedCollections.enumerated() {
                    if j > 0 { w.raw(",") }
                    w.refusedCollection(c)
                }
                w.raw("]}")
            }
            w.raw("]}")
            return json(w)
        }
        route(&router, "POST", "/admin/collections/{name}/flush", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            try await cluster.flush(request.pathParameters["name"]!)
            return .json(.ok, #"{"flushed":true}"#)
        }
        route(&router, "POST", "/admin/collections/{name}/compact", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            try await cluster.compact(request.pathParameters["name"]!)
            return .json(.ok, #"{"compacted":true}"#)
        }
        route(&router, "GET", "/admin/topology", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            let topology = cluster.table.topology
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return .json(.ok, ByteBuffer(bytes: try encoder.encode(topology)), headers: ["etag": "\"\(topology.version)\""])
        }
        route(&router, "PUT", "/admin/topology", requestTimeout, cut: false) { request in
            let cluster = try handle.current
            let proposed = try decode(Topology.self, request)
            var expected: UInt64?
            if let ifMatch = request.headers.first(name: "if-match") {
                guard let version = UInt64(ifMatch.trimmingCharacters(in: CharacterSet(charactersIn: "\" W/"))) else {
                    throw RequestBodyError(message: "If-Match must be the topology version, e.g. \"3\"; got \(ifMatch)")
                }
                expected = version
            }
            let change = try await cluster.replaceTopology(proposed, expectedVersion: expected, makeClient: handle.makeShardClient)
            if let started = change.rebalance {
                // Points move: the change is accepted and runs in the background.
                var w = JSONWriter()
                w.raw("{\"rebalance\":")
                w.rebalance(started, eta: nil)
                w.raw("}")
                return .json(.accepted, ByteBuffer(bytes: w.bytes), headers: ["location": "/admin/rebalance"])
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return .json(.ok, ByteBuffer(bytes: try encoder.encode(proposed)), headers: ["etag": "\"\(proposed.version)\""])
        }
        route(&router, "GET", "/admin/rebalance", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            var w = JSONWriter()
            if let (record, eta) = cluster.rebalanceStatus {
                w.rebalance(record, eta: eta)
            } else {
                w.raw(#"{"state":"idle"}"#)
            }
            return json(w)
        }
        route(&router, "POST", "/admin/rebalance/abort", requestTimeout, cut: false) { _ in
            let cluster = try handle.current
            let record = try cluster.abortRebalance()
            var w = JSONWriter()
            w.raw("{\"rebalance\":")
            w.rebalance(record, eta: nil, aborting: true)
            w.raw("}")
            return .json(.accepted, ByteBuffer(bytes: w.bytes))
        }
    }
}

extension JSONWriter {
    /// A rebalance as `GET /admin/rebalance` shows it (openapi.yaml, Rebalance).
    mutating func rebalance(_ r: RebalanceRecord, eta: Double?, aborting: Bool = false) {
        let formatter = ISO8601DateFormatter()
        raw("{\"id\":"); string(r.id)
        raw(",\"state\":"); string(r.state)
        raw(",\"phase\":"); string(aborting ? "aborting" : r.phase.rawValue)
        raw(",\"from_version\":"); number(Int(r.from.version))
        raw(",\"to_version\":"); number(Int(r.to.version))
        raw(",\"moved_points\":"); number(Int(r.movedPoints))
        raw(",\"total_points\":"); number(Int(r.totalPoints))
        raw(",\"removed_points\":"); number(Int(r.removedPoints))
        raw(",\"collections\":[")
        for (i, c) in r.collections.enumerated() {
            if i > 0 { raw(",") }
            string(c)
        }
        raw("],\"started_at\":"); string(formatter.string(from: r.startedAt))
        if let finished = r.finishedAt { raw(",\"finished_at\":"); string(formatter.string(from: finished)) }
        raw(",\"eta_seconds\":")
        if let eta { number(eta) } else { raw(r.isRunning ? "null" : "0") }
        if let error = r.error { raw(",\"error\":"); string(error) }
        raw(",\"shards\":[")
        for (i, t) in r.tasks.enumerated() {
            if i > 0 { raw(",") }
            raw("{\"source\":"); string(t.source)
            raw(",\"collection\":"); string(t.collection)
            raw(",\"moved_points\":"); number(Int(t.copied))
            raw(",\"done\":"); raw(t.done ? "true" : "false")
            raw("}")
        }
        raw("]}")
    }
}
