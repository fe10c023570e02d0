import VecShardPrimitives
/// The durable list of a collection's live sealed segments, in order, and the WAL
/// position they cover. Written as a whole to a temporary file, fsynced, renamed over
/// `MANIFEST`, and the directory fsynced: a crash leaves the old or the new one.
///
/// Invariant: every record with LSN ≤ `checkpointLSN` is reflected in the listed segments
/// and their tombstone files; recovery replays only records above it.
struct Manifest: Codable, Equatable, Sendable {
    struct Entry: Codable, Equatable, Sendable {
        var id: UInt64
        var rows: Int
        /// File in the segment's directory holding its tombstones (nil: no deleted row).
        var tombstones: String?
    }

    /// Increases by 1 with every write.
    var version: UInt64 = 0
    var checkpointLSN: UInt64 = 0
    /// Ids of new segments (growing or compacted) start here.
    var nextSegmentID: UInt64 = 1
    var segments: [Entry] = []
    /// File in the collection's directory holding its tombstones (deleted ids with versions)
    /// as of this manifest; nil: none (or a manifest from before versions).
    var deletions: String?
    /// The highest version of a tombstone dropped after its retention.
    var tombstoneFloor: UInt64?
}

/// `MANIFEST` bytes: "VSHMANI1", u64 xxHash64 of the JSON, the JSON.
enum ManifestCodec {
    static let magic: [UInt8] = Array("VSHMANI1".utf8)

    static func encode(_ m: Manifest) -> [UInt8] {
        let json = encodeJSON(m)
        var w = ByteWriter(capacity: json.count + 16)
        w.raw(magic)
        w.int(XXH64.hash(json))
        w.raw(json)
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> Manifest {
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw StorageError.corrupt(path: path, reason: "not a manifest (bad magic or too short)")
        }
        let json = Array(bytes[16...])
        let sum = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        guard XXH64.hash(json) == sum else { throw StorageError.corrupt(path: path, reason: "checksum mismatch") }
        return try decodeJSON(json, as: Manifest.self, path: path)
    }
}
