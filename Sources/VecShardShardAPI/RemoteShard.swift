import NIOCore
import VecShardHTTP
import VecShardProto
import VecShardRPC
import VecShardSchema

/// The shard protocol on the wire: `vecshard.v1.Shard` (proto/vecshard/v1/shard.proto).
public enum ShardGRPC {
    public static let serviceName = "vecshard.v1.Shard"
}

/// A shard replica at a `host:port`, called over gRPC. Every call carries a deadline.
public final class RemoteShard: ShardClient {
    public let name: String
    public let peer: Peer
    private let client: GRPCClient
    /// Deadline of each call (propagated as `grpc-timeout`).
    public let timeout: TimeAmount
    /// Deadline of a `Sync` (and of the scans it makes of a peer): a whole replica is copied.
    public let syncTimeout: TimeAmount

    public init(name: String, peer: Peer, client: GRPCClient, timeout: TimeAmount = .seconds(30), syncTimeout: TimeAmount = .hours(2)) {
        (self.name, self.peer, self.client, self.timeout, self.syncTimeout) = (name, peer, client, timeout, syncTimeout)
    }

    /// The call's timeout: the request's remaining time when one is set, at most `timeout`.
    private var effectiveTimeout: TimeAmount {
        guard let deadline = RequestDeadline.current else { return timeout }
        let left = deadline - ContinuousClock.now
        let nanos = left.components.seconds * 1_000_000_000 + left.components.attoseconds / 1_000_000_000
        return .nanoseconds(max(1_000_000, min(nanos, timeout.nanoseconds)))
    }

    private func call<Req: ProtoMessage, Res: ProtoMessage>(_ method: String, _ request: Req, as: Res.Type = Res.self) async throws -> Res {
        do {
            return try await client.unary("/\(ShardGRPC.serviceName)/\(method)", request, to: peer, timeout: effectiveTimeout)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
    }

    /// A response whose values do not convert (a newer shard's unknown metric, say).
    private func decoded<T>(_ body: () throws(SchemaError) -> T) throws -> T {
        do { return try body() } catch {
            throw ShardCallError(.internalError, .badResponse, "shard '\(name)' at \(peer) answered a value this router cannot read: \(error)")
        }
    }

    public func createCollection(_ schema: CollectionSchema) async throws -> CollectionInfo {
        let info: CollectionInfoMessage = try await call("CreateCollection", schema.message)
        return try decoded { () throws(SchemaError) in try CollectionInfo(message: info) }
    }

    public func dropCollection(_ name: String) async throws -> Bool {
        try await call("DropCollection", CollectionNameRequest(name: name), as: DropCollectionResponse.self).dropped
    }

    public func describeCollection(_ name: String) async throws -> CollectionInfo {
        let info: CollectionInfoMessage = try await call("DescribeCollection", CollectionNameRequest(name: name))
        return try decoded { () throws(SchemaError) in try CollectionInfo(message: info) }
    }

    public func upsert(collection: String, points: [Point], version: UInt64?) async throws -> WriteResult {
        WriteResult(message: try await call("Upsert", UpsertRequest(collection: collection, points: points.map(\.message), version: version ?? 0)))
    }

    public func delete(collection: String, ids: [String], version: UInt64?) async throws -> WriteResult {
        WriteResult(message: try await call("Delete", IDsRequest(collection: collection, ids: ids, version: version ?? 0)))
    }

    public func apply(collection: String, changes: VersionedChanges) async throws -> WriteResult {
        WriteResult(message: try await call("Apply", changes.message(collection: collection)))
    }

    public func changes(_ request: ChangesQuery) async throws -> ChangesPageResult {
        let response: ChangesResponse = try await call("Changes", request.message)
        return try decoded { () throws(SchemaError) in try ChangesPageResult(message: response) }
    }

    public func get(collection: String, ids: [String], includeVector: Bool) async throws -> [Point] {
        let response: PointsResponse = try await call("Get", IDsRequest(collection: collection, ids: ids, includeVector: includeVector))
        return response.points.map(Point.init(message:))
    }

    public func search(_ request: ShardSearch) async throws -> [[SearchHit]] {
        let message: SearchRequest
        do { message = try request.message() } catch { throw ShardCallError(error) }
        let response: SearchResponse = try await call("Search", message)
        return response.hits
    }

    public func stats() async throws -> ShardStats {
        let response: StatsResponse = try await call("Stats", StatsRequest())
        return ShardStats(message: response)
    }

    public func scan(_ request: ShardScan, _ body: @Sendable ([Point]) async throws -> Void) async throws {
        let batches: [PointsResponse]
        do {
            batches = try await client.serverStreaming("/\(ShardGRPC.serviceName)/Scan", request.message, to: peer, timeout: effectiveTimeout)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
        for batch in batches { try await body(batch.points.map(Point.init(message:))) }
    }

    /// A sync copies a whole replica: it gets `syncTimeout`, not the per-call `timeout`.
    public func sync(_ request: ReplicaSync) async throws -> SyncOutcome {
        do {
            let response: SyncResponse = try await client.unary("/\(ShardGRPC.serviceName)/Sync", request.message, to: peer, timeout: syncTimeout)
            return SyncOutcome(message: response)
        } catch let error as GRPCError {
            throw ShardCallError(error)
        }
    }

    public func flush(_ collection: String) async throws {
        _ = try await call("Maintain", MaintainRequest(collection: collection, operation: .flush), as: MaintainResponse.self)
    }

    public func compact(_ collection: String) async throws {
        _ = try await call("Maintain", MaintainRequest(collection: collection, operation: .compact), as: MaintainResponse.self)
    }
}
