import VecShardEngine
import VecShardProto
import VecShardRPC
import VecShardSchema

// Wire → model: the one place where the shard protocol's messages become schema values (the
// other direction is SchemaToProto.swift). Router and shard both validate and route with the
// schema values; only these two files and the codec know the messages' fields.

extension MetadataValue {
    public init(_ m: MetadataValueMessage) {
        switch m {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .bool(let b): self = .bool(b)
        }
    }
}

extension Dictionary where Key == String, Value == MetadataValue {
    /// A point's metadata from its message.
    public init(message m: [String: MetadataValueMessage]) { self = m.mapValues(MetadataValue.init) }
}

extension Point {
    public init(message m: PointMessage) { self.init(id: m.id, vector: m.vector, metadata: Metadata(message: m.metadata)) }
}

extension FilterMessage {
    /// The filter as the schema states it: every field's values are an equality (one value) or an
    /// IN list (several), all fields ANDed.
    public var schemaFilter: MetadataFilter {
        MetadataFilter(fields: must.mapValues { values in
            values.count == 1 ? .equals(MetadataValue(values[0])) : .oneOf(values.map(MetadataValue.init))
        })
    }
}

extension IndexSpec {
    public init(message m: IndexSpecMessage?) throws(SchemaError) {
        guard let m, !m.type.isEmpty else {
            self.init(kind: .hnsw)
            return
        }
        guard let kind = IndexKind(rawValue: m.type) else {
            throw .invalidSchema("index type '\(m.type)' is unknown; use flat, ivf_flat, ivf_pq or hnsw")
        }
        self.init(kind: kind)
        // Knobs of other index types are dropped (an HNSW schema never keeps a pq_m), so what a
        // shard stores is what it describes, whichever way the collection was created.
        if m.nlist > 0 && (kind == .ivfFlat || kind == .ivfPQ) { nlist = Int(m.nlist) }
        if m.pqM > 0 && kind == .ivfPQ { pqM = Int(m.pqM) }
        if m.m > 0 { self.m = Int(m.m) }
        if m.efConstruction > 0 { efConstruction = Int(m.efConstruction) }
        if m.nprobe > 0 { nprobe = Int(m.nprobe) }
        if m.efSearch > 0 { efSearch = Int(m.efSearch) }
        if m.refine > 0 { refine = Int(m.refine) }
    }
}

extension CollectionSchema {
    public init(message r: CreateCollectionRequest) throws(SchemaError) {
        self.init(name: r.name, dimension: Int(r.dimension), metric: try CollectionSchema.metric(named: r.metric), index: try IndexSpec(message: r.index),
                  shardKey: r.shardKey.isEmpty ? nil : r.shardKey)
    }

    /// The schema a shard describes (what it was created with).
    public init(info: CollectionInfoMessage) throws(SchemaError) {
        try self.init(message: CreateCollectionRequest(name: info.name, dimension: info.dimension, metric: info.metric,
                                                       index: info.index, shardKey: info.shardKey))
    }
}

extension SearchParamsMessage {
    public func parameters(defaultK: Int = 10) -> SearchParameters {
        SearchParameters(k: k == 0 ? defaultK : Int(k), nprobe: nprobe == 0 ? nil : Int(nprobe), ef: ef == 0 ? nil : Int(ef),
                         refine: refine == 0 ? nil : Int(refine), exact: exact)
    }
}

extension ShardCallError {
    /// A gRPC status received from a shard: the code travels in front of the message as
    /// `[code] message`; the kind is the status's (ShardWire.swift).
    public init(_ error: GRPCError) {
        var code = error.code.description.lowercased(), message = error.message
        if error.message.hasPrefix("["), let close = error.message.firstIndex(of: "]") {
            code = String(error.message[error.message.index(after: error.message.startIndex)..<close])
            message = String(error.message[error.message.index(after: close)...]).trimmingPrefix(" ").description
        }
        self.init(ErrorKind(error.code), code: code, message)
    }
}

extension ShardQuery {
    public init(message q: QueryMessage) {
        let p = q.params ?? SearchParamsMessage()
        self.init(vector: q.vector, filter: q.filter?.schemaFilter ?? [:], k: p.k == 0 ? 10 : Int(p.k),
                  nprobe: p.nprobe == 0 ? nil : Int(p.nprobe), ef: p.ef == 0 ? nil : Int(p.ef), refine: p.refine == 0 ? nil : Int(p.refine),
                  exact: p.exact, includeVector: q.includeVector, includeMetadata: q.includeMetadata)
    }
}

extension ShardSearch {
    public init(message r: SearchRequest) { self.init(collection: r.collection, queries: r.queries.map(ShardQuery.init(message:))) }
}

extension SearchHit {
    public init(message h: ScoredPointMessage) {
        self.init(id: h.id, score: h.score, metadata: Metadata(message: h.metadata), vector: h.vector.isEmpty ? nil : h.vector)
    }
}

extension SearchResponse {
    public var hits: [[SearchHit]] { results.map { $0.map(SearchHit.init(message:)) } }
}

extension CollectionInfo {
    public init(message m: CollectionInfoMessage) throws(SchemaError) {
        self.init(schema: try CollectionSchema(info: m))
        count = m.count
        segments = Int(m.segments)
        memoryBytes = m.memoryBytes
        diskBytes = m.diskBytes
        lsn = m.lsn
        indexBuilding = m.indexState == "building"
        maintenanceError = m.maintenanceError.isEmpty ? nil : m.maintenanceError
        failedSeals = m.failedSeals
        failedCompactions = m.failedCompactions
        quarantinedPoints = m.quarantinedPoints
        diskFull = m.diskFull
        version = m.version
        checksum = m.checksum
        tombstones = m.tombstones
        tombstoneFloor = m.tombstoneFloor
    }
}

extension ShardStats {
    /// A collection whose description this build cannot read (a newer shard's metric or index
    /// type) is listed as refused, `unreadable_schema`, instead of failing the whole answer: the
    /// shard stays healthy to the router and its other collections keep serving.
    public init(message m: StatsResponse) {
        self.init(shardID: m.shardID)
        for c in m.collections {
            do { collections.append(try CollectionInfo(message: c)) } catch {
                refusedCollections.append(RefusedCollection(name: c.name, code: "unreadable_schema",
                                                            message: "this router cannot read the collection's schema: \(error)"))
            }
        }
        refusedCollections += m.refusedCollections.map { RefusedCollection(name: $0.name, code: $0.errorCode, message: $0.errorMessage) }
        memoryBytes = m.memoryBytes
        diskBytes = m.diskBytes
        routersSeen = m.routersSeen
        // "" from a shard that predates replica repair: serving. A state this build does not know
        // is treated as not serving reads (and not as a request for a sync).
        replicaState = m.replicaState.isEmpty ? .serving : ReplicaState(rawValue: m.replicaState) ?? .syncing
        catchUpPending = m.catchUpPending
    }
}

extension WriteResult {
    public init(message m: WriteResponse) {
        self.init(lsn: m.lsn, applied: Int(m.applied), failedReplicas: m.failedReplicas, version: m.version)
    }
}

extension ShardScan {
    public init(message m: ScanRequest) {
        self.init(collection: m.collection, batchSize: Int(m.batchSize), idsOnly: m.idsOnly,
                  selector: m.selector.flatMap(PlacementSelector.init(message:)))
    }
}

extension PlacementSelector {
    /// nil for an empty selector (no shards, no routing): every point.
    public init?(message m: PlacementSelectorMessage) {
        let routing = m.routing.map { r in
            Routing(groups: r.groups.map { ($0.name, $0.shards) }, shardKey: r.shardKey.isEmpty ? nil : r.shardKey,
                    valueGroups: Dictionary(r.valueGroups.map { ($0.value, $0.group) }, uniquingKeysWith: { a, _ in a }), defaultGroup: r.defaultGroup)
        }
        guard !m.shards.isEmpty || routing != nil else { return nil }
        self.init(shards: m.shards, owner: m.owner, exclude: m.exclude, routing: routing)
    }
}

extension ReplicaSync {
    public init(message m: SyncRequest) { self.init(peers: m.peers, force: m.force, afterVersion: m.hasAfterVersion ? m.afterVersion : nil) }
}

extension ChangesQuery {
    public init(message m: ChangesRequest) {
        self.init(collection: m.collection, afterVersion: m.afterVersion, afterID: m.afterID, limit: Int(m.limit), ignoringFloor: m.ignoreFloor,
                  selector: m.selector.flatMap(PlacementSelector.init(message:)))
    }
}

extension VersionedChanges {
    /// Throws when the lists do not pair up (a point without its version).
    public init(message m: ApplyRequest) throws(SchemaError) {
        guard m.points.count == m.versions.count, m.deletedIDs.count == m.deletedVersions.count else {
            throw SchemaError.invalidSearch("an apply request with \(m.points.count) points and \(m.versions.count) versions, "
                                            + "\(m.deletedIDs.count) deleted ids and \(m.deletedVersions.count) versions")
        }
        self.init(points: m.points.map(Point.init(message:)), versions: m.versions, deletedIDs: m.deletedIDs, deletedVersions: m.deletedVersions)
    }
}

extension ChangesPageResult {
    /// Throws when the lists do not pair up (a point without its version).
    public init(message m: ChangesResponse) throws(SchemaError) {
        guard m.points.count == m.versions.count, m.deletedIDs.count == m.deletedVersions.count else {
            throw SchemaError.invalidSearch("a changes page with \(m.points.count) points and \(m.versions.count) versions, "
                                            + "\(m.deletedIDs.count) deleted ids and \(m.deletedVersions.count) versions")
        }
        self.init(changes: VersionedChanges(points: m.points.map(Point.init(message:)), versions: m.versions,
                                            deletedIDs: m.deletedIDs, deletedVersions: m.deletedVersions),
                  more: m.more, nextVersion: m.nextVersion, nextID: m.nextID, tombstoneFloor: m.tombstoneFloor)
    }
}

extension SyncOutcome {
    public init(message m: SyncResponse) {
        self.init(replicaState: ReplicaState(rawValue: m.replicaState) ?? .serving, source: m.source, copied: m.copied,
                  deleted: m.deleted, collections: Int(m.collections), mode: m.mode, transferred: m.transferred)
    }
}
