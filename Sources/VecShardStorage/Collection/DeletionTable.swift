import VecShardPrimitives

/// The per-point term of a collection's checksum: XXH64 of the id's bytes seeded with the
/// version. Summed (wrapping) over live points, it does not depend on order, so replicas
/// holding the same (id, version) pairs show the same checksum.
enum VersionChecksum {
    @inline(__always) static func of(_ id: String, _ version: UInt64) -> UInt64 {
        var id = id
        return id.withUTF8 { XXH64.hash(UnsafeRawBufferPointer($0), seed: version) }
    }
}

/// `deletions-<manifest version>.bin`: the collection's tombstones as of a manifest.
/// u32 count, count × (string id, u64 version), then u64 xxHash64 of everything before it.
enum DeletionTable {
    static func fileName(manifestVersion: UInt64) -> String { "deletions-\(manifestVersion).bin" }

    static func encode(_ deletions: Tombstones) -> [UInt8] {
        var w = ByteWriter(capacity: 4 + deletions.count * 32 + 8)
        w.int(UInt32(deletions.count))
        for (id, version) in deletions.entries {
            w.string(id)
            w.int(version)
        }
        w.int(XXH64.hash(w.bytes))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> [(String, UInt64)] {
        try withVerifiedBody(bytes, path: path) { r in
            let n = Int(try r.int(UInt32.self))
            var out: [(String, UInt64)] = []
            out.reserveCapacity(min(n, 1 << 20))
            for _ in 0..<n { out.append((try r.string(), try r.int(UInt64.self))) }
            return out
        }
    }
}

/// The collection's tombstones: deleted id → the version of its delete. Ids are compared by
/// their UTF-8 bytes, as the id map compares them (a `[String: _]` would merge "é" precomposed
/// and decomposed, which are two points).
struct Tombstones: Sendable, Equatable {
    private struct Key: Hashable, Sendable {
        var bytes: [UInt8]
        init(_ id: String) { bytes = Array(id.utf8) }
        var id: String { String(decoding: bytes, as: UTF8.self) }
    }
    private var table: [Key: UInt64] = [:]

    var count: Int { table.count }
    var isEmpty: Bool { table.isEmpty }

    subscript(id: String) -> UInt64? {
        get { table[Key(id)] }
        set { table[Key(id)] = newValue }
    }

    mutating func removeValue(forKey id: String) { table.removeValue(forKey: Key(id)) }

    /// Every (id, version), in no particular order.
    var entries: [(id: String, version: UInt64)] { table.map { ($0.key.id, $0.value) } }

    /// Entries whose version is at least `version`.
    func entries(from version: UInt64) -> [(id: String, version: UInt64)] {
        table.compactMap { $0.value >= version ? ($0.key.id, $0.value) : nil }
    }

    /// Drops the entries older than `horizon`; returns the highest version dropped (0: none).
    mutating func drop(olderThan horizon: UInt64) -> UInt64 {
        var dropped: UInt64 = 0
        table = table.filter { entry in
            if entry.value < horizon {
                dropped = max(dropped, entry.value)
                return false
            }
            return true
        }
        return dropped
    }
}
