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
        must.mapValues { values in
            values.count == 1 ? .equals(MetadataValue(values[0])) : .oneOf(values.map(MetadataValue.init))
        }
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
        if m.nlist > 0 { nlist = Int(m.nlist) }
        if m.pqM > 0 { pqM = Int(m.pqM) }
        if m.m > 0 { self.m = Int(m.m) }
        if m.efConstruction > 0 { efConstruction = Int(m.efConstruction) }
        if m.nprobe > 0 { nprobe = Int(m.nprobe) }
        if m.efSearch > 0 { efSearch = Int(m.efSearch) }
        if m.refine > 0 { refine = Int(m.refine) }
    }
}

extension CollectionSchema {
    public init(message r: CreateCollectionRequest) throws(SchemaError) {
        guard let metric = DistanceMetric(rawValue: r.metric) else {
            throw .invalidSchema("metric '\(r.metric)' is unknown; use cosine, l2 or ip")
        }
        self.init(name: r.name, dimension: Int(r.dimension), metric: metric, index: try IndexSpec(message: r.index),
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
