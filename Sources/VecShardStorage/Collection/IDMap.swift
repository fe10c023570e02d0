#if canImport(Glibc)
import Glibc
#endif
import VecShardPrimitives

/// Point id → the row holding it and the version of the write that put it there: the
/// collection's id map, updated for every point written.
///
/// Open addressing with linear probing over a power-of-two table, at most 70% full. Each slot
/// keeps its key's 64-bit hash, so a look-up compares strings only on a full hash match and
/// growing the table moves entries without hashing any key again. (Swift's `Dictionary`
/// hashes every key anew when it grows; with SipHash over millions of ids that was a third of
/// the time spent publishing writes.) Deletion shifts the following entries back (no
/// tombstones), so probe sequences stay short under deletes.
///
/// Keys are hashed with XXH64 under a seed drawn at random per process: ids come from
/// clients, and a secret seed keeps them from choosing ids that all collide.
///
/// Ids are byte strings here, as in placement (which hashes their UTF-8 bytes): two ids that
/// differ in bytes are two points even when Unicode calls them equal ("é" precomposed or
/// as e + combining accent), where `Dictionary` would have merged them.
struct IDMap {
    /// 0 marks an empty slot; a key whose hash is 0 is stored as 1.
    private var hashes: [UInt64]
    private var keys: [String]
    private var values: [RowLocation]
    private var versions: [UInt64]
    private(set) var count = 0
    private var mask: Int

    /// From the system's random source (`SystemRandomNumberGenerator`).
    static let seed = UInt64.random(in: .min ... .max)

    init(minimumCapacity: Int = 0) {
        var slots = 16
        while slots * 7 / 10 < minimumCapacity { slots *= 2 }
        hashes = [UInt64](repeating: 0, count: slots)
        keys = [String](repeating: "", count: slots)
        values = [RowLocation](repeating: RowLocation(segment: 0, row: 0), count: slots)
        versions = [UInt64](repeating: 0, count: slots)
        mask = slots - 1
    }

    @inline(__always) static func hash(_ key: String) -> UInt64 {
        var key = key
        let h = key.withUTF8 { XXH64.hash(UnsafeRawBufferPointer($0), seed: seed) }
        return h == 0 ? 1 : h
    }

    @inline(__always) static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in x.count == y.count && (x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0) }
        }
    }

    /// The slot holding `key`, or nil.
    @inline(__always) private func find(_ key: String, _ h: UInt64) -> Int? {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let stored = hashes[i]
            if stored == 0 { return nil }
            if stored == h && Self.sameBytes(keys[i], key) { return i }
            i = (i + 1) & mask
        }
    }

    subscript(key: String) -> RowLocation? {
        find(key, Self.hash(key)).map { values[$0] }
    }

    /// The row and version of `key`, or nil.
    func entry(_ key: String) -> (location: RowLocation, version: UInt64)? {
        find(key, Self.hash(key)).map { (values[$0], versions[$0]) }
    }

    /// The version of `key`'s point, or nil when it has none.
    func version(of key: String) -> UInt64? {
        find(key, Self.hash(key)).map { versions[$0] }
    }

    /// Moves `key` to another row, keeping its version (compaction). No-op for a missing key.
    mutating func relocate(_ key: String, to location: RowLocation) {
        if let i = find(key, Self.hash(key)) { values[i] = location }
    }

    /// Sets `key`'s row and version; returns the row and version it had, if any.
    @discardableResult
    mutating func updateValue(_ value: RowLocation, version: UInt64, forKey key: String) -> (location: RowLocation, version: UInt64)? {
        let h = Self.hash(key)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let stored = hashes[i]
            if stored == 0 { break }
            if stored == h && Self.sameBytes(keys[i], key) {
                let old = (values[i], versions[i])
                values[i] = value
                versions[i] = version
                return old
            }
            i = (i + 1) & mask
        }
        hashes[i] = h
        keys[i] = key
        values[i] = value
        versions[i] = version
        count += 1
        if count * 10 > hashes.count * 7 { grow() }
        return nil
    }

    /// Removes `key`; returns the row and version it had, if any.
    @discardableResult
    mutating func removeValue(forKey key: String) -> (location: RowLocation, version: UInt64)? {
        guard var hole = find(key, Self.hash(key)) else { return nil }
        let old = (values[hole], versions[hole])
        // Shift back every later entry of the same cluster whose home slot is not between the
        // hole and its own slot (cyclically), so no probe sequence crosses an empty slot early.
        var i = (hole + 1) & mask
        while hashes[i] != 0 {
            let home = Int(truncatingIfNeeded: hashes[i]) & mask
            let distanceToEntry = (i - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole < distanceToEntry {
                hashes[hole] = hashes[i]
                keys[hole] = keys[i]
                values[hole] = values[i]
                versions[hole] = versions[i]
                hole = i
            }
            i = (i + 1) & mask
        }
        hashes[hole] = 0
        keys[hole] = ""
        count -= 1
        return old
    }

    /// Doubles the table, placing every entry by its stored hash (no key is hashed again).
    private mutating func grow() {
        let slots = hashes.count * 2
        var newHashes = [UInt64](repeating: 0, count: slots)
        var newKeys = [String](repeating: "", count: slots)
        var newValues = [RowLocation](repeating: RowLocation(segment: 0, row: 0), count: slots)
        var newVersions = [UInt64](repeating: 0, count: slots)
        let newMask = slots - 1
        for j in hashes.indices where hashes[j] != 0 {
            var i = Int(truncatingIfNeeded: hashes[j]) & newMask
            while newHashes[i] != 0 { i = (i + 1) & newMask }
            newHashes[i] = hashes[j]
            swap(&newKeys[i], &keys[j])
            newValues[i] = values[j]
            newVersions[i] = versions[j]
        }
        hashes = newHashes
        keys = newKeys
        values = newValues
        versions = newVersions
        mask = newMask
    }

    /// Every (id, row, version), in no particular order.
    func forEach(_ body: (String, RowLocation, UInt64) -> Void) {
        for i in hashes.indices where hashes[i] != 0 { body(keys[i], values[i], versions[i]) }
    }
}
