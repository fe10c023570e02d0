import VecShardEngine
import VecShardProto
import VecShardRPC
import VecShardStorage

// The one place where storage errors become shard-protocol (gRPC) statuses, and where protobuf
// messages become storage values and back.

extension StorageError {
    var shardCallError: ShardCallError {
        let status: GRPCStatusCode
        switch kind {
        case .invalidArgument: status = .invalidArgument
        case .notFound: status = .notFound
        case .alreadyExists: status = .alreadyExists
        case .resourceExhausted: status = .resourceExhausted
        case .unavailable: status = .unavailable
        case .internalError: status = .internal
        case .cancelled: status = .cancelled
        case .dataLoss: status = .dataLoss
        }
        return ShardCallError(status, code: code, description)
    }
}

func shardError(_ error: any Error) -> ShardCallError {
    switch error {
    case let e as ShardCallError: return e
    case let e as StorageError: return e.shardCallError
    case let e as GRPCError: return ShardCallError(e)
    default: return ShardCallError(.internal, code: "internal", "internal error: \(error)")
    }
}

extension MetadataValue {
    init(_ m: MetadataValueMessage) {
        switch m {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .bool(let b): self = .bool(b)
        }
    }

    var message: MetadataValueMessage {
        switch self {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        }
    }
}

func metadata(_ m: [String: MetadataValueMessage]) -> Metadata { m.mapValues(MetadataValue.init) }

extension ScoredPointMessage {
    /// Bytes this hit counts for in a response budget, as `SearchHit.byteCount` counts them.
    var byteCount: Int {
        metadata.reduce(id.utf8.count + 4 + 4 * vector.count) { total, field in
            switch field.value {
            case .string(let s): return total + field.key.utf8.count + s.utf8.count
            case .int, .double: return total + field.key.utf8.count + 8
            case .bool: return total + field.key.utf8.count + 1
            }
        }
    }
}
func metadataMessage(_ m: Metadata) -> [String: MetadataValueMessage] { m.mapValues(\.message) }

extension FilterMessage {
    var storageFilter: MetadataFilter {
        must.mapValues { values in
            values.count == 1 ? .equals(MetadataValue(values[0])) : .oneOf(values.map(MetadataValue.init))
        }
    }
}

extension IndexSpec {
    init(message m: IndexSpecMessage?) throws {
        guard let m, !m.type.isEmpty else {
            self.init(kind: .hnsw)
            return
        }
        guard let kind = IndexKind(rawValue: m.type) else {
            throw ShardCallError(.invalidArgument, code: "invalid_schema",
                                 "index type '\(m.type)' is unknown; use flat, ivf_flat, ivf_pq or hnsw")
        }
        self.init(kind: kind)
        if m.nlist > 0 { nlist = Int(m.nlist) }
        if m.pqM > 0 { pqM = Int(m.pqM) }
        if m.m > 0 { self.m = Int(m.m) }
        if m.efConstruction > 0 { efConstruction = Int(m.efConstruction) }
        if m.nprobe > 0 { nprobe = Int(m.nprobe) }
        if m.efSearch > 0 { efSearch = Int(m.efSearch) }
        if m.refine > 0 { refine = Int(m.refine) }
    }

    var message: IndexSpecMessage {
        IndexSpecMessage(type: kind.rawValue, nlist: UInt32(nlist ?? 0), pqM: UInt32(pqM ?? 0), m: UInt32(m),
                         efConstruction: UInt32(efConstruction), nprobe: UInt32(nprobe), efSearch: UInt32(efSearch),
                         refine: UInt32(refine))
    }
}

extension CollectionSchema {
    init(message r: CreateCollectionRequest) throws {
        guard let metric = DistanceMetric(rawValue: r.metric) else {
            throw ShardCallError(.invalidArgument, code: "invalid_schema", "metric '\(r.metric)' is unknown; use cosine, l2 or ip")
        }
        self.init(name: r.name, dimension: Int(r.dimension), metric: metric, index: try IndexSpec(message: r.index),
                  shardKey: r.shardKey.isEmpty ? nil : r.shardKey)
    }

}

extension CollectionDescription {
    var message: CollectionInfoMessage {
        var info = CollectionInfoMessage()
        info.name = schema.name
        info.dimension = UInt32(schema.dimension)
        info.metric = schema.metric.rawValue
        info.index = schema.index.message
        info.shardKey = schema.shardKey ?? ""
        info.count = UInt64(pointCount)
        info.segments = UInt32(segments.count)
        info.memoryBytes = UInt64(memoryBytes)
        info.diskBytes = UInt64(diskBytes)
        info.lsn = lsn
        info.indexState = segments.contains { $0.state != .sealed && $0.rows > 0 && $0.state != .growing } ? "building" : "ready"
        info.maintenanceError = maintenanceError ?? ""
        info.failedSeals = UInt64(maintenance.failedSeals)
        info.failedCompactions = UInt64(maintenance.failedCompactions + maintenance.failedPublishes)
        info.quarantinedPoints = UInt64(maintenance.quarantinedPoints)
        info.diskFull = diskFull
        return info
    }
}

extension SearchParamsMessage {
    func parameters(defaultK: Int = 10) -> SearchParameters {
        SearchParameters(k: k == 0 ? defaultK : Int(k), nprobe: nprobe == 0 ? nil : Int(nprobe), ef: ef == 0 ? nil : Int(ef),
                         refine: refine == 0 ? nil : Int(refine), exact: exact)
    }
}
