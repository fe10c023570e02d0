import VecShardEngine
import VecShardProto
import VecShardRPC
import VecShardSchema

// Model → wire: the one place where schema values become the shard protocol's messages (the
// other direction is ProtoToSchema.swift).

extension MetadataValue {
    public var message: MetadataValueMessage {
        switch self {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        }
    }
}

extension Dictionary where Key == String, Value == MetadataValue {
    public var message: [String: MetadataValueMessage] { mapValues(\.message) }
}

extension Point {
    public var message: PointMessage { PointMessage(id: id, vector: vector, metadata: metadata.message) }
}

extension IndexSpec {
    /// Knobs of other index types are dropped, not sent or stored: an HNSW schema never carries a
    /// pq_m. (Knobs are range-checked by `validate(dimension:)` before they are narrowed here.)
    public var message: IndexSpecMessage {
        let ivf = kind == .ivfFlat || kind == .ivfPQ
        return IndexSpecMessage(type: kind.rawValue, nlist: ivf ? UInt32(clamping: nlist ?? 0) : 0,
                                pqM: kind == .ivfPQ ? UInt32(clamping: pqM ?? 0) : 0, m: UInt32(clamping: m),
                                efConstruction: UInt32(clamping: efConstruction), nprobe: UInt32(clamping: nprobe),
                                efSearch: UInt32(clamping: efSearch), refine: UInt32(clamping: refine))
    }
}

extension IndexSpec {
    /// The spec as a collection schema keeps it: the knobs the shard protocol carries (others
    /// take their defaults), so that a collection made in standalone mode is the one a cluster
    /// would make.
    public var schemaKnobs: IndexSpec { (try? IndexSpec(message: message)) ?? self }
}

extension CollectionSchema {
    public var message: CreateCollectionRequest {
        CreateCollectionRequest(name: name, dimension: UInt32(dimension), metric: metric.rawValue, index: index.message,
                                shardKey: shardKey ?? "")
    }
}

extension ShardCallError {
    /// Over gRPC the code travels in front of the message: `[code] message`.
    public var grpcError: GRPCError { GRPCError(kind.grpcStatus, "[\(code)] \(message)") }
}

extension MetadataFilter {
    /// The filter on the wire, which carries an AND of one condition per field (each: its values;
    /// one is equality, several are IN). Filters of other shapes are refused before they are sent.
    public func message() throws(SchemaError) -> FilterMessage? {
        guard !isEmpty else { return nil }
        guard let fields = fieldConditions else {
            throw .invalidFilter("this filter cannot be sent to a shard: the shard protocol carries one condition per field, ANDed")
        }
        return FilterMessage(must: fields.mapValues { $0.values.map(\.message) })
    }
}

extension ShardQuery {
    public func message() throws(SchemaError) -> QueryMessage {
        QueryMessage(vector: vector, filter: try filter.message(),
                     params: SearchParamsMessage(k: UInt32(clamping: k), nprobe: UInt32(clamping: nprobe ?? 0), ef: UInt32(clamping: ef ?? 0),
                                                 refine: UInt32(clamping: refine ?? 0), exact: exact),
                     includeVector: includeVector, includeMetadata: includeMetadata)
    }
}

extension ShardSearch {
    public func message() throws(SchemaError) -> SearchRequest {
        SearchRequest(collection: collection, queries: try queries.map { q throws(SchemaError) in try q.message() })
    }
}

extension SearchHit {
    public var message: ScoredPointMessage {
        ScoredPointMessage(id: id, score: score, metadata: metadata.message, vector: vector ?? [])
    }
}

extension CollectionInfo {
    public var message: CollectionInfoMessage {
        var m = CollectionInfoMessage()
        m.name = schema.name
        m.dimension = UInt32(schema.dimension)
        m.metric = schema.metric.rawValue
        m.index = schema.index.message
        m.shardKey = schema.shardKey ?? ""
        m.count = count
        m.segments = UInt32(clamping: segments)
        m.memoryBytes = memoryBytes
        m.diskBytes = diskBytes
        m.lsn = lsn
        m.indexState = indexBuilding ? "building" : "ready"
        m.maintenanceError = maintenanceError ?? ""
        m.failedSeals = failedSeals
        m.failedCompactions = failedCompactions
        m.quarantinedPoints = quarantinedPoints
        m.diskFull = diskFull
        m.version = version
        m.checksum = checksum
        m.tombstones = tombstones
        m.tombstoneFloor = tombstoneFloor
        return m
    }
}

extension ShardStats {
    public var message: StatsResponse {
        var m = StatsResponse()
        m.shardID = shardID
        m.collections = collections.map(\.message)
        m.refusedCollections = refusedCollections.map { r in
            var info = CollectionInfoMessage()
            info.name = r.name
            info.errorCode = r.code
            info.errorMessage = r.message
            return info
        }
        m.memoryBytes = memoryBytes
        m.diskBytes = diskBytes
        m.replicaState = replicaState.rawValue
        m.catchUpPending = catchUpPending
        m.routersSeen = routersSeen
        return m
    }
}

extension WriteResult {
    public var message: WriteResponse {
        WriteResponse(lsn: lsn, applied: UInt32(clamping: applied), failedReplicas: failedReplicas, version: version)
    }
}

extension ShardScan {
    public var message: ScanRequest {
        ScanRequest(collection: collection, batchSize: UInt32(clamping: batchSize),
                    selector: selector?.message, idsOnly: idsOnly)
    }
}

extension PlacementSelector {
    public var message: PlacementSelectorMessage {
        PlacementSelectorMessage(shards: shards, owner: owner, exclude: exclude, routing: routing.map { r in
            SelectorRoutingMessage(groups: r.groups.map { .init(name: $0.name, shards: $0.shards) }, shardKey: r.shardKey ?? "",
                                   valueGroups: r.valueGroups.keys.sorted().map { .init(value: $0, group: r.valueGroups[$0]!) },
                                   defaultGroup: r.defaultGroup)
        })
    }
}

extension ReplicaSync {
    public var message: SyncRequest { SyncRequest(peers: peers, force: force, afterVersion: afterVersion) }
}

extension ChangesQuery {
    public var message: ChangesRequest {
        ChangesRequest(collection: collection, afterVersion: afterVersion, afterID: afterID, limit: UInt32(clamping: limit), ignoreFloor: ignoringFloor,
                       selector: selector?.message)
    }
}

extension VersionedChanges {
    public func message(collection: String) -> ApplyRequest {
        ApplyRequest(collection: collection, points: points.map(\.message), versions: versions, deletedIDs: deletedIDs, deletedVersions: deletedVersions)
    }
}

extension ChangesPageResult {
    public var message: ChangesResponse {
        var m = ChangesResponse()
        m.points = changes.points.map(\.message)
        m.versions = changes.versions
        m.deletedIDs = changes.deletedIDs
        m.deletedVersions = changes.deletedVersions
        m.more = more
        m.nextVersion = nextVersion
        m.nextID = nextID
        m.tombstoneFloor = tombstoneFloor
        return m
    }
}

extension SyncOutcome {
    public var message: SyncResponse {
        SyncResponse(replicaState: replicaState.rawValue, source: source, copied: copied, deleted: deleted, collections: UInt32(clamping: collections),
                     mode: mode, transferred: transferred)
    }
}
