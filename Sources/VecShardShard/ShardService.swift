import Synchronization
import VecShardProto
import VecShardRPC
import VecShardSchema
import VecShardShardAPI

extension ShardGRPC {
    /// Serves `shard` (normally a `LocalShard`) as the gRPC shard service: each method decodes
    /// its message into the seam's values (ProtoToSchema.swift), calls the shard, and encodes
    /// the answer (SchemaToProto.swift). Errors travel as gRPC statuses (`ShardCallError.grpcError`).
    public static func service(for shard: any ShardClient, maxMessageBytes: Int = 64 * 1024 * 1024) -> GRPCService {
        var s = GRPCService(name: serviceName, maxMessageBytes: maxMessageBytes)
        let routers = RecentRouters()
        s.unary("CreateCollection") { (r: CreateCollectionRequest, _) -> CollectionInfoMessage in
            let schema: CollectionSchema
            do { schema = try CollectionSchema(message: r) } catch { throw shardError(error) }
            return try await shard.createCollection(schema).message
        }
        s.unary("DropCollection") { (r: CollectionNameRequest, _) in DropCollectionResponse(dropped: try await shard.dropCollection(r.name)) }
        s.unary("DescribeCollection") { (r: CollectionNameRequest, _) in try await shard.describeCollection(r.name).message }
        s.unary("Upsert") { (r: UpsertRequest, _) in
            try await shard.upsert(collection: r.collection, points: r.points.map(Point.init(message:)), version: r.version == 0 ? nil : r.version).message
        }
        s.unary("Delete") { (r: IDsRequest, _) in
            try await shard.delete(collection: r.collection, ids: r.ids, version: r.version == 0 ? nil : r.version).message
        }
        s.unary("Changes") { (r: ChangesRequest, _) in try await shard.changes(ChangesQuery(message: r)).message }
        s.unary("Apply") { (r: ApplyRequest, _) -> WriteResponse in
            let changes: VersionedChanges
            do { changes = try VersionedChanges(message: r) } catch { throw shardError(error) }
            return try await shard.apply(collection: r.collection, changes: changes).message
        }
        s.unary("Get") { (r: IDsRequest, _) in
            PointsResponse(points: try await shard.get(collection: r.collection, ids: r.ids, includeVector: r.includeVector).map(\.message))
        }
        s.unary("Search") { (r: SearchRequest, context) in
            // The caller's grpc-timeout is the search's deadline (the engine stops at it).
            try await RequestDeadline.$current.withValue(context.deadline) {
                SearchResponse(results: try await shard.search(ShardSearch(message: r)).map { $0.map(\.message) })
            }
        }
        s.unary("Stats") { (_: StatsRequest, context) in
            if let id = context.headers.first(name: "vecshard-router-id") { routers.saw(id) }
            var stats = try await shard.stats()
            stats.routersSeen = routers.recent()
            return stats.message
        }
        s.unary("Maintain") { (r: MaintainRequest, _) -> MaintainResponse in
            switch r.operation {
            case .flush: try await shard.flush(r.collection)
            case .compact: try await shard.compact(r.collection)
            case nil: throw GRPCError(.invalidArgument, "unknown maintenance operation")
            }
            return MaintainResponse()
        }
        s.unary("Sync") { (r: SyncRequest, _) in try await shard.sync(ReplicaSync(message: r)).message }
        s.serverStreaming("Scan") { (r: ScanRequest, _, send: @Sendable (PointsResponse) async throws -> Void) in
            try await shard.scan(ShardScan(message: r)) { try await send(PointsResponse(points: $0.map(\.message))) }
        }
        return s
    }
}

/// The routers that asked a replica for its stats lately (each router's health checks do, every
/// second): what `Stats` reports as `routers_seen`.
final class RecentRouters: Sendable {
    private let seen = Mutex<[String: ContinuousClock.Instant]>([:])
    static let window: Duration = .seconds(10)

    func saw(_ id: String) {
        let now = ContinuousClock.now
        seen.withLock { s in
            s[String(id.prefix(64))] = now
            if s.count > 64 { s = s.filter { now - $0.value < Self.window } }
        }
    }

    func recent() -> [String] {
        let now = ContinuousClock.now
        return seen.withLock { s in s.filter { now - $0.value < Self.window }.keys.sorted() }
    }
}
