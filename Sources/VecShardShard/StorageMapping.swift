import VecShardEngine
import VecShardProto
import VecShardRPC
import VecShardSchema
import VecShardShardAPI
import VecShardStorage

// The one place where storage errors become the shard protocol's errors (and so gRPC
// statuses), and where storage's descriptions become messages.

extension StorageError {
    var shardCallError: ShardCallError { ShardCallError(kind, code: code, description) }
}

/// Any error of the storage behind a shard as the shard protocol's error.
func storageShardError(_ error: any Error) -> ShardCallError {
    if let e = error as? StorageError { return e.shardCallError }
    return shardError(error)
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
