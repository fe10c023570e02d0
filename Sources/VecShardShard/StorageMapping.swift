import VecShardEngine
import VecShardSchema
import VecShardShardAPI
import VecShardStorage

// The one place where storage errors become the shard protocol's errors (and so, in the seam,
// gRPC statuses), and where storage's descriptions become the seam's values.

extension StorageError {
    var shardCallError: ShardCallError { ShardCallError(kind, code: code, description) }
}

/// Any error of the storage behind a shard as the shard protocol's error.
func storageShardError(_ error: any Error) -> ShardCallError {
    if let e = error as? StorageError { return e.shardCallError }
    return shardError(error)
}

extension CollectionDescription {
    var info: CollectionInfo {
        var info = CollectionInfo(schema: schema)
        info.count = UInt64(pointCount)
        info.segments = segments.count
        info.memoryBytes = UInt64(memoryBytes)
        info.diskBytes = UInt64(diskBytes)
        info.lsn = lsn
        info.indexBuilding = segments.contains { $0.state != .sealed && $0.rows > 0 && $0.state != .growing }
        info.maintenanceError = maintenanceError
        info.failedSeals = UInt64(maintenance.failedSeals)
        info.failedCompactions = UInt64(maintenance.failedCompactions + maintenance.failedPublishes)
        info.quarantinedPoints = UInt64(maintenance.quarantinedPoints)
        info.diskFull = diskFull
        info.version = version
        info.checksum = checksum
        info.tombstones = UInt64(tombstones)
        info.tombstoneFloor = tombstoneFloor
        return info
    }
}
