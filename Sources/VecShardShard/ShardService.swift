import VecShardProto
import VecShardRPC
import VecShardShardAPI

extension ShardGRPC {
    /// Serves `shard` (normally a `LocalShard`) as the gRPC shard service.
    public static func service(for shard: any ShardClient, maxMessageBytes: Int = 64 * 1024 * 1024) -> GRPCService {
        var s = GRPCService(name: serviceName, maxMessageBytes: maxMessageBytes)
        s.unary("CreateCollection") { (r: CreateCollectionRequest, _) in try await shard.createCollection(r) }
        s.unary("DropCollection") { (r: CollectionNameRequest, _) in DropCollectionResponse(dropped: try await shard.dropCollection(r.name)) }
        s.unary("DescribeCollection") { (r: CollectionNameRequest, _) in try await shard.describeCollection(r.name) }
        s.unary("Upsert") { (r: UpsertRequest, _) in try await shard.upsert(r) }
        s.unary("Delete") { (r: IDsRequest, _) in try await shard.delete(r) }
        s.unary("Get") { (r: IDsRequest, _) in try await shard.get(r) }
        s.unary("Search") { (r: SearchRequest, _) in try await shard.search(r) }
        s.unary("Stats") { (_: StatsRequest, _) in try await shard.stats() }
        s.unary("Maintain") { (r: MaintainRequest, _) -> MaintainResponse in
            switch r.operation {
            case .flush: try await shard.flush(r.collection)
            case .compact: try await shard.compact(r.collection)
            case nil: throw GRPCError(.invalidArgument, "unknown maintenance operation")
            }
            return MaintainResponse()
        }
        s.unary("Sync") { (r: SyncRequest, _) in try await shard.sync(r) }
        s.serverStreaming("Scan") { (r: ScanRequest, _, send: @Sendable (PointsResponse) async throws -> Void) in
            try await shard.scan(r) { try await send($0) }
        }
        return s
    }
}
