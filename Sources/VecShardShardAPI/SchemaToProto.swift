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
    public var message: IndexSpecMessage {
        IndexSpecMessage(type: kind.rawValue, nlist: UInt32(nlist ?? 0), pqM: UInt32(pqM ?? 0), m: UInt32(m),
                         efConstruction: UInt32(efConstruction), nprobe: UInt32(nprobe), efSearch: UInt32(efSearch),
                         refine: UInt32(refine))
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
