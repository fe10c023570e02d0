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
