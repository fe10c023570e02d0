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

    static func encode(_ deletions: [String: UInt64]) -> [UInt8] {
        var w = ByteWriter(capacity: 4 + deletions.count * 32 + 8)
        w.int(UInt32(deletions.count))
        for (id, version) in deletions {
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
